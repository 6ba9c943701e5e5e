// Placement groups across real node daemons, with a real driver
// (driver_main.cc's `pg`): each strategy puts the bundles where it says,
// tasks and actors in a bundle run on its node, an infeasible group is
// reported and placed once a node that fits joins, and removing a group
// kills what runs in it and frees its resources.
#include <gtest/gtest.h>

#include <future>
#include <map>
#include <set>
#include <sstream>

#include "src/common/resources.h"
#include "src/testing/eventually.h"
#include "tests/cluster/multi_node.h"

namespace sunray {
namespace cli_test {
namespace {

using std::chrono::seconds;

// The driver's output: "ready ..." and, per bundle, where its task and its
// actor ran; or the lines starting with `prefix`.
struct PgRun {
  bool ready = false;
  std::map<int, std::string> task_node;   // bundle -> node id
  std::map<int, std::string> actor_node;  // bundle -> node id
  std::vector<std::string> other;         // the remaining lines
};

PgRun Parse(const CommandResult &result) {
  EXPECT_EQ(result.exit_code, 0) << result.output;
  PgRun run;
  std::istringstream in(result.output);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string first, kind, node;
    int bundle = -1;
    words >> first;
    if (first == "ready") {
      std::string value;
      words >> value;
      run.ready = value == "true";
    } else if (first == "bundle" && (words >> bundle >> kind >> node)) {
      (kind == "task" ? run.task_node : run.actor_node)[bundle] = node;
    } else if (first == "removed" || first == "freed") {
      run.other.push_back(line);
    }
  }
  return run;
}

std::set<std::string> Distinct(const std::map<int, std::string> &nodes) {
  std::set<std::string> distinct;
  for (const auto &[bundle, node] : nodes) distinct.insert(node);
  return distinct;
}

class PlacementGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.StartHead(NodeOptions().Cpus(2)));
    ASSERT_TRUE(cluster_.AddNode(NodeOptions().Cpus(2)));
    ASSERT_TRUE(cluster_.AddNode(NodeOptions().Cpus(2)));
  }

  // Every node's CPUs are free again as control sees them (the last group
  // went with its driver's job): SPREAD and PACK decide by what is free.
  void WaitIdle() {
    EXPECT_TRUE(Eventually(
        [&] {
          for (const auto &node : cluster_.nodes()) {
            const proto::NodeInfo info = cluster_.Info(node.id);
            ResourceSet available = ResourceSetOf(info.available());
            ResourceSet total = ResourceSetOf(info.total());
            if (available["CPU"] != total["CPU"]) return false;
          }
          return true;
        },
        seconds(10)));
  }

  // Runs `pg ARGS` from the head on an idle cluster and checks that every
  // bundle's task and actor ran on one node, the bundle's.
  PgRun Run(const std::string &args) {
    WaitIdle();
    PgRun run = Parse(cluster_.RunDriverOn(cluster_.head(), "pg " + args));
    EXPECT_TRUE(run.ready) << args;
    EXPECT_EQ(run.task_node, run.actor_node) << args;
    return run;
  }

  MultiNodeCluster cluster_;
};

TEST_F(PlacementGroupTest, EachStrategyPutsTheBundlesWhereItSays) {
  // Each run is its own job: its group goes when its driver exits.
  EXPECT_EQ(Distinct(Run("STRICT_SPREAD 3 1 30").task_node).size(), 3u);
  EXPECT_EQ(Distinct(Run("STRICT_PACK 2 1 30").task_node).size(), 1u);
  EXPECT_EQ(Distinct(Run("SPREAD 3 1 30").task_node).size(), 3u);
  EXPECT_EQ(Distinct(Run("PACK 2 1 30").task_node).size(), 1u);
  // Four bundles of one CPU fit no one node of two: PACK uses two nodes.
  EXPECT_EQ(Distinct(Run("PACK 4 1 30").task_node).size(), 2u);
}

TEST_F(PlacementGroupTest, AnInfeasibleGroupIsReportedAndPlacedOnceANodeFits) {
  // Four bundles, one per node, on three nodes: nothing fits until a
  // fourth node joins.
  auto driver = std::async(std::launch::async, [&] {
    return cluster_.RunDriverOn(cluster_.head(), "pg STRICT_SPREAD 4 1 120");
  });
  const auto &head = cluster_.head();
  EXPECT_TRUE(Eventually(
      [&] {
        return RunSunrayIn(head.root, "status").output.find("pending (1 infeasible)") !=
               std::string::npos;
      },
      seconds(30)))
      << RunSunrayIn(head.root, "status").output;
  const CommandResult listed = RunSunrayIn(head.root, "list placement-groups");
  EXPECT_NE(listed.output.find("PENDING (infeasible)"), std::string::npos) << listed.output;
  EXPECT_NE(listed.output.find("STRICT_SPREAD"), std::string::npos) << listed.output;

  ASSERT_TRUE(cluster_.AddNode(NodeOptions().Cpus(1)));
  const PgRun run = Parse(driver.get());
  EXPECT_TRUE(run.ready);
  EXPECT_EQ(Distinct(run.task_node).size(), 4u);
  EXPECT_EQ(run.task_node, run.actor_node);
  // Its driver exited: the group went with its job.
  const CommandResult after = RunSunrayIn(head.root, "list placement-groups --format json");
  EXPECT_NE(after.output.find("\"state\": \"REMOVED\""), std::string::npos) << after.output;
}

TEST_F(PlacementGroupTest, RemovingAGroupKillsWhatRunsInItAndFreesItsResources) {
  // Three bundles of two CPUs: every CPU of the cluster.
  const PgRun run = Parse(cluster_.RunDriverOn(cluster_.head(), "pg STRICT_SPREAD 3 2 30 remove"));
  ASSERT_TRUE(run.ready);
  ASSERT_EQ(run.other.size(), 4u);
  EXPECT_NE(run.other[0].find("removed task error"), std::string::npos) << run.other[0];
  EXPECT_NE(run.other[1].find("removed actor error"), std::string::npos) << run.other[1];
  EXPECT_NE(run.other[2].find("removed after error"), std::string::npos) << run.other[2];
  EXPECT_NE(run.other[2].find("was removed"), std::string::npos) << run.other[2];
  // The CPUs came back: a two-CPU task ran.
  EXPECT_EQ(run.other[3].rfind("freed ran ", 0), 0u) << run.other[3];
}

}  // namespace
}  // namespace cli_test
}  // namespace sunray
