// Placement groups (Ray: the GCS placement group manager): registers
// groups, reserves their bundles on nodes, answers where they are, and
// gives the bundles back when a group is removed or its job finishes.
//
// Placing a group (a scheduler thread, one group at a time, in creation
// order): choose nodes by the group's strategy over the alive nodes' last
// reported free resources, less what this directory reserved lately
// (src/scheduling/bundles.h PlaceBundles); then two phases —
// NodeService.PrepareBundles on every chosen node at once, and when all
// agreed, CommitBundles on each. A node that refuses (its resources went
// to leases meanwhile) or cannot be reached rolls the whole group back
// (ReturnBundles on the nodes that prepared) and it is tried again after
// a delay. A group no placement fits now waits (PENDING) until resources
// free up; one that cannot fit even an idle cluster is reported
// infeasible (PENDING, with the reason) until a node joins.
//
//   PENDING ──all bundles committed──► CREATED
//      │                                  │ a bundle's node died
//      │                                  ▼
//      │                             RESCHEDULING (recovery is the next issue's)
//      └──────── removed, or its job finished ──► REMOVED
//
// Threads: handlers call in from gRPC threads and never block; the
// scheduler thread makes the two-phase calls and answers the long polls
// that time out. One mutex guards the state; no call, callback or answer
// runs under it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control.pb.h"
#include "src/common/resources.h"
#include "src/rpc/async_caller.h"

namespace sunray {

class PlacementGroupDirectory {
 public:
  struct Options {
    std::string token;  // for calls to nodes
    std::chrono::milliseconds call_timeout{5000};
    // After a rollback, wait this long before trying the group again.
    absl::Duration retry_delay = absl::Milliseconds(100);
    // Removed groups' ids go out with every view this long (nodes fail
    // leases waiting for them); then the directory forgets them.
    absl::Duration removed_kept = absl::Seconds(60);
  };
  // Every node control knows, alive or dead. Called without the directory's lock.
  using NodeLister = std::function<std::vector<proto::NodeInfo>()>;
  // A long poll's answer: the group as it is (CREATED, REMOVED, or still
  // pending when the wait timed out), or Unavailable at Stop.
  using Answer = std::function<void(absl::StatusOr<proto::PlacementGroupInfo>)>;

  // Starts the scheduler thread.
  PlacementGroupDirectory(Options options, NodeLister nodes);
  ~PlacementGroupDirectory();  // Stop()
  PlacementGroupDirectory(const PlacementGroupDirectory &) = delete;
  PlacementGroupDirectory &operator=(const PlacementGroupDirectory &) = delete;

  // Registers `group` (its id, name, namespace, job, strategy, bundles'
  // resources) PENDING and queues its placement. InvalidArgument for a
  // malformed id, no bundles, an empty bundle or a bad amount;
  // AlreadyExists for a known id, or a name taken in the namespace by a
  // group that is not REMOVED.
  absl::Status Create(const proto::PlacementGroupInfo &group);
  // REMOVED; its bundles go back (the nodes stop the workers leased on
  // them). NotFound for an unknown group.
  absl::Status Remove(const std::string &group_id);
  std::optional<proto::PlacementGroupInfo> Get(const std::string &group_id);
  // A group that is not REMOVED, by name.
  std::optional<proto::PlacementGroupInfo> GetNamed(const std::string &name,
                                                    const std::string &ray_namespace);
  std::vector<proto::PlacementGroupInfo> All();

  // Calls `answer` once the group is CREATED or REMOVED, or after
  // `timeout` (at once, on this thread, if it is already). NotFound for an
  // unknown group. Returns an id for CancelWait.
  int64_t WaitReady(const std::string &group_id, absl::Duration timeout, Answer answer);
  // Answers the wait with Cancelled unless it was answered already.
  void CancelWait(int64_t wait_id);

  // The nodes (ids' bytes) holding bundle `index` of the group (-1: any of
  // its bundles). Unavailable while it is not CREATED; FailedPrecondition
  // when it is REMOVED or unknown.
  absl::StatusOr<std::vector<std::string>> BundleNodes(const std::string &group_id, int index);
  // Groups removed within Options::removed_kept (their ids); those removed
  // before are forgotten (unknown from then on).
  std::vector<std::string> RecentlyRemoved();

  // A node joined, or `reporting_node` (its id's bytes) reported: pending
  // groups may fit now. A report counts what was reserved on its node
  // before it (kReportLatency earlier: the report may have been on its way).
  void OnNodesChanged(const std::string &reporting_node = "");
  // The node died: the groups with bundles there become RESCHEDULING.
  void OnNodeDead(const std::string &node_id);
  // Removes the job's groups. Returns their ids.
  std::vector<std::string> OnJobFinished(const std::string &job_id);

  // Stops the scheduler thread and calls, answers every long poll with
  // Unavailable. Idempotent.
  void Stop();

 private:
  struct Group {
    proto::PlacementGroupInfo info;
    bool placing = false;                          // its two-phase calls are out
    bool waiting_for_change = false;               // nothing fit: tried again when nodes change
    uint64_t tried_epoch = 0;                      // nodes_epoch_ when it was last tried
    absl::Time not_before = absl::InfinitePast();  // rolled back: not before then
    int rollbacks = 0;                             // in a row
  };
  struct Waiter {
    std::string group_id;
    absl::Time deadline;
    Answer answer;
  };
  // A reservation made lately, not yet in its node's reports: until a
  // report from that node that left after it, kReservedHold at most.
  struct Reserved {
    std::string node_id;
    ResourceSet resources;
    absl::Time made;
  };
  static constexpr absl::Duration kReportLatency = absl::Milliseconds(50);
  static constexpr absl::Duration kReservedHold = absl::Seconds(2);
  // After a rollback the group waits retry_delay, doubling with each one
  // in a row, up to this.
  static constexpr absl::Duration kMaxRetryDelay = absl::Seconds(2);
  // Groups placed in one round (their two phases' calls go out together).
  static constexpr size_t kMaxBatch = 64;
  using Work = std::vector<std::function<void()>>;

  void ScheduleLoop();
  // The pending groups that are due (at most kMaxBatch, in creation
  // order); `next` gets when a later one will be.
  std::vector<std::string> DueLocked(absl::Time now, absl::Time *next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Places the groups (two phases, their calls all at once) without the
  // lock held.
  void Place(const std::vector<std::string> &group_ids, const std::vector<proto::NodeInfo> &nodes);
  void ChangedLocked(Group &group, Work *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(Group &group, Work *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AnswerDueWaitsLocked(absl::Time now, Work *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells the nodes holding bundles of `info` to give them back.
  void ReturnBundles(const proto::PlacementGroupInfo &info,
                     const std::vector<std::string> &addresses, bool removed);

  const Options options_;
  const NodeLister list_nodes_;
  rpc::AsyncCaller calls_;

  absl::Mutex mu_;
  absl::CondVar wake_;
  std::map<std::string, Group> groups_ ABSL_GUARDED_BY(mu_);  // by binary id
  std::deque<std::string> pending_ ABSL_GUARDED_BY(mu_);      // in creation order
  // Raised by every join and report: a group nothing fit waits for it to move.
  uint64_t nodes_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<Reserved> reserved_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<absl::Time, std::string>> removed_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  int64_t next_wait_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread scheduler_;
};

}  // namespace sunray
