// The by-reference arguments of a task this process submits, made values
// before the task is sent (Ray: the local dependency resolver): each waits
// until its object is ready here (owned) or fetched from its owner
// (borrowed), then goes in the spec as its value on the wire (inline data,
// "in the node store", or an error). The task goes on once all are in.
//
// Owns: the resolutions in flight (one count per task). The values are
// the ArgumentSource's.
// Collaborators (an interface, faked in dependency_resolver_test.cc):
// where argument values come from (ArgumentSource; the runtime's memory
// store and reference counter in production).
//
// Thread-safety: thread-safe; no lock of its own is held while calling the
// source. `done` runs on the thread that delivered the last value (the
// caller's, before Resolve returns, when every value was ready).
// Errors: a failed argument does not fail the resolution early: `done`
// gets the error of the failed argument that comes first in the task's
// argument list, once every argument has arrived.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "src/worker/pending_task.h"

namespace sunray {

// Where argument values come from.
class ArgumentSource {
 public:
  virtual ~ArgumentSource() = default;
  // Runs `ready` once with `object_id`'s value as it travels, when it is
  // ready (maybe at once, on this thread; else on whichever thread makes
  // it ready). An object that cannot be had arrives as an error value.
  virtual void WhenReady(const std::string &object_id,
                         std::function<void(proto::ObjectValue value)> ready) = 0;
};

class DependencyResolver {
 public:
  using Done = std::function<void(std::optional<ErrorInfo> error)>;

  // `source` must outlive this object and every callback of its.
  explicit DependencyResolver(ArgumentSource *source) : source_(source) {}
  DependencyResolver(const DependencyResolver &) = delete;
  DependencyResolver &operator=(const DependencyResolver &) = delete;

  // Fills every by-reference argument of `task` (an object id, no value)
  // with its value, then runs `done` once: with no error, or the first
  // failed argument's. `task->spec` must not change meanwhile.
  void Resolve(std::shared_ptr<PendingTask> task, Done done);

  // Tasks whose arguments are still being resolved.
  size_t pending() const { return pending_.load(); }

 private:
  ArgumentSource *const source_;
  std::atomic<size_t> pending_{0};
};

}  // namespace sunray
