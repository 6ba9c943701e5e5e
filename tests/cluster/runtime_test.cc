// The cluster runtime end to end: each test's driver starts an embedded
// cluster (real control and node daemons, worker processes running this
// binary) in its own temp dir and checks that nothing outlives Shutdown.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <ray/api.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "src/testing/eventually.h"

using sunray::Eventually;

namespace {

int Square(int x) { return x * x; }

int SumOfSquares(int n) {
  std::vector<ray::ObjectRef<int>> parts;
  for (int i = 1; i <= n; ++i) parts.push_back(ray::Task(Square).Remote(i));
  int total = 0;
  for (const auto &value : ray::Get(parts)) total += *value;
  return total;
}

int Pid() { return static_cast<int>(getpid()); }

int Fail(int x) {
  if (x > 0) throw std::invalid_argument("x must not be positive");
  return x;
}

int Die(int) { _exit(3); }

// Dies the first time (leaving `marker`), returns 2 the second time.
int DieOnce(std::string marker) {
  if (!std::filesystem::exists(marker)) {
    std::ofstream(marker).put('1');
    _exit(3);
  }
  return 2;
}

// Appends a byte to `counter` per attempt, then dies.
int AlwaysDie(std::string counter) {
  std::ofstream(counter, std::ios::app).put('1');
  _exit(3);
}

size_t Length(std::string data) { return data.size(); }

std::string MakeBlob(int mib) { return std::string(static_cast<size_t>(mib) << 20, 'b'); }

// A ref put inside a task travels back inside its result.
std::vector<ray::ObjectRef<int>> PutInside(int value) { return {ray::Put(value)}; }

int SumRefs(std::vector<ray::ObjectRef<int>> refs) {
  int total = 0;
  for (auto &ref : refs) total += *ref.Get();
  return total;
}

// Each level waits for the next one, holding its lease's CPU.
int Depth(int levels) {
  if (levels == 0) return 0;
  return *ray::Task(Depth).Remote(levels - 1).Get() + 1;
}

RAY_REMOTE(Square, SumOfSquares, Pid, Fail, Die, DieOnce, AlwaysDie, Length, MakeBlob, PutInside,
           SumRefs, Depth);

class Recorder {
 public:
  static Recorder *Create() { return new Recorder(); }
  int Append(int value) {
    values_.push_back(value);
    return static_cast<int>(values_.size());
  }
  std::vector<int> Values() { return values_; }
  int Pid() { return static_cast<int>(getpid()); }

 private:
  std::vector<int> values_;
};

RAY_REMOTE(Recorder::Create, &Recorder::Append, &Recorder::Values, &Recorder::Pid);

// Opened by one task while another waits for it (max_concurrency 2).
class Gate {
 public:
  static Gate *Create() { return new Gate(); }
  bool WaitOpen(int timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    return opened_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return open_; });
  }
  bool Open() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      open_ = true;
    }
    opened_.notify_all();
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable opened_;
  bool open_ = false;
};

RAY_REMOTE(Gate::Create, &Gate::WaitOpen, &Gate::Open);

bool PassGate(ray::ActorHandle<Gate> gate) {
  return *gate.Task(&Gate::WaitOpen).Remote(10000).Get();
}
bool OpenGate(ray::ActorHandle<Gate> gate) { return *gate.Task(&Gate::Open).Remote().Get(); }

RAY_REMOTE(PassGate, OpenGate);

// An actor call from a task (another caller than the driver).
int AppendFromATask(ray::ActorHandle<Recorder> recorder, int value) {
  return *recorder.Task(&Recorder::Append).Remote(value).Get(10000);
}

RAY_REMOTE(AppendFromATask);

std::string ReadEnvVar(std::string name) {
  const char *value = std::getenv(name.c_str());
  return value != nullptr ? value : "<unset>";
}
std::string ReadEnvVarNested(std::string name) { return *ray::Task(ReadEnvVar).Remote(name).Get(); }

class EnvReader {
 public:
  static EnvReader *Create() { return new EnvReader(); }
  std::string Read(std::string name) { return ReadEnvVar(name); }
};

RAY_REMOTE(ReadEnvVar, ReadEnvVarNested, EnvReader::Create, &EnvReader::Read);

// Puts `value` (so this worker owns it) and returns the ref inside its
// result; writes its pid to `pid_file`, and exits soon after answering.
std::vector<ray::ObjectRef<int>> PutInsideThenExit(int value, std::string pid_file) {
  std::ofstream(pid_file) << getpid();
  std::thread([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    _exit(0);
  }).detach();
  return {ray::Put(value)};
}

RAY_REMOTE(PutInsideThenExit);

// Processes whose command line mentions `needle`.
std::vector<int> ProcessesMentioning(const std::string &needle) {
  std::vector<int> found;
  for (const auto &entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string content;
    try {
      std::ifstream cmdline(entry.path() / "cmdline");
      content.assign(std::istreambuf_iterator<char>(cmdline), {});
    } catch (const std::exception &) {
      continue;  // it exited while we read (ESRCH)
    }
    if (content.find(needle) != std::string::npos && std::stoi(name) != getpid()) {
      found.push_back(std::stoi(name));
    }
  }
  return found;
}

std::string ReadAll(const std::string &path) {
  std::ifstream file(path);
  return std::string((std::istreambuf_iterator<char>(file)), {});
}

class ClusterRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = std::filesystem::temp_directory_path() / "sunray-rt-XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    temp_dir_ = pattern;
    setenv("SUNRAY_TEMP_DIR", temp_dir_.c_str(), 1);
    ray::RayConfig config;
    config.head_args = {"--num-cpus", "2"};
    ray::Init(config);
  }

  void TearDown() override {
    ray::Shutdown();
    // Daemons and workers are gone, and so is the session.
    EXPECT_TRUE(Eventually([&] { return ProcessesMentioning(temp_dir_).empty(); }));
    std::error_code error;
    EXPECT_TRUE(std::filesystem::is_empty(temp_dir_, error) ||
                !std::filesystem::exists(temp_dir_ + "/session_latest"));
    std::filesystem::remove_all(temp_dir_, error);
  }

  std::string temp_dir_;
};

TEST_F(ClusterRuntimeTest, TasksRunInWorkerProcesses) {
  EXPECT_EQ(*ray::Task(Square).Remote(7).Get(), 49);
  EXPECT_NE(*ray::Task(Pid).Remote().Get(), getpid());
}

// Housekeeping sleeps until a lease is due (no polling): an idle lease must
// still go back after its linger, or a task needing the whole node would
// wait for it forever.
TEST_F(ClusterRuntimeTest, AnIdleLeaseGoesBackToTheNodeAfterItsLinger) {
  EXPECT_EQ(*ray::Task(Square).Remote(2).Get(), 4);  // holds one of the 2 CPUs
  EXPECT_EQ(*ray::Task(Square).SetResource("CPU", 2).Remote(3).Get(10000), 9);
  EXPECT_EQ(*ray::Task(Square).Remote(4).Get(10000), 16);
}

TEST_F(ClusterRuntimeTest, NestedTasksAndObjectRefArguments) {
  auto nine = ray::Task(Square).Remote(3);
  EXPECT_EQ(*ray::Task(Square).Remote(nine).Get(), 81);
  EXPECT_EQ(*ray::Task(SumOfSquares).Remote(10).Get(), 385);
}

TEST_F(ClusterRuntimeTest, NestingDeeperThanTheCpusDoesNotDeadlock) {
  // Two CPUs, six levels: a blocked task lends its CPU to the next level.
  EXPECT_EQ(*ray::Task(Depth).Remote(6).Get(), 6);
}

TEST_F(ClusterRuntimeTest, TasksQueuedBehindATaskThatBlocksInGetRunElsewhere) {
  // One CPU: the first lease's worker gets PassGate, and OpenGate queued
  // behind it (the backlog is deeper than the one worker). PassGate then
  // waits in Get for what only OpenGate does: the worker sends OpenGate back
  // and the owner runs it in another worker (PassGate lends its CPU).
  // Without that, PassGate gives up after 10 s.
  ray::Shutdown();
  ray::RayConfig config;
  config.head_args = {"--num-cpus", "1"};
  ray::Init(config);
  auto gate = ray::Actor(Gate::Create).SetMaxConcurrency(2).Remote();
  auto passed = ray::Task(PassGate).Remote(gate);
  auto opened = ray::Task(OpenGate).Remote(gate);
  auto filler = ray::Task(Square).Remote(2);
  EXPECT_TRUE(*passed.Get());
  EXPECT_TRUE(*opened.Get());
  EXPECT_EQ(*filler.Get(), 4);
}

TEST_F(ClusterRuntimeTest, TheJobsRuntimeEnvIsTheDefaultOfEveryTaskAndActor) {
  using EnvVars = std::map<std::string, std::string>;
  ray::Shutdown();
  ray::RayConfig config;
  config.head_args = {"--num-cpus", "2"};
  ray::RuntimeEnv job;
  job.Set("env_vars", EnvVars{{"SUNRAY_JOB_ONLY", "job"}, {"SUNRAY_BOTH", "job"}});
  config.runtime_env = job;
  ray::Init(config);
  const std::string job_only = "SUNRAY_JOB_ONLY";
  const std::string both = "SUNRAY_BOTH";
  EXPECT_EQ(*ray::Task(ReadEnvVar).Remote(job_only).Get(), "job");
  // A task's own env_vars win over the job's; the rest still apply.
  ray::RuntimeEnv own;
  own.Set("env_vars", EnvVars{{"SUNRAY_BOTH", "task"}});
  EXPECT_EQ(*ray::Task(ReadEnvVar).SetRuntimeEnv(own).Remote(both).Get(), "task");
  EXPECT_EQ(*ray::Task(ReadEnvVar).SetRuntimeEnv(own).Remote(job_only).Get(), "job");
  // Nested tasks inherit their parent's env.
  EXPECT_EQ(*ray::Task(ReadEnvVarNested).SetRuntimeEnv(own).Remote(both).Get(), "task");
  EXPECT_EQ(*ray::Task(ReadEnvVarNested).Remote(job_only).Get(), "job");
  auto actor = ray::Actor(EnvReader::Create).Remote();
  EXPECT_EQ(*actor.Task(&EnvReader::Read).Remote(job_only).Get(), "job");
}

TEST_F(ClusterRuntimeTest, ABorrowersGetOfADeadOwnersObjectFailsNamingTheOwner) {
  const std::string pid_file = temp_dir_ + "/owner.pid";
  auto refs = *ray::Task(PutInsideThenExit).Remote(5, pid_file).Get();
  ASSERT_EQ(refs.size(), 1u);
  const int owner_pid = std::stoi(ReadAll(pid_file));
  ASSERT_TRUE(Eventually([&] { return kill(owner_pid, 0) != 0; }));
  try {
    refs[0].Get(10000);
    ADD_FAILURE() << "Get of an object whose owner died returned";
  } catch (const ray::internal::UnreconstructableException &e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("is lost: its owner at"), std::string::npos) << message;
    EXPECT_NE(message.find("cannot be reached"), std::string::npos) << message;
  }
}

TEST_F(ClusterRuntimeTest, AClusterInATempDirTooDeepForSocketPathsWorks) {
  // The store's socket would be longer than a socket path may be (107
  // bytes): it takes an abstract name instead of a file.
  ray::Shutdown();
  const std::string deep = temp_dir_ + "/" + std::string(100, 'd');
  ASSERT_TRUE(std::filesystem::create_directories(deep));
  setenv("SUNRAY_TEMP_DIR", deep.c_str(), 1);
  ray::RayConfig config;
  config.head_args = {"--num-cpus", "2"};
  ray::Init(config);
  EXPECT_EQ(*ray::Task(Square).Remote(9).Get(), 81);
  EXPECT_EQ(*ray::Task(Length).Remote(std::string(1 << 20, 'x')).Get(), size_t{1} << 20);
}

TEST_F(ClusterRuntimeTest, MoreActorsThanCpusAllRun) {
  std::vector<ray::ActorHandle<Recorder>> actors;
  for (int i = 0; i < 5; ++i) actors.push_back(ray::Actor(Recorder::Create).Remote());
  std::vector<ray::ObjectRef<int>> pids;
  for (auto &actor : actors) pids.push_back(actor.Task(&Recorder::Pid).Remote());
  std::set<int> distinct;
  for (const auto &pid : ray::Get(pids)) distinct.insert(*pid);
  EXPECT_EQ(distinct.size(), 5u);
}

// A worker whose runtime fails after its threads started (here: the node
// knows no worker starting with its token) stops them before the error
// leaves the constructor, and exits 1 naming the cause; it used to abort in
// std::thread's destructor (a constructor that throws gets no destructor).
TEST_F(ClusterRuntimeTest, AWorkerTheNodeRefusesExitsNamingTheCauseInsteadOfAborting) {
  std::string session;  // the embedded cluster's: <temp>/embedded-*/session_latest
  for (const auto &entry : std::filesystem::directory_iterator(temp_dir_)) {
    if (entry.path().filename().string().rfind("embedded-", 0) == 0) {
      session = (entry.path() / "session_latest").string();
    }
  }
  ASSERT_FALSE(session.empty());
  std::vector<std::string> env_strings = {
      "SUNRAY_STARTUP_TOKEN=987654321",
      "SUNRAY_CONTROL_ADDRESS=" + ReadAll(session + "/control_address"),
      "SUNRAY_NODE_ADDRESS=" + ReadAll(session + "/node_address"),
      "SUNRAY_TOKEN=" + ReadAll(session + "/token"),
      "SUNRAY_JOB_ID=01000000",
      "PATH=/usr/bin:/bin"};
  std::vector<char *> env;
  for (auto &entry : env_strings) env.push_back(entry.data());
  env.push_back(nullptr);
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string log_path = temp_dir_ + "/refused-worker.log";
  char *child_argv[] = {self.data(), nullptr};
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) {
      dup2(log, STDOUT_FILENO);
      dup2(log, STDERR_FILENO);
    }
    execve(self.c_str(), child_argv, env.data());
    _exit(127);
  }
  int status = 0;
  ASSERT_TRUE(Eventually([&] { return waitpid(pid, &status, WNOHANG) == pid; }))
      << ReadAll(log_path);
  const std::string log = ReadAll(log_path);
  ASSERT_TRUE(WIFEXITED(status)) << "ended by signal " << WTERMSIG(status) << ": " << log;
  EXPECT_EQ(WEXITSTATUS(status), 1) << log;
  EXPECT_NE(log.find("no worker is starting with token 987654321"), std::string::npos) << log;
  EXPECT_NE(log.find("[worker] [critical]"), std::string::npos) << log;
}

TEST_F(ClusterRuntimeTest, AKilledDriversEmbeddedClusterLeavesNothing) {
  const std::string root = temp_dir_ + "/k";  // short: socket paths live under it
  ASSERT_TRUE(std::filesystem::create_directory(root));
  // Prepared before fork: the child only redirects and execs.
  std::vector<std::string> env_strings = {"SUNRAY_TEMP_DIR=" + root, "SUNRAY_TEST_HOLD_EMBEDDED=1",
                                          "PATH=/usr/bin:/bin"};
  std::vector<char *> env;
  for (auto &entry : env_strings) env.push_back(entry.data());
  env.push_back(nullptr);
  // Its real path: workers are started with the driver's command line.
  std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
  char *child_argv[] = {self.data(), nullptr};
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    const int log = open((root + ".log").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (log >= 0) dup2(log, STDERR_FILENO);
    execve(self.c_str(), child_argv, env.data());
    _exit(127);
  }
  close(out[1]);
  // Its first line, waited for with a deadline.
  std::string output;
  char buffer[256];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (output.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd ready{out[0], POLLIN, 0};
    if (poll(&ready, 1, 100) <= 0) continue;
    const ssize_t n = read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, static_cast<size_t>(n));
  }
  close(out[0]);
  EXPECT_EQ(output, "ready 9\n") << ReadAll(root + ".log");
  ASSERT_FALSE(ProcessesMentioning(root).empty());  // its daemons run
  kill(pid, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  // The daemons notice their driver is gone, stop, and remove its root.
  EXPECT_TRUE(Eventually([&] { return ProcessesMentioning(root).empty(); }));
  EXPECT_TRUE(Eventually([&] { return std::filesystem::is_empty(root); }));
}

TEST_F(ClusterRuntimeTest, TenThousandSmallTasks) {
  std::vector<ray::ObjectRef<int>> refs;
  refs.reserve(10000);
  for (int i = 0; i < 10000; ++i) refs.push_back(ray::Task(Square).Remote(i % 100));
  long total = 0;
  for (const auto &value : ray::Get(refs)) total += *value;
  long expected = 0;
  for (int i = 0; i < 10000; ++i) expected += (i % 100) * (i % 100);
  EXPECT_EQ(total, expected);
}

TEST_F(ClusterRuntimeTest, LargeObjectsGoThroughTheNodeStore) {
  // 256 MiB from the driver to a task, and 64 MiB back from a task.
  ray::ObjectRef<std::string> blob = ray::Put(std::string(256u << 20, 'x'));
  EXPECT_EQ(*ray::Task(Length).Remote(blob).Get(), 256u << 20);
  std::shared_ptr<std::string> made = ray::Task(MakeBlob).Remote(64).Get();
  EXPECT_EQ(made->size(), 64u << 20);
}

TEST_F(ClusterRuntimeTest, RefsReturnedInsideValuesStayAlive) {
  std::vector<ray::ObjectRef<int>> refs = *ray::Task(PutInside).Remote(21).Get();
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(*refs[0].Get(), 21);
  EXPECT_EQ(*ray::Task(SumRefs).Remote(refs).Get(), 21);
}

TEST_F(ClusterRuntimeTest, TaskExceptionsArriveWithTypeFunctionAndPid) {
  try {
    ray::Task(Fail).Remote(1).Get();
    FAIL() << "expected RayTaskException";
  } catch (const ray::internal::RayTaskException &e) {
    EXPECT_EQ(e.FunctionName(), "Fail");
    EXPECT_NE(e.ExceptionType().find("invalid_argument"), std::string::npos);
    EXPECT_EQ(e.ExceptionMessage(), "x must not be positive");
    EXPECT_NE(std::string(e.what()).find("pid "), std::string::npos);
  }
}

TEST_F(ClusterRuntimeTest, AWorkerThatDiesFailsItsTaskWithRayWorkerException) {
  EXPECT_THROW(ray::Task(Die).SetMaxRetries(0).Remote(0).Get(), ray::internal::RayWorkerException);
  EXPECT_EQ(*ray::Task(Square).Remote(5).Get(), 25);  // a new worker takes over
}

TEST_F(ClusterRuntimeTest, ATaskWhoseWorkerDiesRunsAgainWhileRetriesLast) {
  // The first attempt kills its worker, the second finds the marker and returns.
  const std::string marker = temp_dir_ + "/died-once";
  EXPECT_EQ(*ray::Task(DieOnce).Remote(marker).Get(), 2);
  // With every attempt dying, the retries run out: 1 + 2 attempts.
  const std::string counter = temp_dir_ + "/attempts";
  EXPECT_THROW(ray::Task(AlwaysDie).SetMaxRetries(2).Remote(counter).Get(),
               ray::internal::RayWorkerException);
  EXPECT_EQ(std::filesystem::file_size(counter), 3u);
}

TEST_F(ClusterRuntimeTest, ActorCallsRunInOrderInTheActorsProcess) {
  auto actor = ray::Actor(Recorder::Create).Remote();
  std::vector<ray::ObjectRef<int>> sizes;
  for (int i = 0; i < 200; ++i) sizes.push_back(actor.Task(&Recorder::Append).Remote(i));
  std::vector<int> expected(200);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(*actor.Task(&Recorder::Values).Remote().Get(), expected);
  EXPECT_NE(*actor.Task(&Recorder::Pid).Remote().Get(), getpid());
}

TEST_F(ClusterRuntimeTest, AKilledActorsCallsFailWithRayActorException) {
  auto actor = ray::Actor(Recorder::Create).Remote();
  const int pid = *actor.Task(&Recorder::Pid).Remote().Get();
  actor.Kill();
  EXPECT_TRUE(Eventually([&] { return kill(pid, 0) != 0; }));
  EXPECT_THROW(actor.Task(&Recorder::Append).Remote(1).Get(), ray::internal::RayActorException);
}

TEST_F(ClusterRuntimeTest, NamedActorsAreFoundByName) {
  ray::Actor(Recorder::Create).SetName("recorder").Remote();
  auto found = ray::GetActor<Recorder>("recorder");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(*found->Task(&Recorder::Append).Remote(1).Get(), 1);
  EXPECT_FALSE(ray::GetActor<Recorder>("recorder", "another-namespace").has_value());
}

// A caller waiting in Get reads the task stream it last sent on (the
// answer wakes it directly). When what it waits for comes on another
// stream, it must be woken all the same, not when the stream it reads
// brings something.
TEST_F(ClusterRuntimeTest, AGetIsAnsweredAtOnceWhenItsAnswerComesOnAnotherStreamThanTheLastSent) {
  auto recorder = ray::Actor(Recorder::Create).Remote();
  auto gate = ray::Actor(Gate::Create).SetMaxConcurrency(2).Remote();
  // Both actors' streams are open: from now on this thread sends its
  // calls itself.
  ASSERT_EQ(*recorder.Task(&Recorder::Append).Remote(0).Get(20000), 1);
  ASSERT_FALSE(*gate.Task(&Gate::WaitOpen).Remote(0).Get(20000));
  // Sent last from this thread, and unanswered until the gate opens (or
  // 15 s pass).
  auto stalled = gate.Task(&Gate::WaitOpen).Remote(15000);
  // Sent from another thread: its answer comes on the recorder's stream.
  ray::ObjectRef<int> appended;
  std::thread([&] { appended = recorder.Task(&Recorder::Append).Remote(1); }).join();
  EXPECT_EQ(*appended.Get(30000), 2);
  // Answered while the gate's call still waits.
  EXPECT_TRUE(ray::Wait(std::vector<ray::ObjectRef<bool>>{stalled}, 1, 0).ready.empty());
  EXPECT_TRUE(*gate.Task(&Gate::Open).Remote().Get(20000));
  EXPECT_TRUE(*stalled.Get(20000));
}

// An idle actor's execution thread reads the stream its last call came on;
// a call from another caller (another stream) must still run at once.
TEST_F(ClusterRuntimeTest, AnIdleActorRunsACallFromASecondCallerWhileReadingTheFirstsStream) {
  auto recorder = ray::Actor(Recorder::Create).Remote();
  ASSERT_EQ(*recorder.Task(&Recorder::Append).Remote(1).Get(), 1);
  // The driver sends nothing more to the actor until this returns.
  EXPECT_EQ(*ray::Task(AppendFromATask).Remote(recorder, 2).Get(20000), 2);
  EXPECT_EQ(*recorder.Task(&Recorder::Values).Remote().Get(20000), (std::vector<int>{1, 2}));
}

}  // namespace

int main(int argc, char **argv) {
  if (std::getenv("SUNRAY_STARTUP_TOKEN") != nullptr) {
    ray::RayConfig config;
    ray::Init(config, argc, argv);  // a worker: never returns
  }
  if (std::getenv("SUNRAY_TEST_HOLD_EMBEDDED") != nullptr) {
    // A driver for AKilledDriversEmbeddedClusterLeavesNothing: starts its
    // cluster, runs a task, says so, and waits to be killed.
    ray::RayConfig config;
    config.head_args = {"--num-cpus", "1"};
    ray::Init(config);
    std::printf("ready %d\n", *ray::Task(Square).Remote(3).Get());
    std::fflush(stdout);
    for (;;) pause();
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
