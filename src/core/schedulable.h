// The checks both runtimes make before accepting a task or an actor: can it
// ever run here?
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common.pb.h"
#include "ray/api/task_options.h"
#include "src/common/id.h"
#include "src/core/object_error.h"
#include "src/core/placement_groups.h"

namespace sunray {

// Why a task or actor with this strategy, label selector, placement group
// and runtime env can never run (nullopt: it may). With `only_node` (local
// mode: one node, labeled only with its id) the strategy and selector are
// checked against that node, and `node_note` ends the message of a hard
// affinity to another node, after "which is not in this cluster"; without
// it (a cluster: its nodes decide) only their form is checked. `groups`
// (local mode's book) checks the placement group; null: the caller does.
std::optional<ErrorInfo> CheckSchedulable(const ray::SchedulingStrategy &strategy,
                                          const ray::LabelSelector &labels,
                                          const ray::PlacementGroup &group,
                                          const std::string &runtime_env_info,
                                          const NodeID *only_node, PlacementGroupBook *groups,
                                          const std::string &node_note);

// The strategy and selector as they travel with a lease request or an
// actor's creation. InvalidArgument names what is malformed (a node id
// that is not 56 hex digits, a selector's term).
absl::StatusOr<proto::SchedulingStrategy> SchedulingStrategyToProto(
    const ray::SchedulingStrategy &strategy, const ray::LabelSelector &labels);

// An actor runs its calls on max_concurrency threads of its own: this many
// at most (a worker also refuses a larger number from the wire).
inline constexpr int kMaxActorConcurrency = 1000;

// What is wrong with an actor's own options (nullopt: nothing).
std::optional<std::string> CheckActorOptions(const ray::internal::ActorCreationOptions &options);

}  // namespace sunray
