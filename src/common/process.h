// Starting, watching and stopping processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sunray {

struct SpawnOptions {
  // File that receives the child's stdout and stderr (appended); empty keeps
  // the parent's.
  std::string log_path;
  // Start a new session, detached from the terminal (daemons).
  bool new_session = false;
  // Ask the kernel to SIGTERM the child when this thread's process dies, so
  // nothing outlives an embedded cluster's driver.
  bool die_with_parent = false;
  // Extra environment entries ("NAME=value") on top of the parent's.
  std::vector<std::string> extra_env;
  // Receives stdout and stderr instead of log_path (a memfd, say, where the
  // disk may be full); the caller keeps and closes it.
  int output_fd = -1;
  // Receives stderr alone, after the above: a daemon's startup pipe (see
  // MoveStderrToStdout).
  int stderr_fd = -1;
};

// Starts argv[0] (a path) with `argv`. Returns the child's pid.
absl::StatusOr<pid_t> SpawnProcess(const std::vector<std::string> &argv,
                                   const SpawnOptions &options);

// A waitpid status in words: "exited with status 1", "killed by signal 9".
std::string DescribeWaitStatus(int status);
// How the child `pid` ended, reaping it (DescribeWaitStatus); waits up to
// `wait` for it to end. Empty if it still runs, or is not our child.
std::string DescribeExit(pid_t pid, std::chrono::milliseconds wait = {});

// A daemon whose starter reads its stderr for startup errors (a pipe) calls
// this once it is ready: stderr then goes where stdout goes (its log), and the
// starter sees the pipe close.
void MoveStderrToStdout();

// A pidfd for `pid` (readable once the process exits; immune to pid reuse),
// or -1 where the kernel refuses (then poll with ProcessAlive).
int OpenPidfd(pid_t pid);
// Whether the process behind `pidfd` has exited (never blocks).
bool PidfdExited(int pidfd);

// What a thread that watches processes sleeps on: the pidfds it watches and
// an eventfd that other threads write to wake it (work for it, Stop).
// Wake is thread-safe; Wait belongs to the watching thread.
class ProcessWaiter {
 public:
  ProcessWaiter();
  ~ProcessWaiter();
  ProcessWaiter(const ProcessWaiter &) = delete;
  ProcessWaiter &operator=(const ProcessWaiter &) = delete;

  void Wake();
  // Sleeps until one of `pidfds` is readable, Wake was called since the last
  // Wait returned, or `timeout` passes (milliseconds::max(): none). Where a
  // pidfd is -1 (refused) or the eventfd could not be made, sleeps at most
  // `fallback`, so the caller can look for itself.
  void Wait(const std::vector<int> &pidfds, std::chrono::milliseconds timeout,
            std::chrono::milliseconds fallback);

 private:
  const int wake_fd_;
};

// Whether `pid` names a live process (a zombie child counts as gone).
bool ProcessAlive(pid_t pid);

// SIGTERM, then SIGKILL once `grace` has passed; waits (up to grace + 2 s)
// until the process is gone. Returns whether it is gone.
bool TerminateProcess(pid_t pid, std::chrono::milliseconds grace);

// Blocks SIGTERM and SIGINT in the calling thread. Call it before any other
// thread starts, so every thread inherits the mask and WaitForStopSignal
// receives the signal. (SpawnProcess gives children an empty mask.)
void BlockStopSignals();
// Waits for SIGTERM or SIGINT (blocked with BlockStopSignals); returns it.
int WaitForStopSignal();

// The absolute path of the running executable.
std::string CurrentExecutable();

// Abseil's lock-order (deadlock) detection, which Debian's Abseil leaves on
// (it is built without NDEBUG): a graph lookup under one process-wide lock
// on every Mutex acquisition. Off unless SUNRAY_MUTEX_DEADLOCK_DETECTION is
// "1" (then it aborts on a lock-order cycle, as Abseil's debug default
// does). Called first by ray::Init and the `sunray` program.
void ConfigureMutexDeadlockDetection();

}  // namespace sunray
