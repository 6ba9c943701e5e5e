// Placement groups' bundles as the scheduler sees them: where control puts
// a group's bundles (PlaceBundles), and the resources a committed bundle
// adds to its node — the names tasks and actors in the group lease.
//
// A node that commits bundle i of group G (hex id H) with {CPU: 2} takes
// CPU 2 out of its free resources and adds:
//   CPU_group_i_H: 2      (this bundle)
//   CPU_group_H: 2        (any bundle of G on this node; summed)
//   bundle_group_i_H: 1000, bundle_group_H: 1000 (markers, per bundle)
// A task in bundle i asks for CPU_group_i_H and CPU_group_H (so a task in
// "any bundle" cannot take what an indexed one holds) plus 0.001 of the
// bundle markers, so a task or actor asking for no resources still lands
// on a node that holds the bundle. Only nodes that hold the bundle have
// these names: the ordinary policies then send the lease there.
//
// Pure code, no state.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/common/id.h"
#include "src/common/resources.h"
#include "src/scheduling/policy.h"

namespace sunray {

// Each bundle marker's amount on a node, per bundle, and a task's share.
inline constexpr int64_t kBundleMarkerUnits = 1000 * kResourceUnit;
inline constexpr int64_t kBundleMarkerShare = kResourceUnit / 1000;

// `name` of bundle `index` of `group` (index -1: any bundle of it).
std::string BundleResourceName(std::string_view name, const PlacementGroupID &group, int index);

// What committing bundle `index` (resources `bundle`) adds to its node.
ResourceSet CommittedBundleResources(const PlacementGroupID &group, int index,
                                     const ResourceSet &bundle);

// What a task or actor asking for `request` in bundle `index` of `group`
// (-1: any bundle) leases.
ResourceSet ResourcesInBundle(const ResourceSet &request, const PlacementGroupID &group, int index);

// The group a bundle resource name belongs to, nullopt for an ordinary
// resource.
std::optional<PlacementGroupID> GroupOfResource(std::string_view name);
// "CPU" for "CPU_group_0_<hex>" and "CPU_group_<hex>"; the name itself for
// an ordinary resource; empty for a bundle marker.
std::string BaseResourceName(std::string_view name);
// `resources` without bundle resources (for people: `sunray status`).
ResourceSet WithoutBundleResources(const ResourceSet &resources);

// Ray's placement strategies (the API's ray::PlacementStrategy values).
enum class BundleStrategy { kPack = 0, kSpread = 1, kStrictPack = 2, kStrictSpread = 3 };

struct BundlePlacement {
  enum Kind {
    kPlaced,      // nodes[node_of[i]] takes bundle i
    kNotNow,      // it would fit the nodes' totals, not what is free now
    kInfeasible,  // no placement even if the whole cluster were idle
  };
  Kind kind = kInfeasible;
  std::vector<int> node_of;
  std::string reason;  // kInfeasible: why, for people
};

// Where each of `bundles` goes among the alive `nodes` by `strategy`:
// - STRICT_PACK: all on one node;
// - PACK: all on one node if one fits them, else as few nodes as it can;
// - STRICT_SPREAD: each on a different node;
// - SPREAD: on different nodes while there are, then doubling up.
// Among nodes that fit, the least used goes first (ties: the order in
// `nodes`). Greedy in bundle order, largest bundles first for the spread
// strategies.
BundlePlacement PlaceBundles(const std::vector<ResourceSet> &bundles, BundleStrategy strategy,
                             const std::vector<NodeView> &nodes);

}  // namespace sunray
