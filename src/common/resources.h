// Resource quantities in fixed point: 1/10000 of a unit, as Ray counts them,
// so fractions like 0.5 GPU add and subtract exactly. The one place for the
// conversion, the "fits" rule and the text form, for the node's leases,
// control's actor placement and the owner's feasibility check alike.
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

// A request's amounts as the API gives them (name → units), in fixed point.
template <typename Amounts>
ResourceSet ResourceSetFromUnits(const Amounts &amounts) {
  ResourceSet set;
  for (const auto &[name, amount] : amounts) set[name] = ToFixedPoint(amount);
  return set;
}

// The fits rule: every positive amount of `request` is there in `pool` (a
// resource the pool lacks counts as 0).
bool Fits(const ResourceSet &request, const ResourceSet &pool);
bool Fits(const proto::ResourceMap &request, const proto::ResourceMap &pool);

// Parses a JSON object of resource amounts ({"custom": 2, "accel": 0.5}).
// InvalidArgument names what is wrong (not an object, a non-number, a
// negative amount, an empty name).
absl::StatusOr<ResourceSet> ParseResourcesJson(const std::string &json);

// Node labels (Ray's `--labels`): string keys and values a label selector
// matches. Every node also carries kNodeIdLabel, its id in hex.
using Labels = std::map<std::string, std::string>;
inline constexpr char kNodeIdLabel[] = "ray.io/node_id";

// Parses a JSON object of labels ({"zone": "a", "disk": "ssd"}).
// InvalidArgument names what is wrong (not an object, a value that is not a
// string, an empty key, a key in the reserved "ray.io/" prefix).
absl::StatusOr<Labels> ParseLabelsJson(const std::string &json);

// The wire form and back.
void FillResourceMap(const ResourceSet &resources, proto::ResourceMap *out);
ResourceSet ResourceSetOf(const proto::ResourceMap &resources);

// "{CPU: 1, GPU: 0.5}", names sorted.
std::string ResourcesText(const ResourceSet &resources);

}  // namespace sunray
