#include "src/core/schedulable.h"

#include <variant>

#include "src/core/runtime_env_check.h"
#include "src/scheduling/label_selector.h"

namespace sunray {

absl::StatusOr<proto::SchedulingStrategy> SchedulingStrategyToProto(
    const ray::SchedulingStrategy &strategy, const ray::LabelSelector &labels) {
  proto::SchedulingStrategy wire;
  if (std::holds_alternative<ray::SpreadSchedulingStrategy>(strategy)) {
    wire.set_kind(proto::SchedulingStrategy::SPREAD);
  } else if (const auto *affinity = std::get_if<ray::NodeAffinitySchedulingStrategy>(&strategy)) {
    const std::string binary = HexToBinary(affinity->node_id);
    if (binary.size() != NodeID::kSize || BinaryToHex(binary) != affinity->node_id) {
      return absl::InvalidArgumentError("NodeAffinitySchedulingStrategy: \"" + affinity->node_id +
                                        "\" is not a node id (56 hex digits)");
    }
    wire.set_kind(proto::SchedulingStrategy::NODE_AFFINITY);
    wire.set_node_id(binary);
    wire.set_soft(affinity->soft);
  }
  absl::StatusOr<std::vector<proto::LabelConstraint>> terms =
      ParseLabelSelector({labels.begin(), labels.end()});
  if (!terms.ok()) return terms.status();
  for (auto &term : *terms) *wire.add_label_selector() = std::move(term);
  return wire;
}

std::optional<ErrorInfo> CheckSchedulable(const ray::SchedulingStrategy &strategy,
                                          const ray::LabelSelector &labels,
                                          const ray::PlacementGroup &group,
                                          const std::string &runtime_env_info,
                                          const NodeID *only_node, PlacementGroupBook *groups,
                                          const std::string &node_note) {
  absl::StatusOr<proto::SchedulingStrategy> wire = SchedulingStrategyToProto(strategy, labels);
  if (!wire.ok()) {
    return ErrorInfo{ErrorType::kTaskUnschedulable, std::string(wire.status().message()), "", "",
                     ""};
  }
  if (only_node != nullptr) {
    if (const auto *affinity = std::get_if<ray::NodeAffinitySchedulingStrategy>(&strategy)) {
      if (!affinity->soft && affinity->node_id != only_node->Hex()) {
        return ErrorInfo{ErrorType::kTaskUnschedulable,
                         "The task asks to run on node " + affinity->node_id +
                             " (hard affinity), which is not in this cluster" + node_note,
                         "", "", ""};
      }
    }
    if (!LabelsMatch(wire->label_selector(), {{kNodeIdLabel, only_node->Hex()}})) {
      return ErrorInfo{ErrorType::kTaskUnschedulable,
                       "No node has labels matching the label selector (" +
                           LabelTermsText(wire->label_selector()) + ")" + node_note,
                       "", "", ""};
    }
  }
  if (groups != nullptr) {
    if (auto why = groups->WhyUnusable(group)) {
      return ErrorInfo{ErrorType::kTaskUnschedulable, *why, "", "", ""};
    }
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
