// Watches the driver processes of the jobs on this node: when a driver's
// process is gone, its job is over (Ray's raylet does the same for drivers
// that die without saying goodbye).
//
//   DriverWatcher drivers({}, [&](const JobID &job_id) { FinishJob(job_id); });
//   drivers.Watch(JobIdFromNumber(1), driver_pid);
//
// A thread sleeps until a watched driver exits (a pidfd per driver, opened
// at Watch, so a reused pid is never mistaken for the driver) and calls
// `on_exit(job_id)` once per watched driver that exited, without the
// watcher's lock held. Where the kernel refuses pidfds it looks
// (ProcessAlive) every `poll_interval` instead. Thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "src/common/id.h"
#include "src/common/process.h"

namespace sunray {

class DriverWatcher {
 public:
  struct Options {
    std::chrono::milliseconds poll_interval{100};
  };
  using ExitCallback = std::function<void(const JobID &job_id)>;

  // Starts the polling thread.
  DriverWatcher(Options options, ExitCallback on_exit);
  ~DriverWatcher();  // Stop()
  DriverWatcher(const DriverWatcher &) = delete;
  DriverWatcher &operator=(const DriverWatcher &) = delete;

  // Watches `pid` as the driver of `job_id` (replacing an earlier one).
  void Watch(const JobID &job_id, pid_t pid);
  // Stops watching the job's driver; returns whether it was watched.
  bool Forget(const JobID &job_id);
  // Stops the thread; no callback runs after it returns. Idempotent.
  void Stop();

 private:
  struct Driver {
    pid_t pid = 0;
    int pidfd = -1;  // -1: look with ProcessAlive
  };
  bool ExitedLocked(const Driver &driver) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void WakeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PollLoop();

  const Options options_;
  const ExitCallback on_exit_;
  ProcessWaiter waiter_;  // the thread sleeps here; woken when the set changes, or Stop
  absl::Mutex mu_;
  std::map<JobID, Driver> drivers_ ABSL_GUARDED_BY(mu_);  // by job id
  // pidfds of drivers no longer watched; only the thread closes them (it
  // may be polling them).
  std::vector<int> to_close_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread poller_;
};

}  // namespace sunray
