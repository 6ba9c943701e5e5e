// The checks both runtimes make before accepting a task or an actor: can it
// ever run here?
#pragma once

#include <optional>
#include <string>

#include "ray/api/task_options.h"
#include "src/common/id.h"
#include "src/core/object_error.h"
#include "src/core/placement_groups.h"

namespace sunray {

// Why a task or actor with this strategy, placement group and runtime env
// can never run on the one node `node` (nullopt: it can). `node_note`
// ends the message of a hard affinity to another node, after "which is not
// in this cluster".
std::optional<ErrorInfo> CheckSchedulable(const ray::SchedulingStrategy &strategy,
                                          const ray::PlacementGroup &group,
                                          const std::string &runtime_env_info, const NodeID &node,
                                          PlacementGroupBook &groups, const std::string &node_note);

// An actor runs its calls on max_concurrency threads of its own: this many
// at most (a worker also refuses a larger number from the wire).
inline constexpr int kMaxActorConcurrency = 1000;

// What is wrong with an actor's own options (nullopt: nothing).
std::optional<std::string> CheckActorOptions(const ray::internal::ActorCreationOptions &options);

}  // namespace sunray
