#include "src/node/lease_manager.h"

#include <algorithm>

namespace sunray {
namespace {

constexpr char kCpu[] = "CPU";

int64_t CpuOf(const ResourceSet &resources) {
  auto it = resources.find(kCpu);
  return it == resources.end() ? 0 : it->second;
}

}  // namespace

LeaseManager::LeaseManager(ResourceSet total, WorkerPool &pool)
    : total_(std::move(total)), pool_(pool), available_(total_) {}

LeaseManager::RequestId LeaseManager::RequestLease(const JobID &job_id,
                                                   const ResourceSet &resources,
                                                   const WorkerPool::Launch &launch, bool detached,
                                                   Callback callback) {
  std::vector<std::function<void()>> work;
  RequestId id;
  {
    absl::MutexLock lock(&mu_);
    id = next_request_++;
    if (stopping_) {
      work.push_back([callback] { callback(absl::UnavailableError("the node is stopping")); });
    } else if (!detached && finished_jobs_.contains(job_id)) {
      work.push_back([callback, job_id] {
        callback(absl::CancelledError("the job " + job_id.Hex() + " finished"));
      });
    } else {
      pending_.push_back(Request{id, job_id, resources, launch, detached, std::move(callback)});
      DispatchLocked(&work);
    }
  }
  for (auto &run : work) run();
  return id;
}

bool LeaseManager::CancelRequest(RequestId id) {
  Callback callback;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(pending_.begin(), pending_.end(),
                           [id](const Request &request) { return request.id == id; });
    if (it == pending_.end()) return false;
    callback = std::move(it->callback);
    pending_.erase(it);
  }
  callback(absl::CancelledError("the caller stopped waiting for the lease"));
  return true;
}

void LeaseManager::Stop() {
  std::deque<Request> failed;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    failed.swap(pending_);
  }
  for (auto &request : failed) request.callback(absl::UnavailableError("the node is stopping"));
}

void LeaseManager::DispatchLocked(std::vector<std::function<void()>> *work) {
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (!Fits(it->resources, available_)) {
      ++it;  // waits: for freed resources, or (infeasible) for another node
      continue;
    }
    for (const auto &[name, amount] : it->resources) available_[name] -= amount;
    work->push_back([this, request = std::move(*it)]() mutable {
      ResourceSet resources = request.resources;
      Callback callback = std::move(request.callback);
      const bool uses_cpu = CpuOf(resources) > 0;
      pool_.PopWorker(request.job_id, request.launch, request.detached, uses_cpu,
                      [this, resources, callback](absl::StatusOr<WorkerInfo> worker) {
                        OnWorker(resources, callback, std::move(worker));
                      });
    });
    it = pending_.erase(it);
  }
}

void LeaseManager::OnWorker(ResourceSet resources, Callback callback,
                            absl::StatusOr<WorkerInfo> worker) {
  std::vector<std::function<void()>> work;
  absl::StatusOr<Lease> result;
  {
    absl::MutexLock lock(&mu_);
    if (!worker.ok()) {
      for (const auto &[name, amount] : resources) available_[name] += amount;
      result = worker.status();
      DispatchLocked(&work);
    } else {
      Lease lease{worker->startup_token, *worker, resources};
      leases_[lease.lease_id] = lease;
      result = lease;
    }
  }
  callback(std::move(result));
  for (auto &run : work) run();
}

absl::Status LeaseManager::ReturnLease(int64_t lease_id, bool worker_dead) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(lease_id);
    if (it == leases_.end()) {
      return absl::NotFoundError("no lease " + std::to_string(lease_id) + " on this node");
    }
    ReleaseLocked(it, &work);
  }
  if (worker_dead) {
    // NotFound: the process is gone already.
    pool_.KillWorker(lease_id, /*force=*/true).IgnoreError();
  } else {
    pool_.PushWorker(lease_id);
  }
  for (auto &run : work) run();
  return absl::OkStatus();
}

void LeaseManager::OnWorkerExit(int64_t startup_token) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(startup_token);
    if (it == leases_.end()) return;  // idle, or returned already
    ReleaseLocked(it, &work);
  }
  for (auto &run : work) run();
}

void LeaseManager::SetBlocked(int64_t lease_id, bool blocked) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    auto it = leases_.find(lease_id);
    if (it == leases_.end() || it->second.blocked == blocked) return;
    it->second.blocked = blocked;
    // Lent while blocked; taken back on waking even if that oversubscribes
    // the node for a while (the worker must finish what it started).
    available_[kCpu] += blocked ? CpuOf(it->second.resources) : -CpuOf(it->second.resources);
    if (blocked) DispatchLocked(&work);
  }
  for (auto &run : work) run();
}

void LeaseManager::ReleaseLocked(std::map<int64_t, Lease>::iterator lease,
                                 std::vector<std::function<void()>> *work) {
  for (const auto &[name, amount] : lease->second.resources) {
    if (name == kCpu && lease->second.blocked) continue;  // lent out already
    available_[name] += amount;
  }
  leases_.erase(lease);
  DispatchLocked(work);
}

int LeaseManager::CancelJob(const JobID &job_id) {
  std::vector<Callback> cancelled;
  {
    absl::MutexLock lock(&mu_);
    finished_jobs_.insert(job_id);
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->job_id != job_id || it->detached) {
        ++it;
        continue;
      }
      cancelled.push_back(std::move(it->callback));
      it = pending_.erase(it);
    }
  }
  for (auto &callback : cancelled) {
    callback(absl::CancelledError("the job " + job_id.Hex() + " finished"));
  }
  return static_cast<int>(cancelled.size());
}

ResourceSet LeaseManager::Available() const {
  absl::MutexLock lock(&mu_);
  return available_;
}

int LeaseManager::NumPending() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(pending_.size());
}

int LeaseManager::NumInfeasible() const {
  absl::MutexLock lock(&mu_);
  int infeasible = 0;
  for (const auto &request : pending_) infeasible += !Fits(request.resources, total_);
  return infeasible;
}

}  // namespace sunray
