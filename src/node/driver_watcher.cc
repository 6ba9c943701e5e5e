#include "src/node/driver_watcher.h"

#include <vector>

#include "src/common/process.h"

namespace sunray {

DriverWatcher::DriverWatcher(Options options, ExitCallback on_exit)
    : options_(options), on_exit_(std::move(on_exit)) {
  poller_ = std::thread([this] { PollLoop(); });
}

DriverWatcher::~DriverWatcher() { Stop(); }

void DriverWatcher::Watch(const std::string &job_id, pid_t pid) {
  absl::MutexLock lock(&mu_);
  drivers_[job_id] = pid;
}

bool DriverWatcher::Forget(const std::string &job_id) {
  absl::MutexLock lock(&mu_);
  return drivers_.erase(job_id) > 0;
}

void DriverWatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (poller_.joinable()) poller_.join();
}

void DriverWatcher::PollLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(options_.poll_interval));
    if (stopping_) return;
    std::vector<std::string> exited;
    for (auto it = drivers_.begin(); it != drivers_.end();) {
      if (ProcessAlive(it->second)) {
        ++it;
        continue;
      }
      exited.push_back(it->first);
      it = drivers_.erase(it);
    }
    if (exited.empty()) continue;
    mu_.Unlock();
    for (const std::string &job_id : exited) on_exit_(job_id);
    mu_.Lock();
  }
}

}  // namespace sunray
