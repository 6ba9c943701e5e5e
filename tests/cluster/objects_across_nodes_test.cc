// Objects between nodes, with real node daemons and a real driver
// (driver_main.cc's `transfer`): a task's large result read on another
// node, a large put read by a task on another node, an object a remote
// worker owns read here — each pulled in chunks by the reader's node — and
// every copy deleted once the objects are freed.
#include <gtest/gtest.h>

#include <sstream>

#include "node.grpc.pb.h"
#include "src/rpc/rpc.h"
#include "src/testing/eventually.h"
#include "tests/cluster/multi_node.h"

namespace sunray {
namespace cli_test {
namespace {

using std::chrono::seconds;

// How many objects the node's store holds (-1 if it cannot be asked).
int64_t ObjectsAt(const MultiNodeCluster &cluster, const MultiNodeCluster::Node &node) {
  auto stub = proto::NodeService::NewStub(rpc::MakeChannel(node.address));
  proto::GetNodeStatsReply stats;
  if (!stub->GetNodeStats(rpc::MakeClientContext(cluster.token(), milliseconds(5000)).get(), {},
                          &stats)
           .ok()) {
    return -1;
  }
  return stats.num_objects();
}

TEST(ObjectsAcrossNodesTest, LargeObjectsAreReadOnAnotherNodeAndEveryCopyGoes) {
  MultiNodeCluster cluster;
  // Each node holds three 6 MiB objects at the end (its own and copies).
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1).StoreBytes(40 << 20)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1).StoreBytes(40 << 20)));
  const auto &b = cluster.nodes()[1];
  // 6 MiB: more than one 5 MiB chunk.
  const CommandResult ran = cluster.RunDriverOn(cluster.head(), "transfer 6 " + b.id);
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  const std::string size = std::to_string(6 << 20);
  for (const std::string &line : {"result " + size, "arg " + size, "borrowed " + size}) {
    EXPECT_NE(ran.output.find(line + "\n"), std::string::npos) << line << "\n" << ran.output;
  }
  // The driver is gone and freed what it owned; the worker on b that owns
  // the borrowed object freed it when the driver let go.
  for (const auto &node : cluster.nodes()) {
    EXPECT_TRUE(Eventually([&] { return ObjectsAt(cluster, node) == 0; }, seconds(10)))
        << node.id << " still holds " << ObjectsAt(cluster, node) << " object(s)";
  }
}

TEST(ObjectsAcrossNodesTest, AnObjectOnlyADeadNodeHeldIsLostNamingTheObjectAndTheNode) {
  MultiNodeCluster cluster;
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1).StoreBytes(20 << 20)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1).StoreBytes(20 << 20)));
  const auto &b = cluster.nodes()[1];
  const CommandResult ran =
      cluster.RunDriverOn(cluster.head(), "lose " + b.id + " " + b.session + "/pids/node.pid");
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("lost Object "), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("is lost: it could not be pulled from node " + b.address),
            std::string::npos)
      << ran.output;
  EXPECT_EQ(ran.output.find("read "), std::string::npos) << ran.output;
}

TEST(ObjectsAcrossNodesTest, AReadMovesToAnotherCopyWhenTheNodeHoldingItDies) {
  MultiNodeCluster cluster;
  ASSERT_TRUE(cluster.StartHead(NodeOptions().Cpus(1).StoreBytes(20 << 20)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1).StoreBytes(20 << 20)));
  ASSERT_TRUE(cluster.AddNode(NodeOptions().Cpus(1).StoreBytes(20 << 20)));
  const auto &b = cluster.nodes()[1];
  const auto &c = cluster.nodes()[2];
  // Made on b, copied to c by a task there; b dies; the driver's node pulls
  // from c instead.
  const CommandResult ran = cluster.RunDriverOn(
      cluster.head(), "lose " + b.id + " " + b.session + "/pids/node.pid " + c.id);
  ASSERT_EQ(ran.exit_code, 0) << ran.output;
  EXPECT_NE(ran.output.find("copied 6291456"), std::string::npos) << ran.output;
  EXPECT_NE(ran.output.find("read 6291456"), std::string::npos) << ran.output;
}

}  // namespace
}  // namespace cli_test
}  // namespace sunray
