// `sunray status` and `sunray list`: the cluster as the control service and
// its nodes report it, for people (tables, human units) or as JSON.
#pragma once

#include <string>

namespace sunray {

// Each returns the command's exit code; `address_flag` is the control
// service's HOST:PORT, or empty for the newest session's on this machine.
int Status(const std::string &address_flag);
// `format`: "table" or "json".
int ListNodes(const std::string &address_flag, const std::string &format);
int ListPlacementGroups(const std::string &address_flag, const std::string &format);

}  // namespace sunray
