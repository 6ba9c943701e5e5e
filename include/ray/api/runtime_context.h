// Sunray extension: where the calling code runs.
//
//   auto context = ray::GetRuntimeContext();
//   RAYLOG(INFO) << "task " << context.GetTaskId() << " on node " << context.GetNodeId();
//
// Ids are hex strings; an id that does not apply (no actor in a plain task,
// no task in a driver) is empty.
#pragma once

#include <string>
#include <utility>

#include "ray/api/ray_runtime.h"
#include "ray/api/visibility.h"

namespace ray {

class RuntimeContext {
 public:
  explicit RuntimeContext(internal::RuntimeContextInfo info) : info_(std::move(info)) {}

  const std::string &GetJobId() const { return info_.job_id; }
  const std::string &GetTaskId() const { return info_.task_id; }
  const std::string &GetActorId() const { return info_.actor_id; }
  const std::string &GetNodeId() const { return info_.node_id; }
  const std::string &GetNamespace() const { return info_.ray_namespace; }
  bool WasCurrentActorRestarted() const { return info_.was_current_actor_restarted; }

 private:
  internal::RuntimeContextInfo info_;
};

RAY_EXPORT RuntimeContext GetRuntimeContext();

}  // namespace ray
