#include "src/node/lease_manager.h"

#include <algorithm>
#include <optional>

namespace sunray {
namespace {

constexpr char kCpu[] = "CPU";

int64_t CpuOf(const ResourceSet &resources) {
  auto it = resources.find(kCpu);
  return it == resources.end() ? 0 : it->second;
}

// Whether the lease asks for CPU, its own or a bundle's.
bool UsesCpu(const ResourceSet &resources) {
  for (const auto &[name, amount] : resources) {
    if (amount > 0 && BaseResourceName(name) == kCpu) return true;
  }
  return false;
}

// The group whose bundles `resources` ask for, if any.
std::optional<PlacementGroupID> GroupOf(const ResourceSet &resources) {
  for (const auto &[name, amount] : resources) {
    if (auto group = GroupOfResource(name)) return group;
  }
  return std::nullopt;
}

void Add(ResourceSet &to, const ResourceSet &amounts, int sign) {
  for (const auto &[name, amount] : amounts) {
    int64_t &left = to[name];
    left += sign * amount;
    if (left == 0 && GroupOfResource(name)) to.erase(name);
  }
}

}  // namespace

LeaseManager::LeaseManager(ResourceSet total, WorkerPool &pool, Options options)
    : pool_(pool), options_(std::move(options)), total_(std::move(total)), available_(total_) {}

LeaseManager::RequestId LeaseManager::RequestLease(const JobID &job_id,
                                                   const ResourceSet &resources,
                                                   const WorkerPool::Launch &launch, bool detached,
                                                   const Scheduling &scheduling,
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
      pending_.push_back(Request{id, job_id, resources, launch, detached, scheduling, view_version_,
                                 false, std::move(callback)});
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

void LeaseManager::UpdateClusterView(std::vector<NodeView> nodes) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    std::erase_if(nodes, [&](const NodeView &node) { return node.id == options_.node_id; });
    // What was sent lately is not in those nodes' reports yet.
    const absl::Time now = absl::Now();
    std::erase_if(sent_, [&](const Sent &sent) { return sent.until < now; });
    for (const Sent &sent : sent_) {
      for (NodeView &node : nodes) {
        if (node.id != sent.node_id) continue;
        for (const auto &[name, amount] : sent.resources) node.available[name] -= amount;
      }
    }
    view_ = std::move(nodes);
    ++view_version_;
    DispatchLocked(&work);
  }
  for (auto &run : work) run();
}

Placement LeaseManager::DecideLocked(const Request &request, const std::vector<NodeView> &nodes) {
  const proto::SchedulingStrategy &strategy = request.scheduling.strategy;
  const NodeView &self = nodes.front();
  if (request.scheduling.spillback_count > 0 &&
      SchedulingPolicy::Feasible(request.resources, strategy, self) &&
      (strategy.kind() != proto::SchedulingStrategy::NODE_AFFINITY || strategy.soft() ||
       strategy.node_id() == options_.node_id.Binary())) {
    // Sent here by a node that saw room here: it stays (no ping-pong).
    return Placement{Fits(request.resources, self.available) ? Placement::kRun : Placement::kWait,
                     0, ""};
  }
  Placement where = policy_.Place(request.resources, strategy, nodes, 0);
  if (where.index > 0 && request.scheduling.spillback_count >= kMaxSpillbacks) {
    // Sent on often enough: not again.
    where = Placement{Placement::kInfeasible, -1, ""};
  }
  return where;
}

void LeaseManager::DispatchLocked(std::vector<std::function<void()>> *work) {
  FailRemovedLocked(work);
  if (pending_.empty()) return;
  // This node first, exactly; then the others as the view has them.
  std::vector<NodeView> nodes;
  nodes.reserve(1 + view_.size());
  nodes.push_back(NodeView{options_.node_id, "", total_, available_, options_.labels, true});
  nodes.insert(nodes.end(), view_.begin(), view_.end());
  bool changed = false;
  for (auto it = pending_.begin(); it != pending_.end();) {
    const Placement where = DecideLocked(*it, nodes);
    it->infeasible = where.kind == Placement::kInfeasible;
    if ((where.kind == Placement::kRun || where.kind == Placement::kWait) && where.index > 0) {
      // Another node: the owner asks it. What it takes is off that node's
      // free resources for kSentHold, so a burst spreads.
      NodeView &there = nodes[where.index];
      for (const auto &[name, amount] : it->resources) there.available[name] -= amount;
      view_[where.index - 1].available = there.available;
      sent_.push_back(Sent{there.id, it->resources, absl::Now() + kSentHold});
      work->push_back([callback = std::move(it->callback),
                       spillback = Spillback{there.id, there.address}] { callback(spillback); });
      it = pending_.erase(it);
      continue;
    }
    if (where.kind == Placement::kUnschedulable ||
        // Two views on (the first may have been on its way when it came).
        (where.kind == Placement::kUnknownNode && it->view_at_arrival + 2 <= view_version_)) {
      work->push_back([callback = std::move(it->callback), reason = where.reason] {
        callback(absl::FailedPreconditionError(reason));
      });
      it = pending_.erase(it);
      continue;
    }
    if (where.kind != Placement::kRun) {
      ++it;  // waits: for freed resources, a view, or (infeasible) a node that fits
      continue;
    }
    for (const auto &[name, amount] : it->resources) {
      available_[name] -= amount;
      nodes.front().available[name] -= amount;
    }
    changed = true;
    work->push_back([this, request = std::move(*it)]() mutable {
      ResourceSet resources = request.resources;
      Callback callback = std::move(request.callback);
      const bool uses_cpu = UsesCpu(resources);
      pool_.PopWorker(request.job_id, request.launch, request.detached, uses_cpu,
                      [this, resources, callback](absl::StatusOr<WorkerInfo> worker) {
                        OnWorker(resources, callback, std::move(worker));
                      });
    });
    it = pending_.erase(it);
  }
  if (changed && options_.resources_changed) work->push_back(options_.resources_changed);
}

void LeaseManager::OnWorker(ResourceSet resources, Callback callback,
                            absl::StatusOr<WorkerInfo> worker) {
  std::vector<std::function<void()>> work;
  absl::StatusOr<Answer> result;
  {
    absl::MutexLock lock(&mu_);
    if (!worker.ok()) {
      for (const auto &[name, amount] : resources) {
        if (auto group = GroupOfResource(name); group && !bundles_.contains(*group)) continue;
        available_[name] += amount;
      }
      result = worker.status();
      if (options_.resources_changed) work.push_back(options_.resources_changed);
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
    if (options_.resources_changed) work.push_back(options_.resources_changed);
    if (blocked) DispatchLocked(&work);
  }
  for (auto &run : work) run();
}

void LeaseManager::ReleaseLocked(std::map<int64_t, Lease>::iterator lease,
                                 std::vector<std::function<void()>> *work) {
  for (const auto &[name, amount] : lease->second.resources) {
    if (name == kCpu && lease->second.blocked) continue;  // lent out already
    // A returned bundle's resources are gone.
    if (auto group = GroupOfResource(name); group && !bundles_.contains(*group)) continue;
    available_[name] += amount;
  }
  leases_.erase(lease);
  if (options_.resources_changed) work->push_back(options_.resources_changed);
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

void LeaseManager::FailRemovedLocked(std::vector<std::function<void()>> *work) {
  if (removed_groups_.empty()) return;
  for (auto it = pending_.begin(); it != pending_.end();) {
    std::optional<PlacementGroupID> group = GroupOf(it->resources);
    if (!group || !removed_groups_.contains(*group)) {
      ++it;
      continue;
    }
    work->push_back([callback = std::move(it->callback), hex = group->Hex()] {
      callback(absl::FailedPreconditionError("its placement group " + hex + " was removed"));
    });
    it = pending_.erase(it);
  }
}

absl::Status LeaseManager::PrepareBundles(const PlacementGroupID &group,
                                          const std::map<int, ResourceSet> &bundles) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the node is stopping");
    if (removed_groups_.contains(group)) {
      return absl::FailedPreconditionError("placement group " + group.Hex() + " was removed");
    }
    if (bundles_.contains(group)) {
      return absl::AlreadyExistsError("this node holds bundles of placement group " + group.Hex() +
                                      " already");
    }
    ResourceSet sum;
    for (const auto &[index, bundle] : bundles) Add(sum, bundle, 1);
    if (!Fits(sum, available_)) {
      return absl::ResourceExhaustedError("bundles " + ResourcesText(sum) +
                                          " do not fit this node's free " +
                                          ResourcesText(WithoutBundleResources(available_)));
    }
    Add(available_, sum, -1);
    bundles_[group] = Bundles{bundles, false};
    if (options_.resources_changed) work.push_back(options_.resources_changed);
  }
  for (auto &run : work) run();
  return absl::OkStatus();
}

absl::Status LeaseManager::CommitBundles(const PlacementGroupID &group) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    auto it = bundles_.find(group);
    if (it == bundles_.end()) {
      return absl::NotFoundError("no bundle of placement group " + group.Hex() +
                                 " is prepared on this node");
    }
    if (it->second.committed) return absl::OkStatus();
    it->second.committed = true;
    for (const auto &[index, bundle] : it->second.resources) {
      const ResourceSet added = CommittedBundleResources(group, index, bundle);
      Add(total_, added, 1);
      Add(available_, added, 1);
    }
    if (options_.resources_changed) work.push_back(options_.resources_changed);
    DispatchLocked(&work);
  }
  for (auto &run : work) run();
  return absl::OkStatus();
}

void LeaseManager::ReturnBundles(const PlacementGroupID &group, bool removed) {
  std::vector<std::function<void()>> work;
  std::vector<int64_t> stopped;
  {
    absl::MutexLock lock(&mu_);
    if (removed) removed_groups_.insert(group);
    auto it = bundles_.find(group);
    if (it != bundles_.end()) {
      // The leases on its bundles end here; their workers are stopped.
      for (auto lease = leases_.begin(); lease != leases_.end();) {
        if (GroupOf(lease->second.resources) != group) {
          ++lease;
          continue;
        }
        stopped.push_back(lease->first);
        lease = leases_.erase(lease);
      }
      for (const auto &[index, bundle] : it->second.resources) {
        if (it->second.committed) {
          const ResourceSet added = CommittedBundleResources(group, index, bundle);
          Add(total_, added, -1);
          // What leases held of it is gone with them.
          for (const auto &[name, amount] : added) available_.erase(name);
        }
        Add(available_, bundle, 1);
      }
      bundles_.erase(it);
      if (options_.resources_changed) work.push_back(options_.resources_changed);
    }
    DispatchLocked(&work);
  }
  for (int64_t lease_id : stopped) {
    // NotFound: the process is gone already.
    pool_.KillWorker(lease_id, /*force=*/false).IgnoreError();
  }
  for (auto &run : work) run();
}

void LeaseManager::GroupsRemoved(const std::vector<PlacementGroupID> &groups) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    bool added = false;
    for (const PlacementGroupID &group : groups) added |= removed_groups_.insert(group).second;
    if (added) FailRemovedLocked(&work);
  }
  for (auto &run : work) run();
}

ResourceSet LeaseManager::Total() const {
  absl::MutexLock lock(&mu_);
  return total_;
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
  for (const auto &request : pending_) infeasible += request.infeasible;
  return infeasible;
}

}  // namespace sunray
