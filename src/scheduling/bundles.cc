#include "src/scheduling/bundles.h"

#include <algorithm>
#include <numeric>

#include "absl/strings/numbers.h"

namespace sunray {
namespace {

constexpr std::string_view kGroupInfix = "_group_";
constexpr std::string_view kMarker = "bundle";

// The share of `node`'s total in use, once `taken` more is gone from
// `free`, of the resource `bundle` asks most of.
double UseAfter(const ResourceSet &bundle, const ResourceSet &free, const NodeView &node) {
  double use = 0;
  for (const auto &[name, amount] : bundle) {
    auto total = node.total.find(name);
    if (amount <= 0 || total == node.total.end() || total->second <= 0) continue;
    auto left = free.find(name);
    const int64_t remaining = (left == free.end() ? 0 : left->second) - amount;
    use = std::max(use, static_cast<double>(total->second - remaining) / total->second);
  }
  return use;
}

int64_t Size(const ResourceSet &bundle) {
  int64_t size = 0;
  for (const auto &[name, amount] : bundle) size += amount;
  return size;
}

void Take(const ResourceSet &bundle, ResourceSet &pool) {
  for (const auto &[name, amount] : bundle) pool[name] -= amount;
}

// One try over `pools` (each alive node's free or total resources).
std::optional<std::vector<int>> Greedy(const std::vector<ResourceSet> &bundles,
                                       BundleStrategy strategy, const std::vector<NodeView> &nodes,
                                       std::vector<ResourceSet> pools) {
  std::vector<int> node_of(bundles.size(), -1);
  // The node that fits `bundle` with the least use after, among `allowed`.
  auto best = [&](const ResourceSet &bundle, auto allowed) {
    int chosen = -1;
    double chosen_use = 0;
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (!nodes[n].alive || !allowed(static_cast<int>(n)) || !Fits(bundle, pools[n])) continue;
      const double use = UseAfter(bundle, pools[n], nodes[n]);
      if (chosen < 0 || use < chosen_use) {
        chosen = static_cast<int>(n);
        chosen_use = use;
      }
    }
    return chosen;
  };
  auto any = [](int) { return true; };

  if (strategy == BundleStrategy::kStrictPack || strategy == BundleStrategy::kPack) {
    ResourceSet sum;
    for (const auto &bundle : bundles) {
      for (const auto &[name, amount] : bundle) sum[name] += amount;
    }
    const int node = best(sum, any);
    if (node >= 0) return std::vector<int>(bundles.size(), node);
    if (strategy == BundleStrategy::kStrictPack) return std::nullopt;
    // PACK that no one node fits: fill the nodes it uses already first.
    std::vector<bool> used(nodes.size(), false);
    for (size_t i = 0; i < bundles.size(); ++i) {
      int chosen = best(bundles[i], [&](int n) { return used[n]; });
      if (chosen < 0) chosen = best(bundles[i], any);
      if (chosen < 0) return std::nullopt;
      Take(bundles[i], pools[chosen]);
      used[chosen] = true;
      node_of[i] = chosen;
    }
    return node_of;
  }
  // The spread strategies: largest bundles first, each on a node the group
  // does not use yet while one fits.
  std::vector<size_t> order(bundles.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return Size(bundles[a]) > Size(bundles[b]); });
  std::vector<bool> used(nodes.size(), false);
  for (size_t i : order) {
    int chosen = best(bundles[i], [&](int n) { return !used[n]; });
    if (chosen < 0 && strategy == BundleStrategy::kSpread) chosen = best(bundles[i], any);
    if (chosen < 0) return std::nullopt;
    Take(bundles[i], pools[chosen]);
    used[chosen] = true;
    node_of[i] = chosen;
  }
  return node_of;
}

std::string_view StrategyName(BundleStrategy strategy) {
  switch (strategy) {
    case BundleStrategy::kPack:
      return "PACK";
    case BundleStrategy::kSpread:
      return "SPREAD";
    case BundleStrategy::kStrictPack:
      return "STRICT_PACK";
    case BundleStrategy::kStrictSpread:
      return "STRICT_SPREAD";
  }
  return "?";
}

}  // namespace

std::string BundleResourceName(std::string_view name, const PlacementGroupID &group, int index) {
  std::string text(name);
  text += kGroupInfix;
  if (index >= 0) text += std::to_string(index) + "_";
  return text + group.Hex();
}

ResourceSet CommittedBundleResources(const PlacementGroupID &group, int index,
                                     const ResourceSet &bundle) {
  ResourceSet added;
  for (const auto &[name, amount] : bundle) {
    if (amount <= 0) continue;
    added[BundleResourceName(name, group, index)] += amount;
    added[BundleResourceName(name, group, -1)] += amount;
  }
  added[BundleResourceName(kMarker, group, index)] += kBundleMarkerUnits;
  added[BundleResourceName(kMarker, group, -1)] += kBundleMarkerUnits;
  return added;
}

ResourceSet ResourcesInBundle(const ResourceSet &request, const PlacementGroupID &group,
                              int index) {
  ResourceSet asked;
  for (const auto &[name, amount] : request) {
    if (amount <= 0) continue;
    asked[BundleResourceName(name, group, -1)] += amount;
    if (index >= 0) asked[BundleResourceName(name, group, index)] += amount;
  }
  asked[BundleResourceName(kMarker, group, index)] += kBundleMarkerShare;
  return asked;
}

namespace {

// Splits "<base>_group_[<index>_]<hex>"; false for an ordinary name.
bool SplitBundleName(std::string_view name, std::string_view *base, PlacementGroupID *group) {
  constexpr size_t kHex = 2 * PlacementGroupID::kSize;
  if (name.size() < kHex + kGroupInfix.size() + 1) return false;
  const std::string binary = HexToBinary(name.substr(name.size() - kHex));
  if (binary.size() != PlacementGroupID::kSize) return false;
  std::string_view rest = name.substr(0, name.size() - kHex);  // "<base>_group_[<i>_]"
  if (rest.ends_with(kGroupInfix)) {
    rest.remove_suffix(kGroupInfix.size());
  } else {
    const size_t infix = rest.rfind(kGroupInfix);
    int index = 0;
    if (infix == std::string_view::npos || !rest.ends_with("_")) return false;
    const std::string_view digits =
        rest.substr(infix + kGroupInfix.size(), rest.size() - 1 - infix - kGroupInfix.size());
    if (!absl::SimpleAtoi(absl::string_view(digits.data(), digits.size()), &index)) return false;
    rest = rest.substr(0, infix);
  }
  if (rest.empty()) return false;
  *base = rest;
  *group = PlacementGroupID::FromBinary(binary);
  return true;
}

}  // namespace

std::optional<PlacementGroupID> GroupOfResource(std::string_view name) {
  std::string_view base;
  PlacementGroupID group;
  if (!SplitBundleName(name, &base, &group)) return std::nullopt;
  return group;
}

std::string BaseResourceName(std::string_view name) {
  std::string_view base;
  PlacementGroupID group;
  if (!SplitBundleName(name, &base, &group)) return std::string(name);
  return base == kMarker ? "" : std::string(base);
}

ResourceSet WithoutBundleResources(const ResourceSet &resources) {
  ResourceSet plain;
  for (const auto &[name, amount] : resources) {
    if (!GroupOfResource(name)) plain[name] = amount;
  }
  return plain;
}

BundlePlacement PlaceBundles(const std::vector<ResourceSet> &bundles, BundleStrategy strategy,
                             const std::vector<NodeView> &nodes) {
  std::vector<ResourceSet> free, totals;
  for (const NodeView &node : nodes) {
    free.push_back(node.available);
    totals.push_back(node.total);
  }
  if (auto placed = Greedy(bundles, strategy, nodes, std::move(free))) {
    return BundlePlacement{BundlePlacement::kPlaced, *std::move(placed), ""};
  }
  if (Greedy(bundles, strategy, nodes, std::move(totals))) {
    return BundlePlacement{BundlePlacement::kNotNow, {}, ""};
  }
  size_t alive = 0;
  for (const NodeView &node : nodes) alive += node.alive;
  std::string reason = "no placement of its " + std::to_string(bundles.size()) + " bundle" +
                       (bundles.size() == 1 ? "" : "s") + " by " +
                       std::string(StrategyName(strategy)) + " exists on the " +
                       std::to_string(alive) + " alive node" + (alive == 1 ? "" : "s");
  if (strategy == BundleStrategy::kStrictSpread && bundles.size() > alive) {
    reason += " (STRICT_SPREAD needs a node per bundle)";
  }
  return BundlePlacement{BundlePlacement::kInfeasible, {}, reason};
}

}  // namespace sunray
