// Options carried by tasks, actors and placement groups, and their checks.
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "ray/api/ray_exception.h"
#include "ray/api/visibility.h"

namespace ray {

enum class PlacementStrategy {
  PACK = 0,
  SPREAD = 1,
  STRICT_PACK = 2,
  STRICT_SPREAD = 3,
  UNRECOGNIZED = -1
};

// Unscoped, as in Ray: the enumerators are names in namespace ray.
enum PlacementGroupState {
  PENDING = 0,
  CREATED = 1,
  REMOVED = 2,
  RESCHEDULING = 3,
  UNRECOGNIZED = -1
};

struct PlacementGroupCreationOptions {
  std::string name;
  std::vector<std::unordered_map<std::string, double>> bundles;
  PlacementStrategy strategy;
};

// A handle to a placement group: a set of resource bundles reserved together.
class RAY_EXPORT PlacementGroup {
 public:
  PlacementGroup() = default;
  PlacementGroup(std::string id, PlacementGroupCreationOptions options,
                 PlacementGroupState state = UNRECOGNIZED)
      : id_(std::move(id)), options_(std::move(options)), state_(state) {}

  std::string GetID() const { return id_; }
  std::string GetName() const { return options_.name; }
  std::vector<std::unordered_map<std::string, double>> GetBundles() const {
    return options_.bundles;
  }
  PlacementGroupState GetState() const { return state_; }
  PlacementStrategy GetStrategy() const { return options_.strategy; }
  bool Empty() const { return id_.empty(); }

  // Waits until every bundle is reserved. Returns false if that did not happen
  // within `timeout_seconds`. Throws RayException if the group is unknown.
  bool Wait(int timeout_seconds);

  // (Sic: Ray's spelling.) Replaces how Wait asks the runtime.
  void SetWaitCallbak(std::function<bool(const std::string &, int)> callback) {
    callback_ = std::move(callback);
  }

 private:
  std::string id_;
  PlacementGroupCreationOptions options_;
  PlacementGroupState state_ = UNRECOGNIZED;
  std::function<bool(const std::string &, int)> callback_;
};

// Sunray extension: where a task or actor may run.
struct DefaultSchedulingStrategy {};
// Spread tasks across nodes, one per node before doubling up.
struct SpreadSchedulingStrategy {};
// Run on one node (node_id in hex, as RuntimeContext::GetNodeId returns). With
// soft = false the task fails with TaskUnschedulableException if that node is
// gone; with soft = true it runs elsewhere instead.
struct NodeAffinitySchedulingStrategy {
  std::string node_id;
  bool soft = false;
};
using SchedulingStrategy = std::variant<DefaultSchedulingStrategy, SpreadSchedulingStrategy,
                                        NodeAffinitySchedulingStrategy>;
// Sunray extension (Ray 2.49's label_selector): the node's labels must
// match every entry. A value is "v" (equals), "!v" (not equals, or no such
// label), "in(a,b)" or "!in(a,b)". Nodes get labels from `sunray start
// --labels`, and each has "ray.io/node_id" (its id in hex). A selector no
// node matches waits, reported as infeasible, until such a node joins.
using LabelSelector = std::unordered_map<std::string, std::string>;

namespace internal {

// Task retries when none are set (Sunray: as Ray's Python API does).
inline constexpr int kDefaultTaskMaxRetries = 3;

struct CallOptions {
  std::string name;
  std::unordered_map<std::string, double> resources;
  PlacementGroup group;
  int bundle_index = -1;
  std::string serialized_runtime_env_info;
  // Sunray extensions.
  int max_retries = kDefaultTaskMaxRetries;
  bool retry_exceptions = false;
  SchedulingStrategy scheduling_strategy;
  LabelSelector label_selector;
};

struct ActorCreationOptions {
  std::string name;
  std::string ray_namespace;
  std::unordered_map<std::string, double> resources;
  int max_restarts = 0;
  int max_concurrency = 1;
  PlacementGroup group;
  int bundle_index = -1;
  std::string serialized_runtime_env_info;
  // Sunray extensions.
  int max_task_retries = 0;
  SchedulingStrategy scheduling_strategy;
  LabelSelector label_selector;
};

// Ray's rules: every value must be positive, and a value above 1 must be a
// whole number (a task can take half a GPU, not one and a half). Sunray also
// rejects empty names and values that are not finite.
inline void CheckTaskOptions(const std::unordered_map<std::string, double> &resources) {
  for (const auto &[name, value] : resources) {
    if (name.empty()) {
      throw RayException("Resource names must not be empty.");
    }
    if (!(value > 0) || !std::isfinite(value)) {
      throw RayException("Resource values should be positive. Specified resource: " + name + " = " +
                         std::to_string(value) + ".");
    }
    double whole = 0;
    if (value > 1 && std::modf(value, &whole) != 0.0) {
      throw RayException(
          "A resource value should be an integer if it is greater than 1.0. Specified "
          "resource: " +
          name + " = " + std::to_string(value) + ".");
    }
  }
}

inline void CheckPlacementGroupOption(const PlacementGroup &group, int bundle_index) {
  if (group.Empty()) return;
  const int bundles = static_cast<int>(group.GetBundles().size());
  if (bundle_index < -1 || bundle_index >= bundles) {
    throw RayException("Invalid bundle index " + std::to_string(bundle_index) +
                       " for placement group " + group.GetName() + " with " +
                       std::to_string(bundles) + " bundles.");
  }
}

}  // namespace internal
}  // namespace ray
