// The caller's side of normal tasks (Ray: the normal task submitter): it
// takes a task once it is described, holds it while its arguments resolve,
// queues it by scheduling class (resources, env, scheduling strategy),
// leases workers for the class — asking its own node, and following a
// spillback to the node it names — pushes tasks on each lease's task
// stream, and settles each task:
// answered, retried (a dead worker; an exception with retry_exceptions),
// bounced back by a worker blocked in Get (sent again, not an attempt), or
// failed. Idle leases go back to the node a linger after their last task.
//
// Owns: the scheduling classes, their queues and leased workers, and the
// state of every normal task it holds, from Add until it settles.
// Collaborators (interfaces, fakes in normal_task_submitter_test.cc): the
// nodes (NodeClients: each node's NodeClient for leases and LeaseReturner
// for returns; a lease goes back to the node that granted it), the task streams
// (TaskStreamOpener), and where settled tasks go (TaskOutcomes: the
// TaskManager stores the result and releases what the task held).
//
// Thread-safety: thread-safe; one lock, never held while calling a
// collaborator, so collaborators may call back in from their callbacks.
// Errors: a task that cannot run is settled through TaskOutcomes::Failed
// with the reason (no worker could be leased; its strategy can never be
// met, TaskUnschedulable; its worker died with no retries left;
// cancelled); nothing is thrown.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "node.pb.h"
#include "src/common/resources.h"
#include "src/worker/node_client.h"
#include "src/worker/pending_task.h"
#include "src/worker/task_stream.h"

namespace sunray {

// Lease requests in flight per scheduling class (Ray's default is 10).
inline constexpr int kMaxPendingLeases = 10;
// Tasks pushed to one leased worker at once, when the backlog is deep.
inline constexpr size_t kMaxTasksInFlightPerWorker = 8;
// Leases in a row whose task stream cannot be opened before the class's
// waiting tasks fail.
inline constexpr int kMaxFailedStreamOpens = 3;
// Spillbacks one lease request follows; the nodes stop sending it on
// before (kMaxSpillbacks in src/node/lease_manager.h), this is the owner's
// own bound against a node that does not.
inline constexpr int kMaxSpillbacksFollowed = 8;
// Leases live on this long without work before they go back to the node:
// long enough for a driver's next synchronous call to reuse them.
inline constexpr absl::Duration kLeaseLinger = absl::Milliseconds(100);

class NormalTaskSubmitter {
 public:
  struct Options {
    // What every lease request carries (job id, how workers start, their
    // environment); the class's resources and env are added.
    proto::RequestWorkerLeaseRequest lease_template;
    // Every node's total resources, to warn once per class about a task no
    // node can ever fit.
    std::vector<ResourceSet> node_totals;
    // For error messages: this process's node (the one it asks first).
    std::string node_name;
    // A lease has had nothing to do since the given time: call
    // ReturnIdleLeases at that time plus kLeaseLinger. May be empty.
    std::function<void(absl::Time idle_since)> lease_went_idle;
  };

  // The collaborators must outlive this object and every callback of theirs.
  NormalTaskSubmitter(Options options, NodeClients *nodes, TaskStreamOpener *streams,
                      TaskOutcomes *outcomes);
  ~NormalTaskSubmitter();

  // Takes `task` (spec filled in; its by-reference arguments may still be
  // resolving) into the class of `resources`, `env` (NAME=value entries
  // the workers must start with) and `strategy`. It waits for
  // ArgumentsResolved.
  // `first`: the node to ask for its leases first (a placement group
  // bundle's), instead of the local one.
  struct FirstNode {
    std::string address;  // its NodeService
    std::string name;     // its id in hex, for messages
  };
  void Add(std::shared_ptr<PendingTask> task, const ResourceSet &resources,
           const std::vector<std::string> &env, const proto::SchedulingStrategy &strategy = {},
           const FirstNode &first = {});
  // The task's arguments are in its spec (or one failed: `error`, the task
  // fails with it). A task cancelled meanwhile stays failed.
  void ArgumentsResolved(const std::shared_ptr<PendingTask> &task, std::optional<ErrorInfo> error);

  // ray::Cancel of the task returning `return_id`.
  using CancelOutcome = sunray::CancelOutcome;
  CancelOutcome Cancel(const std::string &return_id);

  // Gives back the leases idle for kLeaseLinger (every lease with `all`,
  // and closes their streams). Returns when to look again: when the next
  // idle one will be due, a linger from now while some are busy,
  // InfiniteFuture when none is held.
  absl::Time ReturnIdleLeases(bool all);

  // No more dispatching, leases or retries: tasks still held settle as
  // their streams end (the caller then cancels the streams). Returns every
  // lease with `return_leases`. Idempotent.
  void Shutdown(bool return_leases);

  // For tests and `sunray status`-like views.
  struct Counts {
    size_t held = 0;    // tasks from Add until settled
    size_t queued = 0;  // resolved, waiting for a worker
    size_t leases = 0;  // leased workers held
    size_t pending_leases = 0;
  };
  Counts counts() const;

 private:
  // A normal task as this submitter holds it.
  struct Held;
  struct LeasedWorker;
  struct SchedulingClass;
  using Work = std::vector<std::function<void()>>;

  // Pushes what the class's workers can take and asks for more workers;
  // what must run without the lock goes in `work`.
  void DispatchLocked(SchedulingClass *cls, Work *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Which node a lease request goes to: the local one first, then those
  // spillbacks name.
  struct LeaseTarget {
    NodeClients::Node node;
    std::string node_name;  // its id in hex, for messages
    int spillback_count = 0;
  };
  void RequestLease(SchedulingClass *cls, LeaseTarget target);
  void OnLeaseAnswer(SchedulingClass *cls, const LeaseTarget &target,
                     absl::StatusOr<proto::RequestWorkerLeaseReply> granted);
  void Push(const std::shared_ptr<LeasedWorker> &worker, std::vector<proto::TaskSpec> specs);
  void OnResults(SchedulingClass *cls, const std::shared_ptr<LeasedWorker> &worker,
                 proto::TaskResults &results);
  void OnStreamEnd(SchedulingClass *cls, const std::shared_ptr<LeasedWorker> &worker,
                   const absl::Status &status);
  // Settles `held`, answered (`reply`) or lost with its worker (`reply`
  // null, `status` says why). Returns whether it goes back in the queue;
  // otherwise `settle` gets what to tell TaskOutcomes.
  bool SettleLocked(Held &held, const LeasedWorker &worker, const absl::Status &status,
                    const proto::PushTaskReply *reply, Work *settle)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends `held` here; `settle` gets the call to TaskOutcomes.
  void FailLocked(Held &held, ErrorInfo error, Work *settle) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fails every task waiting in `cls` as a worker death, each message the
  // task's function name between `before_name` and `after_name`.
  void FailQueueLocked(SchedulingClass *cls, const std::string &before_name,
                       const std::string &after_name, Work *settle)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SucceedLocked(Held &held, const proto::ObjectValue &result, Work *settle)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReturnLease(const LeasedWorker &worker, bool dead);

  const Options options_;
  NodeClients *const nodes_;
  TaskStreamOpener *const streams_;
  TaskOutcomes *const outcomes_;

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // By key (resources and env); never removed, so callbacks may keep a
  // class's pointer.
  std::map<std::string, std::unique_ptr<SchedulingClass>> classes_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<Held>> held_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> warned_infeasible_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
