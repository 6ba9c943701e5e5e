// Shared fixture of the API tests: every suite runs once per runtime.
//
//   class TaskTest : public sunray_test::RuntimeTest {};
//   SUNRAY_INSTANTIATE_RUNTIMES(TaskTest);
//   TEST_P(TaskTest, ReturnsTheFunctionsResult) { ... }
//
// To run the whole suite against another runtime, add its name to
// SUNRAY_TEST_RUNTIMES below (and teach ConfigFor about it).
//
// Coordination with tasks goes through Latch objects, never through sleeps:
// a task blocks on a latch the test releases. Every Latch is reset before
// each test and released before the runtime shuts down, so a failing test
// cannot leave a task blocked forever.
#pragma once

#include <gtest/gtest.h>
#include <ray/api.h>

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <source_location>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/testing/eventually.h"

// The runtimes the parametrized suites run against.
#define SUNRAY_TEST_RUNTIMES ::testing::Values(std::string("local"), std::string("cluster"))

#define SUNRAY_INSTANTIATE_RUNTIMES(Suite)   \
  INSTANTIATE_TEST_SUITE_P(                  \
      Runtimes, Suite, SUNRAY_TEST_RUNTIMES, \
      [](const ::testing::TestParamInfo<std::string> &info) { return info.param; })

namespace sunray_test {

// Guard for waits that are expected to finish: long enough never to fire on
// a loaded machine, short enough that a broken runtime fails the test
// (longer under a sanitizer: src/testing/eventually.h).
inline constexpr int kTimeoutMs = 10000 * sunray::kSanitizerSlowdown;
// How long a blocked task waits for its latch before giving up (and throwing).
inline constexpr std::chrono::milliseconds kLatchDeadline =
    sunray::Deadline(std::chrono::milliseconds(15000));

// The config that starts runtime `runtime`: "local" is local mode, "cluster"
// an embedded cluster of real processes (4 CPUs, so tests that block a few
// tasks at once have room).
inline ray::RayConfig ConfigFor(const std::string &runtime) {
  ray::RayConfig config;
  config.local_mode = (runtime == "local");
  if (runtime == "cluster") config.head_args = {"--num-cpus", "4"};
  return config;
}

// The file that carries a cross-process test object declared at `where`
// (see Latch), or "" when tasks run in this process.
inline std::string SharedFile(const std::string &name) {
  const char *dir = std::getenv("SUNRAY_TEST_LATCH_DIR");
  return dir == nullptr || *dir == '\0' ? "" : std::string(dir) + "/" + name;
}

inline std::string NameOf(const std::source_location &where) {
  return std::filesystem::path(where.file_name()).stem().string() + "-" +
         std::to_string(where.line());
}

// A one-shot gate. Tasks Wait() on it; the test Release()s it (or the other
// way round). Tasks may run in other processes (the cluster runtime runs this
// same binary as its workers), so a latch is named by where it is declared
// and, when SUNRAY_TEST_LATCH_DIR is set (the fixture sets it for runtimes
// with workers), released by creating a file of that name there; waiters
// check for the file until their deadline.
class Latch {
 public:
  explicit Latch(std::source_location where = std::source_location::current())
      : name_(NameOf(where)) {
    std::lock_guard lock(RegistryMutex());
    Registry().push_back(this);
  }
  ~Latch() {
    std::lock_guard lock(RegistryMutex());
    auto &registry = Registry();
    registry.erase(std::remove(registry.begin(), registry.end(), this), registry.end());
  }
  Latch(const Latch &) = delete;
  Latch &operator=(const Latch &) = delete;

  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    if (const auto file = File(); !file.empty()) std::ofstream(file).put('1');
    cv_.notify_all();
  }
  void Reset() {
    std::lock_guard lock(mu_);
    released_ = false;
    if (const auto file = File(); !file.empty()) std::filesystem::remove(file);
  }
  // Blocks until released. Throws (failing the task) if that takes longer
  // than kLatchDeadline, so a broken test cannot hang.
  void Wait() {
    if (!WaitFor(kLatchDeadline)) throw std::runtime_error("latch was never released");
  }
  // Blocks until released or `timeout` passed; returns whether released.
  bool WaitFor(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mu_);
    const auto file = File();
    auto released = [&] { return released_ || (!file.empty() && std::filesystem::exists(file)); };
    if (file.empty()) return cv_.wait_until(lock, deadline, released);
    // Another process may release it: look for the file every few ms.
    while (!released()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
    return true;
  }

  static void ResetAll() {
    std::lock_guard lock(RegistryMutex());
    for (Latch *latch : Registry()) latch->Reset();
  }
  static void ReleaseAll() {
    std::lock_guard lock(RegistryMutex());
    for (Latch *latch : Registry()) latch->Release();
  }

 private:
  std::string File() const { return SharedFile(name_); }

  static std::vector<Latch *> &Registry() {
    static std::vector<Latch *> registry;
    return registry;
  }
  static std::mutex &RegistryMutex() {
    static std::mutex mu;
    return mu;
  }

  const std::string name_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// An int that tasks and the test share, like std::atomic<int>, wherever the
// tasks run: in a file under SUNRAY_TEST_LATCH_DIR (updated under flock)
// when that is set, in memory otherwise. A missing file reads as 0.
class SharedInt {
 public:
  explicit SharedInt(std::source_location where = std::source_location::current())
      : name_(NameOf(where)) {}
  SharedInt(const SharedInt &) = delete;
  SharedInt &operator=(const SharedInt &) = delete;

  int fetch_add(int delta) {
    return Update([delta](int old) { return old + delta; });
  }
  int load() {
    return Update([](int old) { return old; });
  }
  SharedInt &operator=(int value) {
    Update([value](int) { return value; });
    return *this;
  }

 private:
  // Replaces the value with f(value); returns the old one.
  template <typename F>
  int Update(F f) {
    std::lock_guard lock(mu_);
    const std::string file = SharedFile(name_);
    if (file.empty()) {
      const int old = value_;
      value_ = f(old);
      return old;
    }
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("cannot open " + file);
    ::flock(fd, LOCK_EX);
    int old = 0;
    if (::pread(fd, &old, sizeof old, 0) != static_cast<ssize_t>(sizeof old)) old = 0;
    const int updated = f(old);
    const bool written = ::pwrite(fd, &updated, sizeof updated, 0) == sizeof updated;
    ::close(fd);  // drops the lock
    if (!written) throw std::runtime_error("cannot write " + file);
    return old;
  }

  const std::string name_;
  std::mutex mu_;
  int value_ = 0;
};

// Per test: latches reset and, for runtimes with processes, a directory of
// the test's own for the cluster's session and the latches (workers inherit
// the variables). TearDown releases every latch and shuts the runtime down.
class RuntimeScratchTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() != "local") {
      std::string pattern = (std::filesystem::temp_directory_path() / "sunray-api-XXXXXX").string();
      ASSERT_NE(mkdtemp(pattern.data()), nullptr);
      temp_dir_ = pattern;
      std::filesystem::create_directory(temp_dir_ + "/latches");
      setenv("SUNRAY_TEMP_DIR", temp_dir_.c_str(), 1);
      setenv("SUNRAY_TEST_LATCH_DIR", (temp_dir_ + "/latches").c_str(), 1);
    }
    Latch::ResetAll();
  }
  void TearDown() override {
    Latch::ReleaseAll();
    ray::Shutdown();
    if (!temp_dir_.empty()) {
      unsetenv("SUNRAY_TEST_LATCH_DIR");
      unsetenv("SUNRAY_TEMP_DIR");
      std::error_code ignored;
      std::filesystem::remove_all(temp_dir_, ignored);
    }
  }

  std::string temp_dir_;
};

// Starts the runtime named by the test parameter; shuts it down afterwards.
class RuntimeTest : public RuntimeScratchTest {
 protected:
  void SetUp() override {
    RuntimeScratchTest::SetUp();
    ray::RayConfig config = ConfigFor(GetParam());
    ray::Init(config);
    ASSERT_TRUE(ray::IsInitialized());
  }
};

// Whether `text` contains `part`.
inline bool Contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

// Success if `f()` throws an E whose what() contains every one of `parts`.
//
//   EXPECT_TRUE(Throws<ray::internal::RayTaskException>([&] { ref.Get(); }, {"boom"}));
template <typename E, typename F>
::testing::AssertionResult Throws(F &&f, const std::vector<std::string> &parts = {}) {
  try {
    f();
  } catch (const E &e) {
    const std::string what = e.what();
    for (const auto &part : parts) {
      if (!Contains(what, part)) {
        return ::testing::AssertionFailure()
               << "the exception's message lacks \"" << part << "\": " << what;
      }
    }
    return ::testing::AssertionSuccess();
  } catch (const std::exception &e) {
    return ::testing::AssertionFailure()
           << "threw a different exception (" << ::testing::internal::GetTypeName<E>()
           << " expected): " << e.what();
  } catch (...) {
    return ::testing::AssertionFailure() << "threw something that is not a std::exception";
  }
  return ::testing::AssertionFailure()
         << "threw nothing (" << ::testing::internal::GetTypeName<E>() << " expected)";
}

// Whether `text` is a non-empty lower- or upper-case hex string.
inline bool IsHex(const std::string &text) {
  return !text.empty() && std::all_of(text.begin(), text.end(),
                                      [](unsigned char c) { return std::isxdigit(c) != 0; });
}

}  // namespace sunray_test
