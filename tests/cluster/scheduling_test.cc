// Scheduling across nodes, with real node daemons and a real driver
// (driver_main.cc's `where`): a task goes to the node that fits it (a lease
// request spilled back by the driver's node), SPREAD puts tasks on every
// node, node affinity and label selectors choose the node for tasks and
// actors, and hard affinity to a dead node fails while soft falls back.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <sstream>

#include "src/common/resources.h"
#include "src/testing/eventually.h"
#include "tests/cluster/multi_node.h"

namespace sunray {
namespace cli_test {
namespace {

using std::chrono::seconds;

// The driver's lines ("ran NODE" / "error ..."), or its failure.
std::vector<std::string> Lines(const CommandResult &result) {
  EXPECT_EQ(result.exit_code, 0) << result.output;
  std::vector<std::string> lines;
  std::istringstream in(result.output);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("ran ", 0) == 0 || line.rfind("error ", 0) == 0) lines.push_back(line);
  }
  return lines;
}

TEST(SchedulingTest, ATaskGoesToTheNodeThatHasItsResource) {
  MultiNodeCluster cluster;
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1).Resources(R"({"accel": 1})")));
  const std::string accel = cluster.nodes()[1].id;
  // Asked of the head (the driver's node), which has no accel: spilled back.
  const auto lines = Lines(cluster.RunDriverOn(cluster.head(), "where 2 resource accel 1"));
  EXPECT_EQ(lines, (std::vector<std::string>{"ran " + accel, "ran " + accel}));
}

TEST(SchedulingTest, SpreadPutsOneTaskOnEveryNode) {
  MultiNodeCluster cluster;
  // One CPU each. The driver's node may not know the last node yet (it
  // hears of nodes with its reports' answers, every second): the third task
  // then waits there, and goes to the last node when the next view shows
  // it, well before the first task (4 s) frees the driver's node.
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1)));
  const auto lines = Lines(cluster.RunDriverOn(cluster.nodes()[1], "where 3 spread sleep 4000"));
  std::set<std::string> ran(lines.begin(), lines.end());
  std::set<std::string> every;
  for (const auto &node : cluster.nodes()) every.insert("ran " + node.id);
  EXPECT_EQ(ran, every);
}

TEST(SchedulingTest, AffinityAndLabelSelectorsChooseTheNodeForTasksAndActors) {
  MultiNodeCluster cluster;
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1).Labels(R"({"zone": "a"})")));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1).Labels(R"({"zone": "b"})")));
  const auto &head = cluster.head();
  const auto &b = cluster.nodes()[1];
  EXPECT_EQ(Lines(cluster.RunDriverOn(head, "where 1 label zone b")),
            std::vector<std::string>{"ran " + b.id});
  EXPECT_EQ(Lines(cluster.RunDriverOn(b, "where 1 label zone '!b'")),
            std::vector<std::string>{"ran " + head.id});
  EXPECT_EQ(Lines(cluster.RunDriverOn(head, "where 1 affinity " + b.id + " hard")),
            std::vector<std::string>{"ran " + b.id});
  // Actors are placed by control with the same constraints.
  EXPECT_EQ(Lines(cluster.RunDriverOn(head, "where 2 actor label zone b")),
            (std::vector<std::string>{"ran " + b.id, "ran " + b.id}));
  EXPECT_EQ(Lines(cluster.RunDriverOn(b, "where 1 actor affinity " + head.id + " hard")),
            std::vector<std::string>{"ran " + head.id});
  // A malformed selector is refused naming the term.
  const auto bad = Lines(cluster.RunDriverOn(head, "where 1 label zone 'in(a,'"));
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_NE(bad[0].find("label selector \"zone\""), std::string::npos) << bad[0];
}

TEST(SchedulingTest, HardAffinityToADeadNodeFailsAndSoftAffinityRunsElsewhere) {
  MultiNodeCluster cluster;
  ASSERT_TRUE(cluster.StartHead(
      NodeOptions().Cpus(1).Flags("--health-check-period-ms 100 --health-check-timeout-ms 200 "
                                  "--health-check-failure-threshold 3")));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1)));
  const auto gone = cluster.nodes()[1];
  ASSERT_EQ(kill(gone.daemon, SIGKILL), 0);
  ASSERT_TRUE(Eventually([&] { return cluster.Info(gone.id).state() == proto::NodeInfo::DEAD; },
                         seconds(10)));
  auto hard = Lines(cluster.RunDriverOn(cluster.head(), "where 1 affinity " + gone.id + " hard"));
  ASSERT_EQ(hard.size(), 1u);
  EXPECT_NE(hard[0].find("error "), std::string::npos) << hard[0];
  EXPECT_NE(hard[0].find(gone.id + " (hard affinity), which is dead"), std::string::npos)
      << hard[0];
  EXPECT_EQ(Lines(cluster.RunDriverOn(cluster.head(), "where 1 affinity " + gone.id + " soft")),
            std::vector<std::string>{"ran " + cluster.head().id});
  // An actor too.
  hard = Lines(cluster.RunDriverOn(cluster.head(), "where 1 actor affinity " + gone.id + " hard"));
  ASSERT_EQ(hard.size(), 1u);
  EXPECT_NE(hard[0].find("which is dead"), std::string::npos) << hard[0];
}

TEST(SchedulingTest, AJobsWorkersOnOtherNodesStopWhenItsDriverExits) {
  MultiNodeCluster cluster;
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1)));
  const auto &b = cluster.nodes()[1];
  auto cpu_free_on_b = [&] {
    ResourceSet available = ResourceSetOf(cluster.Info(b.id).available());
    return available["CPU"] == kResourceUnit;
  };
  ASSERT_TRUE(Eventually(cpu_free_on_b, seconds(10)));
  // A 60 s task on b; its driver (on the head) is killed after 3 s.
  cluster.RunDriverOn(cluster.head(), "where 1 affinity " + b.id + " hard sleep 60000",
                      "timeout -s KILL 3");
  // b hears the job finished with its next report and stops the worker:
  // its CPU is free long before the task would have ended.
  EXPECT_TRUE(Eventually(cpu_free_on_b, seconds(15)));
}

}  // namespace
}  // namespace cli_test
}  // namespace sunray
