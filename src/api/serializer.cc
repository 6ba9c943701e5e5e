#include "ray/api/serializer.h"

#include "ray/api/ray_runtime_holder.h"

namespace ray {
namespace internal {
namespace {
thread_local std::vector<std::string> *current_collector = nullptr;
thread_local bool current_hold = false;
}  // namespace

ContainedRefCollector::ContainedRefCollector(std::vector<std::string> *ids, bool hold_references)
    : previous_(current_collector), previous_hold_(current_hold) {
  current_collector = ids;
  current_hold = hold_references;
}

ContainedRefCollector::~ContainedRefCollector() {
  current_collector = previous_;
  current_hold = previous_hold_;
}

void RecordContainedObjectRef(const std::string &object_id) {
  if (current_collector == nullptr || object_id.empty()) return;
  current_collector->push_back(object_id);
  if (current_hold) AddLocalReference(object_id);
}

}  // namespace internal
}  // namespace ray
