// Watches the driver processes of the jobs on this node: when a driver's
// process is gone, its job is over (Ray's raylet does the same for drivers
// that die without saying goodbye).
//
//   DriverWatcher drivers({}, [&](const std::string &job_id) { FinishJob(job_id); });
//   drivers.Watch("01000000", driver_pid);
//
// A thread polls the watched pids (ProcessAlive) every `poll_interval` and
// calls `on_exit(job_id)` once per watched driver that exited, without the
// watcher's lock held. Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"

namespace sunray {

class DriverWatcher {
 public:
  struct Options {
    std::chrono::milliseconds poll_interval{100};
  };
  using ExitCallback = std::function<void(const std::string &job_id)>;

  // Starts the polling thread.
  DriverWatcher(Options options, ExitCallback on_exit);
  ~DriverWatcher();  // Stop()
  DriverWatcher(const DriverWatcher &) = delete;
  DriverWatcher &operator=(const DriverWatcher &) = delete;

  // Watches `pid` as the driver of `job_id` (replacing an earlier one).
  void Watch(const std::string &job_id, pid_t pid);
  // Stops watching the job's driver; returns whether it was watched.
  bool Forget(const std::string &job_id);
  // Stops the thread; no callback runs after it returns. Idempotent.
  void Stop();

 private:
  void PollLoop();

  const Options options_;
  const ExitCallback on_exit_;
  absl::Mutex mu_;
  std::map<std::string, pid_t> drivers_ ABSL_GUARDED_BY(mu_);  // by job id
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

}  // namespace sunray
