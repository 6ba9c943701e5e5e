// ClusterRuntime: placement groups, kept by the control service
// (src/control/placement_groups.h), and what tasks and actors in them ask
// for (src/scheduling/bundles.h).
#include "src/core/placement_groups.h"
#include "ray/api/ray_exception.h"
#include "src/common/id.h"
#include "src/scheduling/bundles.h"
#include "src/worker/cluster_runtime.h"

namespace sunray {
namespace {

using ray::internal::RayException;

ray::PlacementGroup HandleOf(const proto::PlacementGroupInfo &info) {
  ray::PlacementGroupCreationOptions options;
  options.name = info.name();
  options.strategy = static_cast<ray::PlacementStrategy>(info.strategy());
  for (const proto::BundleInfo &bundle : info.bundles()) {
    std::unordered_map<std::string, double> amounts;
    for (const auto &[name, amount] : ResourceSetOf(bundle.resources())) {
      amounts[name] = FromFixedPoint(amount);
    }
    options.bundles.push_back(std::move(amounts));
  }
  return ray::PlacementGroup(info.placement_group_id(), std::move(options),
                             static_cast<ray::PlacementGroupState>(info.state()));
}

// Throws RayException for a status that is not OK: `what` failed, and why.
void ThrowIfFailed(const absl::Status &status, const std::string &what) {
  if (!status.ok()) throw RayException(what + ": " + std::string(status.message()));
}

}  // namespace

ray::PlacementGroup ClusterRuntime::CreatePlacementGroup(
    const ray::PlacementGroupCreationOptions &options) {
  CheckPlacementGroupOptions(options);
  proto::PlacementGroupInfo info;
  info.set_placement_group_id(PlacementGroupID::FromRandom().Binary());
  info.set_name(options.name);
  info.set_ray_namespace(namespace_);
  info.set_job_id(job_id_.Binary());
  info.set_strategy(static_cast<proto::PlacementGroupInfo::Strategy>(options.strategy));
  for (const auto &bundle : options.bundles) {
    FillResourceMap(ResourceSetFromUnits(bundle), info.add_bundles()->mutable_resources());
  }
  ThrowIfFailed(control_.CreatePlacementGroup(info, kControlTimeout),
                "Cannot create placement group '" + options.name + "'");
  info.set_state(proto::PlacementGroupInfo::PENDING);
  return HandleOf(info);
}

void ClusterRuntime::RemovePlacementGroup(const std::string &group_id) {
  {
    absl::MutexLock lock(&groups_mu_);
    created_groups_.erase(group_id);
  }
  ThrowIfFailed(control_.RemovePlacementGroup(group_id, kControlTimeout),
                "Cannot remove placement group " + BinaryToHex(group_id));
}

bool ClusterRuntime::WaitPlacementGroupReady(const std::string &group_id, int64_t timeout_seconds) {
  absl::StatusOr<proto::PlacementGroupInfo> group = control_.WaitPlacementGroupReady(
      group_id, std::chrono::seconds(std::max<int64_t>(0, timeout_seconds)));
  ThrowIfFailed(group.status(), "Cannot wait for placement group " + BinaryToHex(group_id));
  return group->state() == proto::PlacementGroupInfo::CREATED;
}

std::vector<ray::PlacementGroup> ClusterRuntime::GetAllPlacementGroups() {
  absl::StatusOr<std::vector<proto::PlacementGroupInfo>> all =
      control_.GetAllPlacementGroups(kControlTimeout);
  ThrowIfFailed(all.status(), "Cannot list placement groups");
  std::vector<ray::PlacementGroup> groups;
  for (const auto &info : *all) groups.push_back(HandleOf(info));
  return groups;
}

ray::PlacementGroup ClusterRuntime::GetPlacementGroupById(const std::string &id) {
  proto::GetPlacementGroupRequest request;
  request.set_placement_group_id(id);
  absl::StatusOr<std::optional<proto::PlacementGroupInfo>> group =
      control_.GetPlacementGroup(request, kControlTimeout);
  ThrowIfFailed(group.status(), "Cannot look up placement group " + BinaryToHex(id));
  return group->has_value() ? HandleOf(**group) : ray::PlacementGroup();
}

ray::PlacementGroup ClusterRuntime::GetPlacementGroup(const std::string &name) {
  proto::GetPlacementGroupRequest request;
  request.set_name(name);
  request.set_ray_namespace(namespace_);
  absl::StatusOr<std::optional<proto::PlacementGroupInfo>> group =
      control_.GetPlacementGroup(request, kControlTimeout);
  ThrowIfFailed(group.status(), "Cannot look up placement group '" + name + "'");
  return group->has_value() ? HandleOf(**group) : ray::PlacementGroup();
}

absl::StatusOr<ClusterRuntime::InGroup> ClusterRuntime::PlaceInGroup(
    const ray::PlacementGroup &group, int bundle_index, const ResourceSet &resources) {
  const std::string &id = group.GetID();
  std::optional<proto::PlacementGroupInfo> info;
  {
    absl::MutexLock lock(&groups_mu_);
    auto it = created_groups_.find(id);
    if (it != created_groups_.end()) info = it->second;
  }
  if (!info) {
    proto::GetPlacementGroupRequest request;
    request.set_placement_group_id(id);
    absl::StatusOr<std::optional<proto::PlacementGroupInfo>> found =
        control_.GetPlacementGroup(request, kControlTimeout);
    if (!found.ok()) {
      return absl::UnavailableError(
          "its placement group " + BinaryToHex(id) +
          " could not be looked up: " + std::string(found.status().message()));
    }
    if (!found->has_value() || (*found)->state() == proto::PlacementGroupInfo::REMOVED) {
      return absl::FailedPreconditionError(
          "The placement group " + BinaryToHex(id) + " (" + group.GetName() + ") " +
          (found->has_value() ? "was removed." : "does not exist."));
    }
    info = **found;
    if (info->state() == proto::PlacementGroupInfo::CREATED) {
      absl::MutexLock lock(&groups_mu_);
      created_groups_[id] = *info;
    }
  }
  if (bundle_index >= info->bundles_size()) {
    return absl::FailedPreconditionError(
        "The placement group " + BinaryToHex(id) + " has " + std::to_string(info->bundles_size()) +
        " bundles, no bundle " + std::to_string(bundle_index) + ".");
  }
  InGroup placed;
  placed.resources = ResourcesInBundle(resources, PlacementGroupID::FromBinary(id), bundle_index);
  if (info->state() == proto::PlacementGroupInfo::CREATED) {
    // Ask the bundle's node first (any bundle: one on this node, else the
    // first): it has the bundle's resources now, while other nodes' views of
    // it may lag a report behind.
    const proto::BundleInfo *first = nullptr;
    for (int i = 0; i < info->bundles_size(); ++i) {
      const proto::BundleInfo &bundle = info->bundles(i);
      if (bundle_index >= 0 && i != bundle_index) continue;
      if (first == nullptr || bundle.node_id() == node_id_.Binary()) first = &bundle;
    }
    if (first != nullptr && first->node_id() != node_id_.Binary() &&
        !first->node_address().empty()) {
      placed.first_node = {first->node_address(), BinaryToHex(first->node_id())};
    }
  }
  return placed;
}

}  // namespace sunray
