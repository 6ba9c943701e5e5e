// The node daemon's worker processes.
//
// PopWorker hands out an idle worker of the job, or starts a new process
// (its stdout and stderr go to <logs_dir>/worker-<token>.out) and hands it
// out once the process has registered (RegisterWorker, matched by the
// startup token passed in SUNRAY_STARTUP_TOKEN). At most `soft_limit`
// workers are busy at once; workers marked blocked (waiting in Get) do not
// count, so nested work cannot deadlock the node. Requests beyond the limit
// wait for a worker to come back. A process that does not register within
// `register_timeout`, or exits, fails its pending request. PushWorker makes
// a worker idle again. Stop kills every worker.
//
// Thread-safe. Callbacks run without the pool's lock held, on the calling
// thread or on the pool's reaper thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace sunray {

struct WorkerInfo {
  int64_t startup_token = 0;
  pid_t pid = 0;
  std::string job_id;
  std::string address;  // set at registration
  std::string log_path;
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

  explicit WorkerPool(Options options);
  ~WorkerPool();
  WorkerPool(const WorkerPool &) = delete;
  WorkerPool &operator=(const WorkerPool &) = delete;

  void PopWorker(const std::string &job_id, const Launch &launch, Callback callback);
  // The worker finished its lease and may serve the job again.
  void PushWorker(int64_t startup_token);
  // A worker blocked in Get/Wait frees its slot; unblocking takes it back.
  void SetBlocked(int64_t startup_token, bool blocked);
  // Called by the RegisterWorker handler. NotFound for an unknown token.
  absl::Status RegisterWorker(int64_t startup_token, pid_t pid, const std::string &address);

  // Kills every worker and fails every pending request. Idempotent.
  void Stop();

  int NumProcesses() const;

 private:
  enum class State { kStarting, kIdle, kBusy };
  struct Worker {
    WorkerInfo info;
    State state = State::kStarting;
    bool blocked = false;
    std::chrono::steady_clock::time_point started;
  };
  struct Request {
    std::string job_id;
    Launch launch;
    Callback callback;
    int64_t starting_token = 0;  // the process started for it, if any
  };

  // Hands idle workers to waiting requests and starts processes while the
  // limit allows; collects callbacks to run after unlocking.
  void DispatchLocked(std::vector<std::function<void()>> *ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int BusyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReaperLoop();

  const Options options_;
  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::map<int64_t, Worker> workers_ ABSL_GUARDED_BY(mu_);  // by startup token
  std::deque<Request> requests_ ABSL_GUARDED_BY(mu_);
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;
};

}  // namespace sunray
