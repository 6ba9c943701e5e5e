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

#include <algorithm>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

// The runtimes the parametrized suites run against.
#define SUNRAY_TEST_RUNTIMES ::testing::Values(std::string("local"))

#define SUNRAY_INSTANTIATE_RUNTIMES(Suite)   \
  INSTANTIATE_TEST_SUITE_P(                  \
      Runtimes, Suite, SUNRAY_TEST_RUNTIMES, \
      [](const ::testing::TestParamInfo<std::string> &info) { return info.param; })

namespace sunray_test {

// Guard for waits that are expected to finish: long enough never to fire on
// a loaded machine, short enough that a broken runtime fails the test.
inline constexpr int kTimeoutMs = 10000;
// How long a blocked task waits for its latch before giving up (and throwing).
inline constexpr std::chrono::milliseconds kLatchDeadline{15000};

// The config that starts runtime `runtime`.
inline ray::RayConfig ConfigFor(const std::string &runtime) {
  ray::RayConfig config;
  config.local_mode = (runtime == "local");
  return config;
}

// A one-shot gate. Tasks Wait() on it; the test Release()s it.
class Latch {
 public:
  Latch() {
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
    cv_.notify_all();
  }
  void Reset() {
    std::lock_guard lock(mu_);
    released_ = false;
  }
  bool IsReleased() {
    std::lock_guard lock(mu_);
    return released_;
  }
  // Blocks until released. Throws (failing the task) if that takes longer
  // than kLatchDeadline, so a broken test cannot hang.
  void Wait() {
    if (!WaitFor(kLatchDeadline)) throw std::runtime_error("latch was never released");
  }
  // Blocks until released or `timeout` passed; returns whether released.
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return released_; });
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
  static std::vector<Latch *> &Registry() {
    static std::vector<Latch *> registry;
    return registry;
  }
  static std::mutex &RegistryMutex() {
    static std::mutex mu;
    return mu;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// Starts the runtime named by the test parameter; shuts it down afterwards.
class RuntimeTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    Latch::ResetAll();
    ray::RayConfig config;
    config.local_mode = (GetParam() == "local");
    ray::Init(config);
    ASSERT_TRUE(ray::IsInitialized());
  }
  void TearDown() override {
    Latch::ReleaseAll();
    ray::Shutdown();
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
