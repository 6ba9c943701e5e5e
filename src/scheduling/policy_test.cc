#include "src/scheduling/policy.h"

#include <gtest/gtest.h>

#include <map>

namespace sunray {
namespace {

constexpr int64_t kUnit = kResourceUnit;

NodeView Node(double cpus_total, double cpus_free, Labels labels = {}) {
  NodeView node;
  node.id = NodeID::FromRandom();
  node.address = "127.0.0.1:" + std::to_string(1000 + labels.size());
  node.total = {{"CPU", ToFixedPoint(cpus_total)}};
  node.available = {{"CPU", ToFixedPoint(cpus_free)}};
  node.labels = std::move(labels);
  return node;
}

const ResourceSet kOneCpu = {{"CPU", kUnit}};

proto::SchedulingStrategy Default() { return {}; }

proto::SchedulingStrategy Spread() {
  proto::SchedulingStrategy strategy;
  strategy.set_kind(proto::SchedulingStrategy::SPREAD);
  return strategy;
}

proto::SchedulingStrategy Affinity(const NodeView &node, bool soft) {
  proto::SchedulingStrategy strategy;
  strategy.set_kind(proto::SchedulingStrategy::NODE_AFFINITY);
  strategy.set_node_id(node.id.Binary());
  strategy.set_soft(soft);
  return strategy;
}

TEST(SchedulingPolicyTest, HybridPacksTheLocalNodeToHalfThenTakesTheLeastUsed) {
  SchedulingPolicy policy;
  // Local: 4 CPUs, 1 in use (25%): stays local.
  std::vector<NodeView> nodes = {Node(4, 3), Node(4, 4), Node(4, 1)};
  Placement where = policy.Place(kOneCpu, Default(), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kRun);
  EXPECT_EQ(where.index, 0);
  // Local at half: the unused node gets it, not the busier one.
  nodes[0].available["CPU"] = 2 * kUnit;
  where = policy.Place(kOneCpu, Default(), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kRun);
  EXPECT_EQ(where.index, 1);
  // Every node at half or more: the least used.
  nodes[1].available["CPU"] = 1 * kUnit;  // 75%
  nodes[2].available["CPU"] = 2 * kUnit;  // 50%
  nodes[0].available["CPU"] = 1 * kUnit;  // 75%
  where = policy.Place(kOneCpu, Default(), nodes, 0);
  EXPECT_EQ(where.index, 2);
}

TEST(SchedulingPolicyTest, HybridWaitsLocallyWhenNothingFitsNowAndTheLocalNodeCan) {
  SchedulingPolicy policy;
  std::vector<NodeView> nodes = {Node(2, 0), Node(2, 0)};
  Placement where = policy.Place(kOneCpu, Default(), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kWait);
  EXPECT_EQ(where.index, 0);
  // A local node that can never fit it sends it to one that can.
  where = policy.Place({{"CPU", 2 * kUnit}, {"accel", kUnit}}, Default(),
                       {Node(2, 2),
                        [] {
                          NodeView node = Node(2, 0);
                          node.total["accel"] = kUnit;
                          return node;
                        }()},
                       0);
  EXPECT_EQ(where.kind, Placement::kWait);
  EXPECT_EQ(where.index, 1);
}

TEST(SchedulingPolicyTest, ARequestNoAliveNodeCanFitIsInfeasible) {
  SchedulingPolicy policy;
  std::vector<NodeView> nodes = {Node(2, 2), Node(8, 8)};
  nodes[1].alive = false;
  const Placement where = policy.Place({{"CPU", 4 * kUnit}}, Default(), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kInfeasible);
}

TEST(SchedulingPolicyTest, SpreadGoesRoundTheNodesThatFitNow) {
  SchedulingPolicy policy;
  std::vector<NodeView> nodes = {Node(4, 4), Node(4, 4), Node(4, 0), Node(4, 4)};
  std::vector<int> chosen;
  for (int i = 0; i < 6; ++i) {
    const Placement where = policy.Place(kOneCpu, Spread(), nodes, 0);
    ASSERT_EQ(where.kind, Placement::kRun);
    chosen.push_back(where.index);
  }
  EXPECT_EQ(chosen, (std::vector<int>{0, 1, 3, 0, 1, 3}));  // node 2 is full
}

TEST(SchedulingPolicyTest, HardAffinityRunsOrWaitsThereAndFailsForADeadOrUnknownNode) {
  SchedulingPolicy policy;
  std::vector<NodeView> nodes = {Node(2, 2), Node(2, 0), Node(2, 2)};
  Placement where = policy.Place(kOneCpu, Affinity(nodes[2], false), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kRun);
  EXPECT_EQ(where.index, 2);
  where = policy.Place(kOneCpu, Affinity(nodes[1], false), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kWait);  // busy: waits there
  EXPECT_EQ(where.index, 1);

  nodes[2].alive = false;
  where = policy.Place(kOneCpu, Affinity(nodes[2], false), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kUnschedulable);
  EXPECT_NE(where.reason.find(nodes[2].id.Hex() + " (hard affinity), which is dead"),
            std::string::npos)
      << where.reason;
  where = policy.Place(kOneCpu, Affinity(Node(1, 1), false), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kUnknownNode);
}

TEST(SchedulingPolicyTest, SoftAffinityFallsBackWhenTheNodeIsDeadOrCanNeverFit) {
  SchedulingPolicy policy;
  std::vector<NodeView> nodes = {Node(2, 2), Node(1, 1), Node(4, 4)};
  nodes[1].alive = false;
  Placement where = policy.Place(kOneCpu, Affinity(nodes[1], true), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kRun);
  EXPECT_EQ(where.index, 0);  // the hybrid policy's choice
  nodes[1].alive = true;
  where = policy.Place({{"CPU", 2 * kUnit}}, Affinity(nodes[1], true), nodes, 0);
  EXPECT_EQ(where.kind, Placement::kRun);
  EXPECT_NE(where.index, 1);  // 2 CPUs never fit node 1
  where = policy.Place(kOneCpu, Affinity(nodes[1], true), nodes, 0);
  EXPECT_EQ(where.index, 1);
}

TEST(SchedulingPolicyTest, LabelSelectorsRestrictEveryPolicy) {
  SchedulingPolicy policy;
  std::vector<NodeView> nodes = {Node(4, 4, {{"zone", "a"}}), Node(4, 4, {{"zone", "b"}}),
                                 Node(4, 4, {{"zone", "c"}})};
  proto::SchedulingStrategy strategy;
  proto::LabelConstraint *term = strategy.add_label_selector();
  term->set_key("zone");
  term->add_values("b");
  term->add_values("c");
  for (int i = 0; i < 4; ++i) {
    const Placement where = policy.Place(kOneCpu, strategy, nodes, 0);
    ASSERT_EQ(where.kind, Placement::kRun);
    EXPECT_NE(where.index, 0);
  }
  strategy.set_kind(proto::SchedulingStrategy::SPREAD);
  std::map<int, int> spread;
  for (int i = 0; i < 4; ++i) ++spread[policy.Place(kOneCpu, strategy, nodes, 0).index];
  EXPECT_EQ(spread, (std::map<int, int>{{1, 2}, {2, 2}}));
  // Hard affinity to a node the selector excludes can never be met there.
  proto::SchedulingStrategy excluded = Affinity(nodes[0], false);
  *excluded.mutable_label_selector() = strategy.label_selector();
  EXPECT_EQ(policy.Place(kOneCpu, excluded, nodes, 0).kind, Placement::kInfeasible);
  // Nothing matches: infeasible.
  term->set_negated(true);
  term->add_values("a");
  EXPECT_EQ(policy.Place(kOneCpu, strategy, nodes, 0).kind, Placement::kInfeasible);
}

TEST(SchedulingPolicyTest, WithoutALocalNodeThePolicyStillChooses) {
  SchedulingPolicy policy;  // as control places actors
  std::vector<NodeView> nodes = {Node(2, 1), Node(2, 2)};
  nodes[0].available["CPU"] = kUnit / 2;  // 75% used
  const Placement where = policy.Place(kOneCpu, Default(), nodes, -1);
  EXPECT_EQ(where.kind, Placement::kRun);
  EXPECT_EQ(where.index, 1);
}

}  // namespace
}  // namespace sunray
