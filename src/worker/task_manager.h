// The tasks this process submitted (Ray: the task manager), from Call,
// CreateActor or CallActor until they settle: the one record of each, found
// by its return id (for Cancel), and its settlement — the result or the
// error stored under the return id, the references held for its arguments
// released, the record forgotten — exactly once, whichever submitter or
// thread settles it.
//
// Owns: the records of unsettled tasks. Queues, leases, streams and
// retries are the submitters' (normal_task_submitter.h,
// actor_task_submitter.h); they settle tasks through this object's
// TaskOutcomes. Lineage: the specs of normal tasks that succeeded with
// retries left, while their results are still referenced here (released
// when the result is freed; at most kMaxLineageBytes in all, the oldest
// dropped first) — what lineage reconstruction will run again to rebuild a
// lost result.
// Collaborators (an interface, faked in task_manager_test.cc): where
// results and errors are stored and references dropped (TaskResultSink).
//
// Thread-safety: thread-safe; one lock, never held while calling the sink.
// Errors: Add refuses after Shutdown (the caller fails the task with
// Fail); a second settlement of a task is ignored and logged, never
// stored twice.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "src/worker/pending_task.h"

namespace sunray {

// Where a settled task's result goes (the object side).
class TaskResultSink {
 public:
  virtual ~TaskResultSink() = default;
  // The task's result (a value or an error on the wire) under `return_id`.
  // False if nothing refers to `return_id` any more (the value is dropped).
  // With `report_free`, its freeing is reported (TaskManager::ReleaseLineage).
  virtual bool StoreResult(const std::string &return_id, const proto::ObjectValue &result,
                           bool report_free) = 0;
  virtual void StoreError(const std::string &return_id, ErrorInfo error) = 0;
  // Drops the references this process held for a task's arguments.
  virtual void Release(const std::vector<std::string> &object_ids) = 0;
};

class TaskManager : public TaskOutcomes {
 public:
  // Ray's max_lineage_bytes is 1 GiB by default.
  static constexpr size_t kMaxLineageBytes = size_t{1} << 30;

  // `sink` must outlive this object.
  explicit TaskManager(TaskResultSink *sink, size_t max_lineage_bytes = kMaxLineageBytes)
      : sink_(sink), max_lineage_bytes_(max_lineage_bytes) {}
  TaskManager(const TaskManager &) = delete;
  TaskManager &operator=(const TaskManager &) = delete;

  // Records `task` (its spec's return id set, its arguments held) until it
  // settles. False after Shutdown, or when a task with that return id is
  // recorded already: nothing is recorded and the caller fails it.
  [[nodiscard]] bool Add(std::shared_ptr<PendingTask> task);
  // The unsettled task returning `return_id`, or null.
  std::shared_ptr<PendingTask> Find(const std::string &return_id) const;

  // TaskOutcomes: the result, or the error (named after the task's
  // function when it names none), under the task's return id; then its
  // references are released and it is forgotten. A task that was never
  // added (refused, or failed before it could be) settles the same way.
  void Succeeded(PendingTask &task, const proto::ObjectValue &result) override;
  void Failed(PendingTask &task, ErrorInfo error) override;
  // Settles `task` with no result of its own: an actor's creation task,
  // whose outcome is the actor, once the actor is dead for good or was
  // never created.
  void Release(PendingTask &task);

  // --- lineage ---
  // The spec of the task that returned `return_id`, while it is kept; null
  // otherwise.
  std::shared_ptr<const proto::TaskSpec> Lineage(const std::string &return_id) const;
  // The result `return_id` was freed: its task's spec goes (if kept). Takes
  // only this object's lock (callable from a memory store's free hook).
  void ReleaseLineage(const std::string &return_id);
  // Specs kept, and their size as counted against kMaxLineageBytes.
  size_t lineage_size() const;
  size_t lineage_bytes() const;

  // Refuses new tasks; the unsettled ones stay until their submitter
  // settles them.
  void Shutdown();
  // Unsettled tasks.
  size_t pending() const;

 private:
  struct Kept {
    std::shared_ptr<PendingTask> task;
    uint64_t order;
    size_t bytes;
  };

  // Marks `task` settled and forgets it; false if it was settled already.
  // `*record` (if given) receives the record it held for the task.
  bool SettleOnce(PendingTask &task, std::shared_ptr<PendingTask> *record = nullptr);
  // Keeps `task`'s spec for lineage, dropping the oldest beyond the bound.
  void KeepLineage(std::shared_ptr<PendingTask> task);

  TaskResultSink *const sink_;
  const size_t max_lineage_bytes_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<PendingTask>> tasks_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Kept> lineage_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::string> lineage_order_ ABSL_GUARDED_BY(mu_);  // oldest first
  uint64_t next_order_ ABSL_GUARDED_BY(mu_) = 0;
  size_t lineage_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sunray
