// Resource quantities in fixed point: 1/10000 of a unit, as Ray counts them,
// so fractions like 0.5 GPU add and subtract exactly.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common.pb.h"

namespace sunray {

inline constexpr int64_t kResourceUnit = 10000;

using ResourceSet = std::map<std::string, int64_t>;  // name -> fixed-point amount

int64_t ToFixedPoint(double amount);
double FromFixedPoint(int64_t amount);

// Parses a JSON object of resource amounts ({"custom": 2, "accel": 0.5}).
// InvalidArgument names what is wrong (not an object, a non-number, a
// negative amount, an empty name).
absl::StatusOr<ResourceSet> ParseResourcesJson(const std::string &json);

// Adds `resources` to the wire form `out`.
void FillResourceMap(const ResourceSet &resources, proto::ResourceMap *out);

}  // namespace sunray
