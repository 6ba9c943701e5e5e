// Several driver processes against one cluster started with `sunray start`:
// named actors and namespaces across drivers, a driver killed with SIGKILL,
// workers that load user code from a code search path, and reference
// counting seen from the node's object store. The drivers run
// driver_main.cc; each test has its own SUNRAY_TEMP_DIR and ephemeral ports,
// and checks that no process, socket or shared-memory entry of its cluster
// outlives `sunray stop`.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "node.grpc.pb.h"
#include "src/common/process.h"
#include "src/common/session.h"
#include "src/rpc/rpc.h"
#include "src/testing/eventually.h"
#include "worker.grpc.pb.h"

extern char **environ;

namespace sunray {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kMiB = 1 << 20;

// Runs `sunray <arguments>`; returns its exit code and stdout with stderr.
std::pair<int, std::string> RunSunray(const std::string &arguments) {
  const std::string command = std::string(SUNRAY_CLI_PATH) + " " + arguments + " 2>&1";
  std::string output;
  FILE *pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, ""};
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, read);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

std::string ReadWhole(const fs::path &path) {
  try {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  } catch (const std::exception &) {
    return "";  // a /proc file of a process that exited while we read (ESRCH)
  }
}

// Live processes (other than this one) whose NUL-separated /proc/PID/`file`
// has an entry containing each of `needles`.
std::vector<pid_t> ProcessesWhose(const std::string &file,
                                  const std::vector<std::string> &needles) {
  std::vector<pid_t> found;
  std::error_code error;
  for (const auto &entry : fs::directory_iterator("/proc", error)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == getpid() || !ProcessAlive(pid)) continue;
    std::string content = ReadWhole(entry.path() / file);
    content.push_back('\0');
    bool all = true;
    for (const auto &needle : needles) all = all && content.find(needle) != std::string::npos;
    if (all) found.push_back(pid);
  }
  return found;
}

// Bound Unix sockets whose path contains `needle`.
std::vector<std::string> UnixSocketsMentioning(const std::string &needle) {
  std::vector<std::string> found;
  std::istringstream lines(ReadWhole("/proc/net/unix"));
  for (std::string line; std::getline(lines, line);) {
    if (line.find(needle) != std::string::npos) found.push_back(line);
  }
  return found;
}

std::set<std::string> SharedMemoryEntries() {
  std::set<std::string> names;
  std::error_code error;
  for (const auto &entry : fs::directory_iterator("/dev/shm", error)) {
    names.insert(entry.path().filename());
  }
  return names;
}

// A driver process with its stdin and stdout on pipes and its stderr in a
// log file. Killed (SIGKILL) and reaped on destruction if still running.
class Driver {
 public:
  static std::unique_ptr<Driver> Start(const std::vector<std::string> &argv,
                                       const std::string &log_path) {
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return nullptr;
    if (pipe2(out, O_CLOEXEC) != 0) {
      close(in[0]);
      close(in[1]);
      return nullptr;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                     0644);
    std::vector<char *> args;
    for (const auto &arg : argv) args.push_back(const_cast<char *>(arg.c_str()));
    args.push_back(nullptr);
    pid_t pid = -1;
    const int failed = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(in[0]);
    close(out[1]);
    if (failed != 0) {
      close(in[1]);
      close(out[0]);
      return nullptr;
    }
    return std::unique_ptr<Driver>(new Driver(pid, in[1], out[0], log_path));
  }

  ~Driver() {
    CloseStdin();
    if (!exit_code_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stdout_);
  }

  pid_t pid() const { return pid_; }

  // Waits for the next line of output starting with `prefix` (skipping
  // others); nullopt if the driver's stdout closed or `timeout` passed.
  std::optional<std::string> WaitForLine(const std::string &prefix, seconds timeout = seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      while (next_line_ < lines_.size()) {
        const std::string &line = lines_[next_line_++];
        if (line.rfind(prefix, 0) == 0) return line;
      }
      const auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      if (stdout_closed_ || left.count() <= 0) return std::nullopt;
      ReadSome(static_cast<int>(left.count()));
    }
  }

  // Sends one line to the driver's stdin.
  void Send(const std::string &line) {
    const std::string data = line + "\n";
    if (stdin_ >= 0) (void)!write(stdin_, data.data(), data.size());
  }

  void CloseStdin() {
    if (stdin_ >= 0) close(stdin_);
    stdin_ = -1;
  }

  // Waits up to `timeout` for the driver to end; returns its exit code
  // (128 + signal if killed), or nullopt if it still runs.
  std::optional<int> Wait(seconds timeout = seconds(10)) {
    Eventually(
        [&] {
          if (exit_code_) return true;
          int status = 0;
          if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
          exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          return true;
        },
        timeout);
    return exit_code_;
  }

  // Everything the driver printed so far, stdout then its stderr log.
  std::string Output() {
    ReadSome(0);
    std::string all;
    for (const auto &line : lines_) all += line + "\n";
    return all + partial_ + "--- stderr:\n" + ReadWhole(log_path_);
  }

 private:
  Driver(pid_t pid, int stdin_fd, int stdout_fd, std::string log_path)
      : pid_(pid), stdin_(stdin_fd), stdout_(stdout_fd), log_path_(std::move(log_path)) {}

  // Reads what is available within `timeout_ms` into lines_.
  void ReadSome(int timeout_ms) {
    pollfd ready{stdout_, POLLIN, 0};
    if (stdout_closed_ || poll(&ready, 1, timeout_ms) <= 0) return;
    char buffer[4096];
    const ssize_t n = read(stdout_, buffer, sizeof(buffer));
    if (n <= 0) {
      stdout_closed_ = true;
      return;
    }
    partial_.append(buffer, static_cast<size_t>(n));
    for (size_t end; (end = partial_.find('\n')) != std::string::npos;) {
      lines_.push_back(partial_.substr(0, end));
      partial_.erase(0, end + 1);
    }
  }

  const pid_t pid_;
  int stdin_;
  const int stdout_;
  const std::string log_path_;
  bool stdout_closed_ = false;
  std::string partial_;
  std::vector<std::string> lines_;
  size_t next_line_ = 0;
  std::optional<int> exit_code_;
};

class MultiDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "sunray-md-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ + "/cluster";
    drivers_dir_ = base_ + "/drivers";
    fs::create_directories(root_);
    fs::create_directories(drivers_dir_);
    setenv("SUNRAY_TEMP_DIR", root_.c_str(), 1);
    unsetenv("RAY_ADDRESS");
    unsetenv("SUNRAY_TOKEN");
    shared_memory_before_ = SharedMemoryEntries();

    auto [code, output] =
        RunSunray("start --head --port 0 --num-cpus 2 --object-store-memory 200000000");
    ASSERT_EQ(code, 0) << output;
    auto session = LatestSession();
    ASSERT_TRUE(session.ok()) << session.status();
    session_ = *session;
    auto control = ReadFileToString(session_ + "/control_address");
    auto node = ReadFileToString(session_ + "/node_address");
    auto token = ReadFileToString(session_ + "/token");
    ASSERT_TRUE(control.ok() && node.ok() && token.ok());
    control_address_ = *control;
    node_address_ = *node;
    token_ = *token;
    // What TearDown looks for is there while the cluster runs: the daemons
    // (found by their environment) and the store's socket.
    EXPECT_GE(ProcessesWhose("environ", {"SUNRAY_TEMP_DIR=" + root_ + '\0'}).size(), 2u);
    EXPECT_FALSE(UnixSocketsMentioning(root_).empty());
  }

  void TearDown() override {
    if (base_.empty()) return;  // SetUp could not make a directory
    if (HasFailure()) {
      for (const auto &driver : drivers_) {
        std::cerr << "=== driver " << driver->pid() << "\n" << driver->Output();
      }
      std::cerr << "=== node log\n" << ReadWhole(session_ + "/logs/node.out");
    }
    drivers_.clear();  // kills and reaps what still runs
    auto [code, output] = RunSunray("stop");
    EXPECT_EQ(code, 0) << output;
    // Nothing of the cluster is left: no daemon, driver or worker (they all
    // carry this test's SUNRAY_TEMP_DIR), no session (token, addresses,
    // store socket), no bound socket under it, no shared memory entry.
    EXPECT_TRUE(Eventually([&] {
      return ProcessesWhose("environ", {"SUNRAY_TEMP_DIR=" + root_ + '\0'}).empty() &&
             ProcessesWhose("cmdline", {root_}).empty();
    })) << "still running: "
        << ::testing::PrintToString(ProcessesWhose("environ", {"SUNRAY_TEMP_DIR=" + root_ + '\0'}));
    std::error_code error;
    EXPECT_TRUE(fs::is_empty(root_, error)) << root_;
    EXPECT_EQ(UnixSocketsMentioning(root_), std::vector<std::string>());
    std::vector<std::string> new_shared_memory;
    for (const auto &name : SharedMemoryEntries()) {
      if (!shared_memory_before_.count(name) && name.find("sunray") != std::string::npos) {
        new_shared_memory.push_back(name);
      }
    }
    EXPECT_EQ(new_shared_memory, std::vector<std::string>());
    fs::remove_all(base_, error);
  }

  // Starts a driver joining this test's cluster with `args` (--ray_* flags
  // and a sub-command of driver_main.cc).
  Driver *StartDriver(const std::vector<std::string> &args) {
    std::vector<std::string> argv = {SUNRAY_TEST_DRIVER_PATH, "--ray_address=" + control_address_};
    argv.insert(argv.end(), args.begin(), args.end());
    const std::string log = drivers_dir_ + "/driver-" + std::to_string(drivers_.size()) + ".stderr";
    auto driver = Driver::Start(argv, log);
    if (driver == nullptr) {
      ADD_FAILURE() << "cannot start " << SUNRAY_TEST_DRIVER_PATH;
      return nullptr;
    }
    drivers_.push_back(std::move(driver));
    return drivers_.back().get();
  }

  // Runs a driver to its end; returns its stdout without the last newline,
  // or "exit CODE: OUTPUT" if it failed or did not end in time.
  std::string RunDriver(const std::vector<std::string> &args) {
    Driver *driver = StartDriver(args);
    if (driver == nullptr) return "cannot start";
    driver->CloseStdin();
    std::string output;
    while (auto line = driver->WaitForLine("")) output += (output.empty() ? "" : "\n") + *line;
    const std::optional<int> code = driver->Wait();
    if (code != 0) return "exit " + std::to_string(code.value_or(-1)) + ": " + driver->Output();
    return output;
  }

  std::string Status() { return RunSunray("status").second; }

  proto::GetNodeStatsReply NodeStats() {
    auto stub = proto::NodeService::NewStub(rpc::MakeChannel(node_address_));
    proto::GetNodeStatsReply stats;
    grpc::Status status =
        stub->GetNodeStats(rpc::MakeClientContext(token_, milliseconds(5000)).get(), {}, &stats);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return stats;
  }

  // Live processes started for job `job_id` (hex) of this cluster.
  std::vector<pid_t> ProcessesOfJob(const std::string &job_id) {
    return ProcessesWhose("environ",
                          {"SUNRAY_TEMP_DIR=" + root_ + '\0', "SUNRAY_JOB_ID=" + job_id + '\0'});
  }

  std::string base_, root_, drivers_dir_, session_;
  std::string control_address_, node_address_, token_;
  std::set<std::string> shared_memory_before_;
  std::vector<std::unique_ptr<Driver>> drivers_;
};

// --- Named actors and namespaces -------------------------------------------

TEST_F(MultiDriverTest, NamedActorsAreSharedWithinTheirNamespaceAndDieWithTheirDriver) {
  Driver *creator = StartDriver({"create-named", "counter", "ns1", "hold"});
  ASSERT_NE(creator, nullptr);
  auto created = creator->WaitForLine("created ");
  ASSERT_TRUE(created) << creator->Output();
  const pid_t actor_pid = std::stoi(created->substr(8));

  EXPECT_EQ(RunDriver({"--ray_job_namespace=ns1", "get-named", "counter"}), "found 1");
  EXPECT_EQ(RunDriver({"--ray_job_namespace=ns2", "get-named", "counter"}), "not-found");
  EXPECT_EQ(RunDriver({"get-named", "counter"}), "not-found");  // an anonymous namespace
  EXPECT_EQ(RunDriver({"--ray_job_namespace=ns2", "get-named", "counter", "ns1"}), "found 2");
  EXPECT_EQ(RunDriver({"--ray_job_namespace=ns1", "get-named", "other"}), "not-found");

  // Not detached: the actor ends with its creator's job.
  creator->CloseStdin();
  EXPECT_EQ(creator->Wait(), 0) << creator->Output();
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(actor_pid); }));
  EXPECT_TRUE(Eventually([&] {
    return RunDriver({"--ray_job_namespace=ns1", "get-named", "counter"}) == "not-found";
  }));
}

// --ray_default_actor_lifetime=detached: the actor outlives its job.
TEST_F(MultiDriverTest, ADetachedNamedActorOutlivesItsDriver) {
  const std::string created =
      RunDriver({"--ray_default_actor_lifetime=detached", "create-named", "counter", "ns1"});
  ASSERT_EQ(created.rfind("created ", 0), 0u) << created;
  const pid_t actor_pid = std::stoi(created.substr(8));
  ASSERT_TRUE(Eventually([&] {
    return Status().find("Jobs: 0 running, 1 finished") != std::string::npos;
  })) << Status();
  EXPECT_TRUE(ProcessAlive(actor_pid));
  EXPECT_EQ(RunDriver({"--ray_job_namespace=ns1", "get-named", "counter"}), "found 1");
}

// --- A driver killed with SIGKILL ------------------------------------------

TEST_F(MultiDriverTest, AKilledDriverLeavesNoWorkersAndFreesItsCpus) {
  Driver *driver = StartDriver({"block", drivers_dir_});
  ASSERT_NE(driver, nullptr);
  auto ready = driver->WaitForLine("ready ");
  ASSERT_TRUE(ready) << driver->Output();
  std::istringstream fields(ready->substr(6));
  std::string job_id;
  pid_t actor_pid = 0;
  fields >> job_id >> actor_pid;
  // Two sleepers, the task waiting for one of them, and the actor: each in
  // a worker running the driver's binary.
  const std::vector<pid_t> workers = ProcessesOfJob(job_id);
  EXPECT_GE(workers.size(), 4u) << ::testing::PrintToString(workers);
  for (pid_t worker : workers) {
    EXPECT_NE(
        ReadWhole("/proc/" + std::to_string(worker) + "/cmdline").find(SUNRAY_TEST_DRIVER_PATH),
        std::string::npos);
  }
  const std::string busy = Status();
  EXPECT_NE(busy.find("Jobs: 1 running, 0 finished"), std::string::npos) << busy;
  EXPECT_EQ(busy.find("CPU 2/2"), std::string::npos) << busy;

  kill(driver->pid(), SIGKILL);
  EXPECT_EQ(driver->Wait(), 128 + SIGKILL);
  EXPECT_TRUE(Eventually([&] { return ProcessesOfJob(job_id).empty(); }))
      << ::testing::PrintToString(ProcessesOfJob(job_id));
  // Its environment can vanish before the process does (it is exiting).
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(actor_pid); }));
  std::string idle;
  EXPECT_TRUE(Eventually([&] {
    idle = Status();
    return idle.find("CPU 2/2") != std::string::npos &&
           idle.find("Jobs: 0 running, 1 finished") != std::string::npos;
  })) << idle;
  // The cluster serves the next driver.
  EXPECT_EQ(RunDriver({"get-named", "counter"}), "not-found");
}

// The node deletes a dead driver's store objects: nobody else can free them.
TEST_F(MultiDriverTest, AKilledDriversObjectsLeaveTheNodeStore) {
  Driver *driver = StartDriver({"block", drivers_dir_});
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->WaitForLine("ready ")) << driver->Output();
  EXPECT_EQ(NodeStats().num_objects(), 1);  // its 1 MiB put
  kill(driver->pid(), SIGKILL);
  EXPECT_EQ(driver->Wait(), 128 + SIGKILL);
  proto::GetNodeStatsReply stats;
  EXPECT_TRUE(Eventually([&] {
    stats = NodeStats();
    return stats.num_objects() == 0 && stats.object_store_used_bytes() == 0;
  })) << stats.DebugString();
}

TEST_F(MultiDriverTest, ADetachedActorSurvivesItsDriversSigkill) {
  Driver *driver = StartDriver(
      {"--ray_default_actor_lifetime=detached", "create-named", "counter", "ns1", "hold"});
  ASSERT_NE(driver, nullptr);
  auto created = driver->WaitForLine("created ");
  ASSERT_TRUE(created) << driver->Output();
  const pid_t actor_pid = std::stoi(created->substr(8));
  kill(driver->pid(), SIGKILL);
  EXPECT_EQ(driver->Wait(), 128 + SIGKILL);
  ASSERT_TRUE(Eventually([&] {
    return Status().find("Jobs: 0 running, 1 finished") != std::string::npos;
  })) << Status();
  EXPECT_TRUE(ProcessAlive(actor_pid));
  EXPECT_EQ(RunDriver({"--ray_job_namespace=ns1", "get-named", "counter"}), "found 1");
}

// --- Workers that load user code from the code search path ------------------

TEST_F(MultiDriverTest, CodeSearchPathWorkersRunTheLibrarysFunctionsByName) {
  const std::string worker = fs::canonical(SUNRAY_WORKER_PATH).string();
  for (const std::string path : {SUNRAY_REMOTE_LIB_DIR, SUNRAY_REMOTE_LIB_PATH}) {
    SCOPED_TRACE(path);
    Driver *driver = StartDriver({"--ray_code_search_path=" + path, "call-lib"});
    ASSERT_NE(driver, nullptr);
    // The library's WhereAmI ran, in sunray-worker (not the driver's binary).
    auto where = driver->WaitForLine("where ");
    ASSERT_TRUE(where) << driver->Output();
    EXPECT_EQ(*where, "where remote_lib " + worker);
    // A function the library does not have.
    auto not_found = driver->WaitForLine("not-found-error ");
    ASSERT_TRUE(not_found) << driver->Output();
    EXPECT_NE(not_found->find("'NotInLib'"), std::string::npos) << *not_found;
    EXPECT_NE(not_found->find("code search path (" + path + ")"), std::string::npos) << *not_found;
    EXPECT_EQ(driver->Wait(), 0) << driver->Output();
  }
}

// --- Reference counting and the node's object store ------------------------

TEST_F(MultiDriverTest, DroppedRefsEmptyTheNodeStoreWhileAHeldRefKeepsItsObject) {
  Driver *driver = StartDriver({"store-refs"});
  ASSERT_NE(driver, nullptr);
  auto holding = driver->WaitForLine("holding ");
  ASSERT_TRUE(holding) << driver->Output();
  // Four puts (passed to tasks, two of them nested in a put vector), the held
  // put, a task's 1 MiB result, and a worker's put returned inside a value.
  EXPECT_EQ(*holding, "holding 8");
  proto::GetNodeStatsReply stats = NodeStats();
  EXPECT_EQ(stats.num_objects(), 7);
  EXPECT_GE(stats.object_store_used_bytes(), 7 * kMiB);

  driver->Send("drop");
  ASSERT_TRUE(driver->WaitForLine("dropped")) << driver->Output();
  EXPECT_TRUE(Eventually([&] {
    stats = NodeStats();
    return stats.num_objects() == 1;
  })) << stats.DebugString();
  EXPECT_GE(stats.object_store_used_bytes(), kMiB);
  EXPECT_LT(stats.object_store_used_bytes(), kMiB + 4096);

  driver->Send("check");
  EXPECT_EQ(driver->WaitForLine("kept "), "kept 1048576 1048576") << driver->Output();
  EXPECT_EQ(NodeStats().num_objects(), 1);

  driver->Send("release");
  ASSERT_TRUE(driver->WaitForLine("released")) << driver->Output();
  EXPECT_TRUE(Eventually([&] {
    stats = NodeStats();
    return stats.num_objects() == 0 && stats.object_store_used_bytes() == 0;
  })) << stats.DebugString();

  driver->Send("exit");
  EXPECT_EQ(driver->Wait(), 0) << driver->Output();
}

// A borrower that dies releases what it borrowed: its owner watches it.
TEST_F(MultiDriverTest, ADeadBorrowersRefsAreReleasedByTheOwner) {
  Driver *driver = StartDriver({"dead-borrower"});
  ASSERT_NE(driver, nullptr);
  ASSERT_TRUE(driver->WaitForLine("lent")) << driver->Output();
  // The driver dropped its ref; the actor's keeps the object.
  EXPECT_EQ(NodeStats().num_objects(), 1);
  driver->Send("kill");
  ASSERT_TRUE(driver->WaitForLine("killed")) << driver->Output();
  proto::GetNodeStatsReply stats;
  EXPECT_TRUE(Eventually([&] {
    stats = NodeStats();
    return stats.num_objects() == 0 && stats.object_store_used_bytes() == 0;
  })) << stats.DebugString();
  driver->CloseStdin();
  EXPECT_EQ(driver->Wait(), 0) << driver->Output();
}

// Regression: RemoveBorrower with an empty borrower address and a count of
// 5 freed an object its owner still held (the owner's next Get threw "it
// was freed"). An owner releases only what a registered borrower holds.
TEST_F(MultiDriverTest, AnOwnerIgnoresReleasesFromBorrowersItNeverRegistered) {
  Driver *driver = StartDriver({"hold-put"});
  ASSERT_NE(driver, nullptr);
  auto line = driver->WaitForLine("put ");
  ASSERT_TRUE(line.has_value()) << driver->Output();
  std::istringstream words(line->substr(4));
  std::string id_hex, owner;
  words >> id_hex >> owner;
  ASSERT_EQ(id_hex.size(), 56u) << *line;
  std::string id;
  for (size_t i = 0; i < id_hex.size(); i += 2) {
    id.push_back(static_cast<char>(std::stoi(id_hex.substr(i, 2), nullptr, 16)));
  }
  auto stub = proto::WorkerService::NewStub(rpc::MakeChannel(owner));
  for (const std::string &borrower : std::vector<std::string>{"", "127.0.0.1:1", owner}) {
    proto::RemoveBorrowerRequest request;
    request.set_object_id(id);
    request.set_borrower_address(borrower);
    request.set_count(5);
    proto::RemoveBorrowerReply reply;
    const grpc::Status status = stub->RemoveBorrower(
        rpc::MakeClientContext(token_, milliseconds(5000)).get(), request, &reply);
    EXPECT_FALSE(status.ok()) << "borrower '" << borrower << "'";
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  }
  driver->Send("read");
  EXPECT_TRUE(driver->WaitForLine("read " + std::to_string(kMiB)).has_value()) << driver->Output();
  EXPECT_EQ(NodeStats().num_objects(), 1);
  driver->CloseStdin();
  EXPECT_EQ(driver->Wait(), 0) << driver->Output();
}

}  // namespace
}  // namespace sunray

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);  // a driver that died must not take the test along
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
