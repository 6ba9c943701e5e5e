#include "src/common/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <set>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "src/common/environment.h"

extern char **environ;

namespace sunray {

absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string> &argv,
                                   const SpawnOptions &options) {
  if (argv.empty()) return absl::InvalidArgumentError("SpawnProcess: no program given");
  // Everything the child needs is prepared before fork: after fork only
  // async-signal-safe calls are allowed.
  std::vector<char *> args;
  for (const auto &arg : argv) args.push_back(const_cast<char *>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  // Entries in extra_env replace the parent's entries of the same name.
  auto name_of = [](const std::string &entry) { return entry.substr(0, entry.find('=')); };
  std::set<std::string> overridden;
  for (const auto &entry : options.extra_env) overridden.insert(name_of(entry));
  for (char **entry = environ; *entry != nullptr; ++entry) {
    if (!overridden.contains(name_of(*entry))) env_strings.emplace_back(*entry);
  }
  for (const auto &entry : options.extra_env) env_strings.push_back(entry);
  std::vector<char *> env;
  for (auto &entry : env_strings) env.push_back(entry.data());
  env.push_back(nullptr);
  int log_fd = -1;
  if (!options.log_path.empty() && options.output_fd < 0) {
    log_fd = open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::InternalError("cannot open log file " + options.log_path + ": " +
                                 std::strerror(errno));
    }
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) close(log_fd);
    return absl::InternalError(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    if (options.die_with_parent) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (getppid() != parent) _exit(1);  // the parent died before prctl
    }
    if (options.new_session) setsid();
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
    const int output_fd = options.output_fd >= 0 ? options.output_fd : log_fd;
    if (output_fd >= 0) {
      dup2(output_fd, STDOUT_FILENO);
      dup2(output_fd, STDERR_FILENO);
    }
    if (options.stderr_fd >= 0) dup2(options.stderr_fd, STDERR_FILENO);
    // Signals blocked by the parent's threads must not stay blocked.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execve(args[0], args.data(), env.data());
    _exit(127);
  }
  if (log_fd >= 0) close(log_fd);
  return pid;
}

std::string DescribeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

std::string DescribeExit(pid_t pid, std::chrono::milliseconds wait) {
  if (pid <= 0) return "";
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (true) {
    int status = 0;
    const pid_t reaped = waitpid(pid, &status, WNOHANG);
    if (reaped == pid) return DescribeWaitStatus(status);
    if (reaped < 0 || std::chrono::steady_clock::now() >= deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void MoveStderrToStdout() { dup2(STDOUT_FILENO, STDERR_FILENO); }

int OpenPidfd(pid_t pid) {
  if (pid <= 0) return -1;
  // The raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C".
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

bool PidfdExited(int pidfd) {
  pollfd fd{pidfd, POLLIN, 0};
  return poll(&fd, 1, 0) > 0;
}

ProcessWaiter::ProcessWaiter() : wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ProcessWaiter::~ProcessWaiter() {
  if (wake_fd_ >= 0) close(wake_fd_);
}

void ProcessWaiter::Wake() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
}

void ProcessWaiter::Wait(const std::vector<int> &pidfds, std::chrono::milliseconds timeout,
                         std::chrono::milliseconds fallback) {
  std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
  bool all_watched = wake_fd_ >= 0;
  for (int pidfd : pidfds) {
    if (pidfd < 0) {
      all_watched = false;
    } else {
      fds.push_back({pidfd, POLLIN, 0});
    }
  }
  if (!all_watched) timeout = std::min(timeout, fallback);
  const int timeout_ms = timeout == std::chrono::milliseconds::max()
                             ? -1
                             : static_cast<int>(std::clamp<int64_t>(timeout.count(), 0, INT_MAX));
  (void)poll(fds.data(), fds.size(), timeout_ms);
  uint64_t drained;
  if (wake_fd_ >= 0) (void)!read(wake_fd_, &drained, sizeof(drained));
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  // Reap it if it is our child and has exited.
  int status = 0;
  if (waitpid(pid, &status, WNOHANG) == pid) return false;
  if (kill(pid, 0) != 0 && errno != EPERM) return false;
  // An exited process that its parent (often init) has not reaped yet is a
  // zombie: it holds nothing any more, so it counts as gone.
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string content;
  std::getline(stat, content);
  const size_t end_of_name = content.rfind(')');
  if (end_of_name != std::string::npos && end_of_name + 2 < content.size()) {
    const char state = content[end_of_name + 2];
    if (state == 'Z' || state == 'X') return false;
  }
  return true;
}

bool TerminateProcess(pid_t pid, std::chrono::milliseconds grace) {
  if (!ProcessAlive(pid)) return true;
  kill(pid, SIGTERM);
  const auto kill_at = std::chrono::steady_clock::now() + grace;
  const auto give_up = kill_at + std::chrono::seconds(2);
  bool killed = false;
  while (ProcessAlive(pid)) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= give_up) return false;
    if (!killed && now >= kill_at) {
      kill(pid, SIGKILL);
      killed = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

namespace {
sigset_t StopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  return signals;
}
}  // namespace

void BlockStopSignals() {
  const sigset_t signals = StopSignals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
}

int WaitForStopSignal() {
  const sigset_t signals = StopSignals();
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  return signal_number;
}

std::string CurrentExecutable() {
  char path[PATH_MAX];
  ssize_t length = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (length <= 0) return "";
  return std::string(path, static_cast<size_t>(length));
}

void ConfigureMutexDeadlockDetection() {
  const char *value = std::getenv(env::kMutexDeadlockDetection);
  const bool on = value != nullptr && std::string_view(value) == "1";
  absl::SetMutexDeadlockDetectionMode(on ? absl::OnDeadlockCycle::kAbort
                                         : absl::OnDeadlockCycle::kIgnore);
}

}  // namespace sunray
