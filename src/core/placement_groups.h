// Placement groups as bookkeeping, for local mode (one process, no nodes):
// created at once, looked up by id or name per namespace, removed. In a
// cluster, control's PlacementGroupDirectory reserves bundles on nodes.
//
// Thread-safe. Errors throw RayException naming the group.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "ray/api/task_options.h"

namespace sunray {

// Throws RayException naming what is wrong with a group's options: no
// bundles, an empty bundle, a bad amount, no valid strategy.
void CheckPlacementGroupOptions(const ray::PlacementGroupCreationOptions &options);

class PlacementGroupBook {
 public:
  explicit PlacementGroupBook(std::string ray_namespace) : namespace_(std::move(ray_namespace)) {}

  ray::PlacementGroup Create(const ray::PlacementGroupCreationOptions &options);
  void Remove(const std::string &group_id);
  bool WaitReady(const std::string &group_id);
  std::vector<ray::PlacementGroup> All();
  ray::PlacementGroup ById(const std::string &id);
  ray::PlacementGroup ByName(const std::string &name);
  // Why a task asking for `group` can never run, if so.
  std::optional<std::string> WhyUnusable(const ray::PlacementGroup &group);

 private:
  struct Record {
    ray::PlacementGroupCreationOptions options;
    std::string ray_namespace;
    ray::PlacementGroupState state = ray::PENDING;
  };
  static ray::PlacementGroup MakeHandle(const std::string &id, const Record &record);

  const std::string namespace_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Record> groups_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
