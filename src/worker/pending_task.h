// A task this process submitted, from Call/CallActor until its result is
// in: the record the runtime, the TaskManager and the submitters share.
//
// `spec` is complete when a submitter gets the task (its by-reference
// arguments are filled in while they resolve: DependencyResolver). Which lock
// guards the bookkeeping fields is said at each; a normal task's queueing
// state is the NormalTaskSubmitter's own (normal_task_submitter.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "src/core/object_error.h"
#include "src/core/retry_rule.h"
#include "worker.pb.h"

namespace sunray {

struct PendingTask {
  proto::TaskSpec spec;
  // Ids this process holds references on until the task is done (by-ref
  // arguments, refs inside by-value arguments, arguments put in the store).
  std::vector<std::string> held;
  // Normal tasks: retries (max_retries), spent on a dead worker, or on an
  // exception with retry_exceptions (retry_rule.h). The submitter's.
  RetryBudget retries;
  bool retry_exceptions = false;
  // Actor calls (the ActorTaskSubmitter's, under its lock): place in the caller's
  // submission order, sends lost to the actor's death so far (in `retries`:
  // resent while the actor's max_task_retries allow), whether the arguments
  // resolved or one failed, Cancel, and the address the call went to.
  uint64_t order = 0;
  bool resolved = false;
  std::optional<ErrorInfo> failed;
  bool cancelled = false;
  std::string pushed_to;
  // Whether it has settled (the TaskManager's, under its lock).
  bool settled = false;
};

// Where a settled task goes. Called with no submitter lock held, once per
// task; may call back into the submitter.
class TaskOutcomes {
 public:
  virtual ~TaskOutcomes() = default;
  virtual void Succeeded(PendingTask &task, const proto::ObjectValue &result) = 0;
  virtual void Failed(PendingTask &task, ErrorInfo error) = 0;
};

// What a submitter's Cancel found.
struct CancelOutcome {
  enum Kind {
    kNotHeld,  // not a task held here (settled, never added, cancelled already)
    kFailed,   // it had not been pushed: failed as cancelled, nothing else to do
    kPushed,   // it went to `worker_address`: ask that worker to cancel it; it
               // fails as cancelled when that worker answers or dies
  } kind = kNotHeld;
  std::string worker_address;
};

}  // namespace sunray
