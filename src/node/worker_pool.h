// The node daemon's worker processes.
//
// PopWorker hands out an idle worker of the job started with the same
// environment entries (a runtime env's env_vars), or starts a new process
// (its stdout and stderr go to <logs_dir>/worker-<token>.out) and hands it
// out once the process has registered (RegisterWorker, matched by the
// startup token passed in SUNRAY_STARTUP_TOKEN). At most `soft_limit`
// workers that use a CPU are busy at once; workers marked blocked (waiting in
// Get) do not count, so nested work cannot deadlock the node, and neither do
// workers leased without CPU (actors, by default), which mostly wait for
// calls. Requests beyond the limit wait for a worker to come back. A process that does not register
// within `register_timeout`, or exits, fails its pending request. PushWorker makes a worker idle
// again. Stop kills every worker.
//
// A registered worker whose process exits is dropped from the pool and
// handed to the exit callback with how it ended, so the node can free its
// lease and tell the control service. KillWorker stops one worker (SIGTERM,
// SIGKILL after `kill_grace`); KillJobWorkers stops a finished job's
// workers except those hosting detached actors.
//
// Thread-safe. Callbacks run without the pool's lock held, on the calling
// thread or on the pool's own thread. That thread starts every worker
// process (fork and exec, outside the lock): the kernel ties a child's
// parent-death signal to the thread that forked it, so forking on a caller's
// thread (a gRPC handler, which gRPC may end) would signal the worker when
// that thread ends. It also reaps exited workers and sends the delayed
// SIGKILLs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/common/id.h"
#include "src/common/process.h"

namespace sunray {

struct WorkerInfo {
  int64_t startup_token = 0;
  pid_t pid = 0;
  JobID job_id;
  std::string address;       // set at registration: its WorkerService
  std::string task_address;  // and where it takes task streams
  std::string log_path;
  bool detached = false;  // handed out for a detached actor: outlives its job's driver
};

class WorkerPool {
 public:
  struct Options {
    std::string logs_dir;
    int soft_limit = 1;
    std::chrono::milliseconds register_timeout{30000};
    std::chrono::milliseconds kill_grace{2000};
  };
  // How to start a worker for a job: the program and its arguments, plus
  // environment entries added to the daemon's own.
  struct Launch {
    std::vector<std::string> argv;
    std::vector<std::string> env;
  };
  using Callback = std::function<void(absl::StatusOr<WorkerInfo>)>;
  // A registered worker's process exited: its info and how it ended
  // ("exited with status 1", "killed by signal 9").
  using ExitCallback = std::function<void(const WorkerInfo &worker, const std::string &how)>;

  explicit WorkerPool(Options options);
  ~WorkerPool();
  WorkerPool(const WorkerPool &) = delete;
  WorkerPool &operator=(const WorkerPool &) = delete;

  // Set before the first PopWorker; runs on the reaper thread and must stay
  // callable until Stop returns.
  void SetExitCallback(ExitCallback callback);

  // Hands out a worker of `job_id` (marked `detached` if it will host a
  // detached actor) through `callback`. `uses_cpu`: the worker's lease holds
  // CPU, so it counts against the soft limit.
  void PopWorker(const JobID &job_id, const Launch &launch, bool detached, bool uses_cpu,
                 Callback callback);
  // The worker finished its lease and may serve the job again.
  void PushWorker(int64_t startup_token);
  // A worker blocked in Get/Wait frees its slot; unblocking takes it back.
  void SetBlocked(int64_t startup_token, bool blocked);
  // Called by the RegisterWorker handler; `done` gets the outcome: NotFound
  // for an unknown token, PermissionDenied for another process's token.
  // Never blocks: a registration that overtakes the recording of its
  // process's pid (the pool's thread forks) is answered by that thread
  // once it has the pid.
  using Registered = std::function<void(absl::Status)>;
  void RegisterWorker(int64_t startup_token, pid_t pid, const std::string &address,
                      const std::string &task_address, Registered done);

  // Sends the worker SIGTERM (SIGKILL with `force`), and SIGKILL after
  // kill_grace if it still runs; it is never handed out again. NotFound for
  // an unknown (or already reaped) token.
  absl::Status KillWorker(int64_t startup_token, bool force);
  // The job finished: kills its workers (starting, idle or busy) except
  // detached ones, and fails its waiting requests that are not for
  // detached actors with Cancelled. Returns how many workers it killed.
  int KillJobWorkers(const JobID &job_id);

  // Kills every worker and fails every pending request. Idempotent.
  void Stop();

  int NumProcesses() const;

 private:
  enum class State { kStarting, kIdle, kBusy };
  struct Worker {
    WorkerInfo info;
    State state = State::kStarting;
    bool blocked = false;
    bool uses_cpu = true;          // of its current (or starting) lease
    bool killed = false;           // being stopped: never handed out again
    std::vector<std::string> env;  // what it was started with (Launch::env)
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point sigkill_at = std::chrono::steady_clock::time_point::max();
    // Until the pool's thread has started its process (info.pid is 0 until
    // then): what to run.
    bool spawned = false;
    std::vector<std::string> argv;
    // A registration that came before the pid was recorded.
    struct EarlyRegistration {
      pid_t pid;
      std::string address;
      std::string task_address;
      Registered done;
    };
    std::optional<EarlyRegistration> early;
    int pidfd = -1;                 // readable once the process exits; closed when reaped
    bool register_expired = false;  // killed for not registering in time
  };
  struct Request {
    JobID job_id;
    Launch launch;
    bool detached = false;
    bool uses_cpu = true;
    Callback callback;
    int64_t starting_token = 0;  // the process started for it, if any
  };

  // Hands idle workers to waiting requests and starts processes while the
  // limit allows; collects callbacks to run after unlocking.
  void DispatchLocked(std::vector<std::function<void()>> *ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int BusyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void KillLocked(Worker &worker, bool force) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReapLocked(pid_t pid, int status, std::vector<std::function<void()>> *ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the processes of workers queued in to_spawn_ (on the pool's
  // thread; unlocks around each fork). A worker killed meanwhile, or a pool
  // stopping, gets SIGKILL at once.
  void SpawnQueuedLocked(std::vector<std::function<void()>> *ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes a registration for `worker` (spawned): the worker becomes idle or
  // goes to the request that started it.
  absl::Status RegisterLocked(int64_t startup_token, Worker &worker, pid_t pid,
                              const std::string &address, const std::string &task_address,
                              std::vector<std::function<void()>> *ready)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Answers a registration that came early for a worker that will never
  // have a process.
  static void RefuseEarly(Worker &worker, const std::string &why,
                          std::vector<std::function<void()>> *ready);
  // Wakes the pool's thread. (Other waiters wait on conditions of mu_.)
  void WakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The pool's thread: waits (without the lock) for a worker's exit, a
  // wake-up or `deadline`; returns at once while workers wait to start.
  void WaitForEventLocked(std::chrono::steady_clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReaperLoop();
  // How often the pool's thread looks for exits where a pidfd is missing.
  static constexpr std::chrono::milliseconds kPollFallback{20};

  const Options options_;
  mutable absl::Mutex mu_;
  std::map<int64_t, Worker> workers_ ABSL_GUARDED_BY(mu_);  // by startup token
  std::deque<Request> requests_ ABSL_GUARDED_BY(mu_);
  std::deque<int64_t> to_spawn_ ABSL_GUARDED_BY(mu_);  // tokens, oldest first
  ExitCallback on_exit_ ABSL_GUARDED_BY(mu_);
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  ProcessWaiter waiter_;  // the pool's thread sleeps here
  std::thread reaper_;    // the pool's thread: spawns, reaps, kills late
};

}  // namespace sunray
