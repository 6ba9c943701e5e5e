#include "src/worker/dependency_resolver.h"

#include <vector>

#include "absl/synchronization/mutex.h"

namespace sunray {

namespace {

// One task's resolution: values come in from any thread; the last to
// arrive finishes it.
struct Resolution {
  std::shared_ptr<PendingTask> task;
  DependencyResolver::Done done;
  std::atomic<int> waiting{0};  // arrivals still to come, plus Resolve's own
  absl::Mutex mu;
  // The failed argument first in the argument list so far.
  int failed_index ABSL_GUARDED_BY(mu) = -1;
  std::optional<ErrorInfo> error ABSL_GUARDED_BY(mu);
};

}  // namespace

void DependencyResolver::Resolve(std::shared_ptr<PendingTask> task, Done done) {
  std::vector<int> by_reference;
  for (int i = 0; i < task->spec.args_size(); ++i) {
    const proto::TaskArg &arg = task->spec.args(i);
    if (!arg.object_id().empty() && !arg.has_value()) by_reference.push_back(i);
  }
  if (by_reference.empty()) {
    done(std::nullopt);
    return;
  }
  ++pending_;
  auto resolution = std::make_shared<Resolution>();
  resolution->task = task;
  resolution->done = std::move(done);
  // Counted as waiting too, so no arrival finishes before every wait is
  // asked for.
  resolution->waiting = static_cast<int>(by_reference.size()) + 1;
  auto arrive = [this, resolution] {
    if (resolution->waiting.fetch_sub(1) != 1) return;
    std::optional<ErrorInfo> error;
    {
      absl::MutexLock lock(&resolution->mu);
      error = std::move(resolution->error);
    }
    --pending_;
    Done finish = std::move(resolution->done);
    resolution->task = nullptr;
    finish(std::move(error));
  };
  for (int index : by_reference) {
    const std::string id = task->spec.args(index).object_id();
    source_->WhenReady(id, [resolution, index, arrive](proto::ObjectValue value) {
      {
        PendingTask &task = *resolution->task;
        absl::MutexLock lock(&resolution->mu);
        if (value.is_error()) {
          if (resolution->failed_index == -1 || index < resolution->failed_index) {
            resolution->failed_index = index;
            resolution->error = ErrorFromProto(value.error());
          }
        } else {
          // Each index is written once, by its own arrival; the lock
          // orders the writes with the final read of the spec.
          *task.spec.mutable_args(index)->mutable_value() = std::move(value);
        }
      }
      arrive();
    });
  }
  arrive();
}

}  // namespace sunray
