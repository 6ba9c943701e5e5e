#include "src/scheduling/bundles.h"

#include <gtest/gtest.h>

namespace sunray {
namespace {

ResourceSet Cpus(double cpus) { return ResourceSet{{"CPU", ToFixedPoint(cpus)}}; }

NodeView Node(double total_cpus, double free_cpus, bool alive = true) {
  NodeView node;
  node.id = NodeID::FromRandom();
  node.total = Cpus(total_cpus);
  node.available = Cpus(free_cpus);
  node.alive = alive;
  return node;
}

TEST(BundleResources, NamesRoundTrip) {
  const PlacementGroupID group = PlacementGroupID::FromRandom();
  const ResourceSet added = CommittedBundleResources(group, 3, Cpus(2));
  EXPECT_EQ(added.at("CPU_group_3_" + group.Hex()), ToFixedPoint(2));
  EXPECT_EQ(added.at("CPU_group_" + group.Hex()), ToFixedPoint(2));
  EXPECT_EQ(added.at("bundle_group_3_" + group.Hex()), kBundleMarkerUnits);
  for (const auto &[name, amount] : added) {
    ASSERT_TRUE(GroupOfResource(name).has_value()) << name;
    EXPECT_EQ(*GroupOfResource(name), group) << name;
  }
  EXPECT_EQ(BaseResourceName("CPU_group_3_" + group.Hex()), "CPU");
  EXPECT_EQ(BaseResourceName("my_res_group_" + group.Hex()), "my_res");
  EXPECT_EQ(BaseResourceName("bundle_group_" + group.Hex()), "");
  EXPECT_EQ(BaseResourceName("CPU"), "CPU");
  EXPECT_FALSE(GroupOfResource("CPU").has_value());
  EXPECT_FALSE(GroupOfResource("x_group_zz").has_value());
  EXPECT_EQ(WithoutBundleResources(added).size(), 0u);
}

TEST(BundleResources, ATaskInABundleFitsOnlyThatBundle) {
  const PlacementGroupID group = PlacementGroupID::FromRandom();
  ResourceSet node = CommittedBundleResources(group, 0, Cpus(1));
  for (const auto &[name, amount] : CommittedBundleResources(group, 1, Cpus(1))) {
    node[name] += amount;
  }
  EXPECT_TRUE(Fits(ResourcesInBundle(Cpus(1), group, 0), node));
  EXPECT_FALSE(Fits(ResourcesInBundle(Cpus(2), group, 0), node));
  EXPECT_TRUE(Fits(ResourcesInBundle(Cpus(2), group, -1), node));
  EXPECT_FALSE(Fits(ResourcesInBundle(Cpus(1), group, 2), node));
  // No resources at all still needs the bundle's node.
  EXPECT_TRUE(Fits(ResourcesInBundle({}, group, 1), node));
  EXPECT_FALSE(Fits(ResourcesInBundle({}, PlacementGroupID::FromRandom(), -1), node));
}

TEST(PlaceBundles, StrictPackPutsAllOnOneNode) {
  const std::vector<NodeView> nodes = {Node(2, 2), Node(4, 4)};
  BundlePlacement placed =
      PlaceBundles({Cpus(1), Cpus(1), Cpus(1)}, BundleStrategy::kStrictPack, nodes);
  ASSERT_EQ(placed.kind, BundlePlacement::kPlaced);
  EXPECT_EQ(placed.node_of, (std::vector<int>{1, 1, 1}));
  EXPECT_EQ(PlaceBundles({Cpus(3), Cpus(3)}, BundleStrategy::kStrictPack, nodes).kind,
            BundlePlacement::kInfeasible);
  // Fits the totals, not what is free now.
  EXPECT_EQ(PlaceBundles({Cpus(3)}, BundleStrategy::kStrictPack, {Node(4, 1)}).kind,
            BundlePlacement::kNotNow);
}

TEST(PlaceBundles, PackSpillsOverOnlyWhenOneNodeCannot) {
  const std::vector<NodeView> nodes = {Node(2, 2), Node(2, 2)};
  BundlePlacement one = PlaceBundles({Cpus(1), Cpus(1)}, BundleStrategy::kPack, nodes);
  ASSERT_EQ(one.kind, BundlePlacement::kPlaced);
  EXPECT_EQ(one.node_of[0], one.node_of[1]);
  BundlePlacement two = PlaceBundles({Cpus(1), Cpus(1), Cpus(1)}, BundleStrategy::kPack, nodes);
  ASSERT_EQ(two.kind, BundlePlacement::kPlaced);
  EXPECT_EQ(two.node_of[0], two.node_of[1]);
  EXPECT_NE(two.node_of[1], two.node_of[2]);
}

TEST(PlaceBundles, StrictSpreadNeedsANodePerBundle) {
  const std::vector<NodeView> nodes = {Node(4, 4), Node(4, 4), Node(4, 4, /*alive=*/false)};
  BundlePlacement placed = PlaceBundles({Cpus(1), Cpus(1)}, BundleStrategy::kStrictSpread, nodes);
  ASSERT_EQ(placed.kind, BundlePlacement::kPlaced);
  EXPECT_NE(placed.node_of[0], placed.node_of[1]);
  BundlePlacement three =
      PlaceBundles({Cpus(1), Cpus(1), Cpus(1)}, BundleStrategy::kStrictSpread, nodes);
  EXPECT_EQ(three.kind, BundlePlacement::kInfeasible);
  EXPECT_NE(three.reason.find("needs a node per bundle"), std::string::npos) << three.reason;
}

TEST(PlaceBundles, SpreadDoublesUpOnlyWhenNodesRunOut) {
  const std::vector<NodeView> nodes = {Node(4, 4), Node(4, 4)};
  BundlePlacement placed =
      PlaceBundles({Cpus(1), Cpus(1), Cpus(1)}, BundleStrategy::kSpread, nodes);
  ASSERT_EQ(placed.kind, BundlePlacement::kPlaced);
  EXPECT_NE(placed.node_of[0], placed.node_of[1]);
  // A big bundle goes first, so the small ones fit around it.
  BundlePlacement sized =
      PlaceBundles({Cpus(1), Cpus(4)}, BundleStrategy::kSpread, {Node(4, 2), Node(4, 4)});
  ASSERT_EQ(sized.kind, BundlePlacement::kPlaced);
  EXPECT_EQ(sized.node_of, (std::vector<int>{0, 1}));
}

TEST(PlaceBundles, TheLeastUsedNodeGoesFirst) {
  BundlePlacement placed =
      PlaceBundles({Cpus(1)}, BundleStrategy::kPack, {Node(4, 1), Node(4, 3), Node(4, 2)});
  ASSERT_EQ(placed.kind, BundlePlacement::kPlaced);
  EXPECT_EQ(placed.node_of, (std::vector<int>{1}));
}

}  // namespace
}  // namespace sunray
