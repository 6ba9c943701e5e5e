#include "src/core/placement_groups.h"

#include "ray/api/ray_exception.h"
#include "src/common/id.h"

namespace sunray {

ray::PlacementGroup PlacementGroupBook::MakeHandle(const std::string &id, const Record &record) {
  return ray::PlacementGroup(id, record.options, record.state);
}

void CheckPlacementGroupOptions(const ray::PlacementGroupCreationOptions &options) {
  if (options.bundles.empty()) {
    throw ray::internal::RayException("A placement group needs at least one bundle.");
  }
  for (size_t i = 0; i < options.bundles.size(); ++i) {
    if (options.bundles[i].empty()) {
      throw ray::internal::RayException("Bundle " + std::to_string(i) + " of placement group '" +
                                        options.name + "' asks for no resources.");
    }
    ray::internal::CheckTaskOptions(options.bundles[i]);
  }
  if (options.strategy == ray::PlacementStrategy::UNRECOGNIZED) {
    throw ray::internal::RayException("Placement group '" + options.name +
                                      "' has no valid strategy.");
  }
}

ray::PlacementGroup PlacementGroupBook::Create(const ray::PlacementGroupCreationOptions &options) {
  CheckPlacementGroupOptions(options);
  const std::string id = PlacementGroupID::FromRandom().Binary();
  Record record{options, namespace_, ray::CREATED};
  absl::MutexLock lock(&mu_);
  if (!options.name.empty()) {
    for (const auto &[other_id, other] : groups_) {
      if (other.options.name == options.name && other.ray_namespace == namespace_ &&
          other.state != ray::REMOVED) {
        throw ray::internal::RayException("A placement group named '" + options.name +
                                          "' already exists in namespace '" + namespace_ + "'.");
      }
    }
  }
  groups_.emplace(id, record);
  return MakeHandle(id, record);
}

void PlacementGroupBook::Remove(const std::string &group_id) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) {
    throw ray::internal::RayException("Cannot remove placement group " + BinaryToHex(group_id) +
                                      ": no such placement group.");
  }
  it->second.state = ray::REMOVED;
}

bool PlacementGroupBook::WaitReady(const std::string &group_id) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group_id);
  if (it == groups_.end()) {
    throw ray::internal::RayException("Cannot wait for placement group " + BinaryToHex(group_id) +
                                      ": no such placement group.");
  }
  return it->second.state == ray::CREATED;
}

std::vector<ray::PlacementGroup> PlacementGroupBook::All() {
  absl::MutexLock lock(&mu_);
  std::vector<ray::PlacementGroup> groups;
  for (const auto &[id, record] : groups_) groups.push_back(MakeHandle(id, record));
  return groups;
}

ray::PlacementGroup PlacementGroupBook::ById(const std::string &id) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(id);
  return it == groups_.end() ? ray::PlacementGroup() : MakeHandle(id, it->second);
}

ray::PlacementGroup PlacementGroupBook::ByName(const std::string &name) {
  absl::MutexLock lock(&mu_);
  for (const auto &[id, record] : groups_) {
    if (record.options.name == name && record.ray_namespace == namespace_ &&
        record.state != ray::REMOVED) {
      return MakeHandle(id, record);
    }
  }
  return ray::PlacementGroup();
}

std::optional<std::string> PlacementGroupBook::WhyUnusable(const ray::PlacementGroup &group) {
  if (group.Empty()) return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group.GetID());
  if (it == groups_.end() || it->second.state == ray::REMOVED) {
    return "The placement group " + BinaryToHex(group.GetID()) + " (" + group.GetName() +
           ") does not exist or was removed.";
  }
  return std::nullopt;
}

}  // namespace sunray
