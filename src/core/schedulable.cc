#include "src/core/schedulable.h"

#include <variant>

#include "src/core/runtime_env_check.h"

namespace sunray {

std::optional<ErrorInfo> CheckSchedulable(const ray::SchedulingStrategy &strategy,
                                          const ray::PlacementGroup &group,
                                          const std::string &runtime_env_info, const NodeID &node,
                                          PlacementGroupBook &groups,
                                          const std::string &node_note) {
  if (const auto *affinity = std::get_if<ray::NodeAffinitySchedulingStrategy>(&strategy)) {
    if (!affinity->soft && affinity->node_id != node.Hex()) {
      return ErrorInfo{ErrorType::kTaskUnschedulable,
                       "The task asks to run on node " + affinity->node_id +
                           " (hard affinity), which is not in this cluster" + node_note,
                       "", "", ""};
    }
  }
  if (auto why = groups.WhyUnusable(group)) {
    return ErrorInfo{ErrorType::kTaskUnschedulable, *why, "", "", ""};
  }
  std::string env_error;
  if (!ParseRuntimeEnvInfo(runtime_env_info, &env_error)) {
    return ErrorInfo{ErrorType::kRuntimeEnv,
                     "The runtime env could not be set up: " + env_error + ".", "", "", ""};
  }
  return std::nullopt;
}

std::optional<std::string> CheckActorOptions(const ray::internal::ActorCreationOptions &options) {
  if (options.max_concurrency > kMaxActorConcurrency) {
    return "max_concurrency " + std::to_string(options.max_concurrency) +
           " is over Sunray's limit of " + std::to_string(kMaxActorConcurrency) +
           " threads per actor";
  }
  return std::nullopt;
}

}  // namespace sunray
