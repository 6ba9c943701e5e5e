// Worker leases on one node: an owner asks for a worker with some resources;
// the manager decides where the request goes, reserves the resources, gets
// a worker for the owner's job from the pool, and grants the lease.
// Returning the lease frees both.
//
// Where a request goes is the scheduling policy's decision
// (src/scheduling/policy.h) over this node — exact, under the lock — and
// the other nodes as the latest cluster view has them (UpdateClusterView;
// what this node sent to a node is taken off that node's free resources
// for kSentHold, until that node's own report shows it). A request this node should run waits
// here in arrival order until it fits; one another node fits better is
// answered with a spillback naming that node (the owner asks it next);
// one that no alive node can ever fit (resources, labels) waits here,
// counted as infeasible, until a node that fits joins. Waiting requests
// are decided again as resources free up and views arrive, so a request
// does not wait here while another node has room for it. A request sent
// on by another node (spillback_count > 0) stays here if this node can
// ever fit it; past kMaxSpillbacks it is never sent on. Hard affinity to a
// dead node fails at once; to a node the view does not know, once a view
// two views newer than the request still do not know it.
//
// Placement group bundles (src/scheduling/bundles.h) are reserved in two
// phases that control drives: prepared bundles are taken out of the free
// resources; committed ones add their own resources (total and free) that
// only leases in the group ask for; returned ones give everything back and
// stop the workers leased on them. Leases that wait for a removed group's
// bundles fail.
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
#include <variant>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common.pb.h"
#include "src/common/resources.h"
#include "src/node/worker_pool.h"
#include "src/scheduling/bundles.h"
#include "src/scheduling/policy.h"

namespace sunray {

// How many nodes may send one request on before one must take it.
inline constexpr int kMaxSpillbacks = 4;
// What this node sends to another stays off that node's free resources in
// later views for this long: until that node's own report (100 ms after
// its change) has reached control and come back in a view.
inline constexpr absl::Duration kSentHold = absl::Seconds(2);

struct Lease {
  int64_t lease_id = 0;  // the worker's startup token
  WorkerInfo worker;
  ResourceSet resources;
  bool blocked = false;  // its worker waits in Get/Wait: its CPU is lent out
};

// Instead of a lease: the node to ask.
struct Spillback {
  NodeID node_id;
  std::string address;  // its NodeService
};

class LeaseManager {
 public:
  using Answer = std::variant<Lease, Spillback>;
  using Callback = std::function<void(absl::StatusOr<Answer>)>;

  struct Options {
    NodeID node_id;  // this node
    Labels labels;   // this node's, with kNodeIdLabel
    // This node's available resources changed (called without the lock):
    // worth telling control soon. May be empty.
    std::function<void()> resources_changed;
  };

  LeaseManager(ResourceSet total, WorkerPool &pool, Options options = {});

  using RequestId = uint64_t;

  // Where the request may go, and how many nodes sent it on already.
  struct Scheduling {
    proto::SchedulingStrategy strategy;
    int spillback_count = 0;
  };

  // `detached`: the worker will host a detached actor (see WorkerPool).
  // `callback` runs exactly once: with the lease, a spillback, or why there
  // is neither (FailedPrecondition: its strategy can never be met).
  // Returns the request's id, for CancelRequest.
  RequestId RequestLease(const JobID &job_id, const ResourceSet &resources,
                         const WorkerPool::Launch &launch, bool detached,
                         const Scheduling &scheduling, Callback callback);
  RequestId RequestLease(const JobID &job_id, const ResourceSet &resources,
                         const WorkerPool::Launch &launch, bool detached, Callback callback) {
    return RequestLease(job_id, resources, launch, detached, Scheduling{}, std::move(callback));
  }

  // The other nodes as control last saw them (this node's own entry, if
  // there, is ignored): waiting requests are decided again against it.
  void UpdateClusterView(std::vector<NodeView> nodes);
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

  // Reserves `bundles` (index -> resources) of `group` out of the free
  // resources, all or none: ResourceExhausted naming what is short when
  // they do not fit now; AlreadyExists when this node holds bundles of the
  // group already.
  absl::Status PrepareBundles(const PlacementGroupID &group,
                              const std::map<int, ResourceSet> &bundles);
  // The group's prepared bundles become resources of their own (added to
  // total and free). NotFound when none is prepared; OK when committed already.
  absl::Status CommitBundles(const PlacementGroupID &group);
  // Gives back what this node holds of the group, prepared or committed;
  // the workers leased on its bundles are stopped (their leases end here).
  // With `removed`, requests waiting for the group fail, now and later.
  void ReturnBundles(const PlacementGroupID &group, bool removed);
  // Groups control reports removed: requests waiting for them fail.
  void GroupsRemoved(const std::vector<PlacementGroupID> &groups);

  ResourceSet Total() const;
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
    Scheduling scheduling;
    uint64_t view_at_arrival = 0;  // view_version_ when it came
    bool infeasible = false;       // as last decided
    Callback callback;
  };

  void DispatchLocked(std::vector<std::function<void()>> *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Where `request` goes: `nodes` is this node (index 0) and the view.
  Placement DecideLocked(const Request &request, const std::vector<NodeView> &nodes)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the lease's resources and serves waiting requests.
  void ReleaseLocked(std::map<int64_t, Lease>::iterator lease,
                     std::vector<std::function<void()>> *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnWorker(ResourceSet resources, Callback callback, absl::StatusOr<WorkerInfo> worker);

  // Fails the waiting requests that ask for a removed group's bundles.
  void FailRemovedLocked(std::vector<std::function<void()>> *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  WorkerPool &pool_;
  const Options options_;
  mutable absl::Mutex mu_;
  ResourceSet total_ ABSL_GUARDED_BY(mu_);  // as started, plus committed bundles
  ResourceSet available_ ABSL_GUARDED_BY(mu_);
  struct Bundles {
    std::map<int, ResourceSet> resources;  // index -> what it took from the free ones
    bool committed = false;
  };
  std::map<PlacementGroupID, Bundles> bundles_ ABSL_GUARDED_BY(mu_);
  std::set<PlacementGroupID> removed_groups_ ABSL_GUARDED_BY(mu_);
  // The other nodes, less what was sent to each (sent_).
  std::vector<NodeView> view_ ABSL_GUARDED_BY(mu_);
  struct Sent {
    NodeID node_id;
    ResourceSet resources;
    absl::Time until;  // then that node's own reports count it
  };
  std::vector<Sent> sent_ ABSL_GUARDED_BY(mu_);
  uint64_t view_version_ ABSL_GUARDED_BY(mu_) = 0;
  SchedulingPolicy policy_ ABSL_GUARDED_BY(mu_);
  std::deque<Request> pending_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Lease> leases_ ABSL_GUARDED_BY(mu_);
  std::set<JobID> finished_jobs_ ABSL_GUARDED_BY(mu_);  // job ids are never reused
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  RequestId next_request_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace sunray
