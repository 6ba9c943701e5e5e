#include "ray/api/serializer.h"

namespace ray {
namespace internal {
namespace {
thread_local std::vector<std::string> *current_collector = nullptr;
}  // namespace

ContainedRefCollector::ContainedRefCollector(std::vector<std::string> *ids)
    : previous_(current_collector) {
  current_collector = ids;
}

ContainedRefCollector::~ContainedRefCollector() { current_collector = previous_; }

void RecordContainedObjectRef(const std::string &object_id) {
  if (current_collector != nullptr && !object_id.empty()) current_collector->push_back(object_id);
}

}  // namespace internal
}  // namespace ray
