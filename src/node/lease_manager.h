// Worker leases on one node: an owner asks for a worker with some resources;
// the manager reserves the resources, gets a worker for the owner's job from
// the pool, and grants the lease. Returning the lease frees both.
//
// Requests are served in arrival order per their fit: a request that fits
// the node's free resources now is served; one that fits the node's totals
// but not its free resources waits; one that can never fit this node (more
// than its totals) is counted as infeasible and waits too (a later node may
// take it; status shows it).
//
// The manager does not watch processes: the node tells it when a leased
// worker's process exited (OnWorkerExit), and the lease is gone.
//
// Thread-safe. Callbacks run without the manager's lock held.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/common/resources.h"
#include "src/node/worker_pool.h"

namespace sunray {

struct Lease {
  int64_t lease_id = 0;  // the worker's startup token
  WorkerInfo worker;
  ResourceSet resources;
  bool blocked = false;  // its worker waits in Get/Wait: its CPU is lent out
};

class LeaseManager {
 public:
  using Callback = std::function<void(absl::StatusOr<Lease>)>;

  LeaseManager(ResourceSet total, WorkerPool &pool);

  using RequestId = uint64_t;

  // `detached`: the worker will host a detached actor (see WorkerPool).
  // `callback` runs exactly once: with the lease, or with why there is none.
  // Returns the request's id, for CancelRequest.
  RequestId RequestLease(const JobID &job_id, const ResourceSet &resources,
                         const WorkerPool::Launch &launch, bool detached, Callback callback);
  // The caller gave up: a request still waiting is dropped (its callback runs
  // with Cancelled). Returns false if it is no longer waiting: it was served
  // or failed, or its worker is starting (the callback still runs then).
  bool CancelRequest(RequestId id);
  // Frees the lease's resources and gives the worker back to the pool, or,
  // with `worker_dead` (its owner saw it fail), kills it instead. NotFound
  // for an unknown lease.
  absl::Status ReturnLease(int64_t lease_id, bool worker_dead = false);
  // The lease's worker blocked in Get/Wait (or woke up): its CPU is lent to
  // waiting requests meanwhile, so nested tasks cannot starve the node.
  void SetBlocked(int64_t lease_id, bool blocked);
  // The worker with this startup token exited: frees its lease, if any.
  void OnWorkerExit(int64_t startup_token);
  // The job finished: fails its waiting requests (except detached actors')
  // with Cancelled, and those that arrive later (a request sent before its
  // driver died can arrive after the node saw the death). Returns how many
  // were waiting.
  int CancelJob(const JobID &job_id);
  // Fails every waiting request (and later ones) with Unavailable.
  void Stop();

  ResourceSet Available() const;
  int NumPending() const;
  int NumInfeasible() const;

 private:
  struct Request {
    RequestId id = 0;
    JobID job_id;
    ResourceSet resources;
    WorkerPool::Launch launch;
    bool detached = false;
    Callback callback;
  };

  void DispatchLocked(std::vector<std::function<void()>> *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the lease's resources and serves waiting requests.
  void ReleaseLocked(std::map<int64_t, Lease>::iterator lease,
                     std::vector<std::function<void()>> *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnWorker(ResourceSet resources, Callback callback, absl::StatusOr<WorkerInfo> worker);

  const ResourceSet total_;
  WorkerPool &pool_;
  mutable absl::Mutex mu_;
  ResourceSet available_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> pending_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::set<JobID> finished_jobs_ ABSL_GUARDED_BY(mu_);  // job ids are never reused
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  RequestId next_request_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace sunray
