#include "src/node/driver_watcher.h"

#include <unistd.h>

#include <vector>

#include "src/common/process.h"

namespace sunray {

DriverWatcher::DriverWatcher(Options options, ExitCallback on_exit)
    : options_(options), on_exit_(std::move(on_exit)) {
  poller_ = std::thread([this] { PollLoop(); });
}

DriverWatcher::~DriverWatcher() {
  Stop();
  absl::MutexLock lock(&mu_);
  for (auto &[job_id, driver] : drivers_) to_close_.push_back(driver.pidfd);
  for (int fd : to_close_) {
    if (fd >= 0) close(fd);
  }
}

void DriverWatcher::WakeLocked() { waiter_.Wake(); }

void DriverWatcher::Watch(const JobID &job_id, pid_t pid) {
  const int pidfd = OpenPidfd(pid);
  absl::MutexLock lock(&mu_);
  Driver &driver = drivers_[job_id];
  to_close_.push_back(driver.pidfd);  // an earlier driver of the job
  driver = Driver{pid, pidfd};
  WakeLocked();
}

bool DriverWatcher::Forget(const JobID &job_id) {
  absl::MutexLock lock(&mu_);
  auto it = drivers_.find(job_id);
  if (it == drivers_.end()) return false;
  to_close_.push_back(it->second.pidfd);
  drivers_.erase(it);
  WakeLocked();
  return true;
}

void DriverWatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    WakeLocked();
  }
  if (poller_.joinable()) poller_.join();
}

bool DriverWatcher::ExitedLocked(const Driver &driver) const {
  return driver.pidfd >= 0 ? PidfdExited(driver.pidfd) : !ProcessAlive(driver.pid);
}

void DriverWatcher::PollLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    for (int fd : to_close_) {
      if (fd >= 0) close(fd);
    }
    to_close_.clear();
    std::vector<JobID> exited;
    for (auto it = drivers_.begin(); it != drivers_.end();) {
      if (!ExitedLocked(it->second)) {
        ++it;
        continue;
      }
      exited.push_back(it->first);
      if (it->second.pidfd >= 0) close(it->second.pidfd);
      it = drivers_.erase(it);
    }
    if (!exited.empty()) {
      mu_.Unlock();
      for (const JobID &job_id : exited) on_exit_(job_id);
      mu_.Lock();
      continue;  // the set may have changed meanwhile
    }
    // Sleep until a driver exits, the set changes or Stop.
    std::vector<int> pidfds;
    for (const auto &[job_id, driver] : drivers_) pidfds.push_back(driver.pidfd);
    mu_.Unlock();
    waiter_.Wait(pidfds, std::chrono::milliseconds::max(), options_.poll_interval);
    mu_.Lock();
  }
}

}  // namespace sunray
