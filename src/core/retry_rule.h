// When a task runs again, in both runtimes (Ray's rules). A normal task's
// max_retries (default 3) and an actor call's max_task_retries (default 0)
// count the attempts after the first; -1 means no limit. A normal task runs
// again when the worker running it died, and when its function threw only
// with retry_exceptions; an actor call when its actor died with the call
// unanswered and restarts. A task sent back unrun (bounced) spends nothing.
#pragma once

namespace sunray {

// The retries a task has spent against its limit. Not thread-safe: its
// owner's lock guards it.
class RetryBudget {
 public:
  RetryBudget() = default;
  explicit RetryBudget(int max_retries) : max_(max_retries < 0 ? -1 : max_retries) {}

  // Whether another attempt is allowed.
  bool CanRetry() const { return max_ < 0 || spent_ < max_; }
  // Spends a retry; false (nothing spent) when none is left.
  bool Spend() {
    if (!CanRetry()) return false;
    ++spent_;
    return true;
  }
  // The limit, when it is learned after the task was made (an actor's
  // max_task_retries, from its state): what was spent still counts.
  void set_max(int max_retries) { max_ = max_retries < 0 ? -1 : max_retries; }
  int spent() const { return spent_; }

 private:
  int max_ = 0;
  int spent_ = 0;
};

// Whether a normal task's failure is one it may run again for.
inline bool RetriedFor(bool worker_died, bool function_threw, bool retry_exceptions) {
  return worker_died || (function_threw && retry_exceptions);
}

}  // namespace sunray
