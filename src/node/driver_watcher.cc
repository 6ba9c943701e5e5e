#include "src/node/driver_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <vector>

#include "src/common/process.h"

namespace sunray {

DriverWatcher::DriverWatcher(Options options, ExitCallback on_exit)
    : options_(options),
      on_exit_(std::move(on_exit)),
      wake_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  poller_ = std::thread([this] { PollLoop(); });
}

DriverWatcher::~DriverWatcher() {
  Stop();
  absl::MutexLock lock(&mu_);
  for (auto &[job_id, driver] : drivers_) to_close_.push_back(driver.pidfd);
  for (int fd : to_close_) {
    if (fd >= 0) close(fd);
  }
  if (wake_fd_ >= 0) close(wake_fd_);
}

void DriverWatcher::WakeLocked() {
  const uint64_t one = 1;
  if (wake_fd_ >= 0) (void)!write(wake_fd_, &one, sizeof(one));
}

void DriverWatcher::Watch(const std::string &job_id, pid_t pid) {
  const int pidfd = OpenPidfd(pid);
  absl::MutexLock lock(&mu_);
  Driver &driver = drivers_[job_id];
  to_close_.push_back(driver.pidfd);  // an earlier driver of the job
  driver = Driver{pid, pidfd};
  WakeLocked();
}

bool DriverWatcher::Forget(const std::string &job_id) {
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
    std::vector<std::string> exited;
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
      for (const std::string &job_id : exited) on_exit_(job_id);
      mu_.Lock();
      continue;  // the set may have changed meanwhile
    }
    // Sleep until a driver exits, the set changes or Stop.
    std::vector<pollfd> fds{{wake_fd_, POLLIN, 0}};
    bool all_watched = wake_fd_ >= 0;
    for (const auto &[job_id, driver] : drivers_) {
      if (driver.pidfd < 0) {
        all_watched = false;
      } else {
        fds.push_back({driver.pidfd, POLLIN, 0});
      }
    }
    const int timeout_ms = all_watched ? -1 : static_cast<int>(options_.poll_interval.count());
    mu_.Unlock();
    (void)poll(fds.data(), fds.size(), timeout_ms);
    uint64_t drained;
    if (wake_fd_ >= 0) (void)!read(wake_fd_, &drained, sizeof(drained));
    mu_.Lock();
  }
}

}  // namespace sunray
