// The placement group directory against fake node daemons that prepare,
// commit and return bundles (or refuse to): the two phases, the rollback
// when one node refuses, infeasible groups placed once a node joins,
// removal, and a finished job's groups.
#include "src/control/placement_groups.h"

#include <gtest/gtest.h>

#include <future>
#include <map>

#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/rpc/rpc.h"
#include "src/testing/eventually.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

constexpr char kToken[] = "test-cluster-token";

// A node daemon's bundle calls: records them; refuses to prepare on demand.
class BundleNode final : public proto::NodeService::CallbackService {
 public:
  void Refuse(bool refuse) {
    absl::MutexLock lock(&mu_);
    refuse_ = refuse;
  }
  // "prepare G", "commit G", "return G" / "remove G" (G: the group's hex id).
  std::vector<std::string> Calls() {
    absl::MutexLock lock(&mu_);
    return calls_;
  }

  grpc::ServerUnaryReactor *PrepareBundles(grpc::CallbackServerContext *context,
                                           const proto::PrepareBundlesRequest *request,
                                           proto::PrepareBundlesReply *) override {
    return rpc::HandleUnary(context, kToken, [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      if (refuse_) return absl::ResourceExhaustedError("busy");
      calls_.push_back("prepare " + BinaryToHex(request->placement_group_id()));
      return absl::OkStatus();
    });
  }
  grpc::ServerUnaryReactor *CommitBundles(grpc::CallbackServerContext *context,
                                          const proto::CommitBundlesRequest *request,
                                          proto::CommitBundlesReply *) override {
    return rpc::HandleUnary(context, kToken, [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      calls_.push_back("commit " + BinaryToHex(request->placement_group_id()));
      return absl::OkStatus();
    });
  }
  grpc::ServerUnaryReactor *ReturnBundles(grpc::CallbackServerContext *context,
                                          const proto::ReturnBundlesRequest *request,
                                          proto::ReturnBundlesReply *) override {
    return rpc::HandleUnary(context, kToken, [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      calls_.push_back(std::string(request->removed() ? "remove " : "return ") +
                       BinaryToHex(request->placement_group_id()));
      return absl::OkStatus();
    });
  }

 private:
  absl::Mutex mu_;
  bool refuse_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> calls_ ABSL_GUARDED_BY(mu_);
};

class PlacementGroupDirectoryTest : public ::testing::Test {
 protected:
  // A node with `cpus` CPUs, all free.
  BundleNode &AddNode(double cpus) {
    auto node = std::make_unique<BundleNode>();
    auto server = std::make_unique<rpc::RpcServer>();
    auto port = server->Start("127.0.0.1:0", {node.get()});
    EXPECT_TRUE(port.ok()) << port.status();
    proto::NodeInfo info;
    info.set_node_id(NodeID::FromRandom().Binary());
    info.mutable_address()->set_ip("127.0.0.1");
    info.mutable_address()->set_port(*port);
    FillResourceMap({{"CPU", ToFixedPoint(cpus)}}, info.mutable_total());
    FillResourceMap({{"CPU", ToFixedPoint(cpus)}}, info.mutable_available());
    {
      absl::MutexLock lock(&mu_);
      infos_.push_back(info);
    }
    nodes_.push_back(std::move(node));
    servers_.push_back(std::move(server));
    directory_.OnNodesChanged();
    return *nodes_.back();
  }
  std::string NodeId(size_t index) {
    absl::MutexLock lock(&mu_);
    return infos_[index].node_id();
  }

  // A group of `bundles` bundles of one CPU each.
  proto::PlacementGroupInfo Group(int bundles, proto::PlacementGroupInfo::Strategy strategy,
                                  const std::string &job = "job1") {
    proto::PlacementGroupInfo group;
    group.set_placement_group_id(PlacementGroupID::FromRandom().Binary());
    group.set_job_id(job);
    group.set_strategy(strategy);
    for (int i = 0; i < bundles; ++i) {
      FillResourceMap({{"CPU", ToFixedPoint(1)}}, group.add_bundles()->mutable_resources());
    }
    return group;
  }

  proto::PlacementGroupInfo WaitReady(const std::string &id, absl::Duration timeout) {
    std::promise<absl::StatusOr<proto::PlacementGroupInfo>> answered;
    directory_.WaitReady(id, timeout, [&](absl::StatusOr<proto::PlacementGroupInfo> group) {
      answered.set_value(std::move(group));
    });
    absl::StatusOr<proto::PlacementGroupInfo> group = answered.get_future().get();
    EXPECT_TRUE(group.ok()) << group.status();
    return group.value_or(proto::PlacementGroupInfo());
  }

  absl::Mutex mu_;
  std::vector<proto::NodeInfo> infos_ ABSL_GUARDED_BY(mu_);
  // Servers after their services: destroyed first.
  std::vector<std::unique_ptr<BundleNode>> nodes_;
  std::vector<std::unique_ptr<rpc::RpcServer>> servers_;
  PlacementGroupDirectory directory_{{.token = kToken, .retry_delay = absl::Milliseconds(20)},
                                     [this] {
                                       absl::MutexLock lock(&mu_);
                                       return infos_;
                                     }};
};

TEST_F(PlacementGroupDirectoryTest, BundlesArePreparedThenCommittedOnEveryChosenNode) {
  BundleNode &a = AddNode(2);
  BundleNode &b = AddNode(2);
  const proto::PlacementGroupInfo group = Group(2, proto::PlacementGroupInfo::STRICT_SPREAD);
  ASSERT_TRUE(directory_.Create(group).ok());
  const proto::PlacementGroupInfo ready = WaitReady(group.placement_group_id(), absl::Seconds(10));
  ASSERT_EQ(ready.state(), proto::PlacementGroupInfo::CREATED);
  const std::string hex = BinaryToHex(group.placement_group_id());
  EXPECT_EQ(a.Calls(), (std::vector<std::string>{"prepare " + hex, "commit " + hex}));
  EXPECT_EQ(b.Calls(), (std::vector<std::string>{"prepare " + hex, "commit " + hex}));
  EXPECT_NE(ready.bundles(0).node_id(), ready.bundles(1).node_id());
  auto nodes = directory_.BundleNodes(group.placement_group_id(), 1);
  ASSERT_TRUE(nodes.ok()) << nodes.status();
  EXPECT_EQ(*nodes, std::vector<std::string>{ready.bundles(1).node_id()});
  // A second group by the same name in the same namespace is refused.
  proto::PlacementGroupInfo named = Group(1, proto::PlacementGroupInfo::PACK);
  named.set_name("g");
  ASSERT_TRUE(directory_.Create(named).ok());
  named.set_placement_group_id(PlacementGroupID::FromRandom().Binary());
  EXPECT_TRUE(absl::IsAlreadyExists(directory_.Create(named)));
}

TEST_F(PlacementGroupDirectoryTest, GroupsPlacedTogetherSeeWhatTheOnesBeforeThemTook) {
  AddNode(2);
  AddNode(2);
  // Created at once, placed in one round: four fit, the fifth waits.
  std::vector<proto::PlacementGroupInfo> groups;
  for (int i = 0; i < 5; ++i) {
    groups.push_back(Group(1, proto::PlacementGroupInfo::PACK));
    ASSERT_TRUE(directory_.Create(groups.back()).ok());
  }
  std::map<std::string, int> per_node;
  for (int i = 0; i < 4; ++i) {
    const proto::PlacementGroupInfo ready =
        WaitReady(groups[i].placement_group_id(), absl::Seconds(10));
    ASSERT_EQ(ready.state(), proto::PlacementGroupInfo::CREATED) << i;
    ++per_node[ready.bundles(0).node_id()];
  }
  EXPECT_EQ(per_node, (std::map<std::string, int>{{NodeId(0), 2}, {NodeId(1), 2}}));
  const proto::PlacementGroupInfo last =
      WaitReady(groups[4].placement_group_id(), absl::Milliseconds(100));
  EXPECT_EQ(last.state(), proto::PlacementGroupInfo::PENDING);
  EXPECT_TRUE(last.infeasible_reason().empty());  // it fits an idle cluster
}

TEST_F(PlacementGroupDirectoryTest, ANodeThatRefusesRollsBackTheWholeGroup) {
  BundleNode &a = AddNode(1);
  BundleNode &b = AddNode(1);
  b.Refuse(true);
  const proto::PlacementGroupInfo group = Group(2, proto::PlacementGroupInfo::SPREAD);
  ASSERT_TRUE(directory_.Create(group).ok());
  const std::string hex = BinaryToHex(group.placement_group_id());
  // a prepared, b refused: a gives its bundle back, and the group waits.
  ASSERT_TRUE(Eventually([&] {
    const auto calls = a.Calls();
    return std::find(calls.begin(), calls.end(), "return " + hex) != calls.end();
  }));
  EXPECT_EQ(WaitReady(group.placement_group_id(), absl::Milliseconds(50)).state(),
            proto::PlacementGroupInfo::PENDING);
  for (const std::string &call : a.Calls()) EXPECT_NE(call, "commit " + hex);
  // Once b agrees, a retry places it.
  b.Refuse(false);
  EXPECT_EQ(WaitReady(group.placement_group_id(), absl::Seconds(10)).state(),
            proto::PlacementGroupInfo::CREATED);
}

TEST_F(PlacementGroupDirectoryTest, AnInfeasibleGroupWaitsUntilANodeThatFitsJoins) {
  AddNode(1);
  AddNode(1);
  const proto::PlacementGroupInfo group = Group(3, proto::PlacementGroupInfo::STRICT_SPREAD);
  ASSERT_TRUE(directory_.Create(group).ok());
  ASSERT_TRUE(Eventually(
      [&] { return !directory_.Get(group.placement_group_id())->infeasible_reason().empty(); }));
  EXPECT_NE(directory_.Get(group.placement_group_id())->infeasible_reason().find("STRICT_SPREAD"),
            std::string::npos);
  AddNode(1);
  const proto::PlacementGroupInfo ready = WaitReady(group.placement_group_id(), absl::Seconds(10));
  EXPECT_EQ(ready.state(), proto::PlacementGroupInfo::CREATED);
  EXPECT_TRUE(ready.infeasible_reason().empty());
}

TEST_F(PlacementGroupDirectoryTest, RemovalGivesBundlesBackAndAnswersWaits) {
  BundleNode &a = AddNode(1);
  const proto::PlacementGroupInfo placed = Group(1, proto::PlacementGroupInfo::PACK);
  ASSERT_TRUE(directory_.Create(placed).ok());
  ASSERT_EQ(WaitReady(placed.placement_group_id(), absl::Seconds(10)).state(),
            proto::PlacementGroupInfo::CREATED);
  // Pending (no room): a wait for it ends when it is removed.
  const proto::PlacementGroupInfo pending = Group(1, proto::PlacementGroupInfo::PACK);
  ASSERT_TRUE(directory_.Create(pending).ok());
  std::promise<proto::PlacementGroupInfo> answered;
  directory_.WaitReady(pending.placement_group_id(), absl::Seconds(30),
                       [&](absl::StatusOr<proto::PlacementGroupInfo> group) {
                         answered.set_value(group.value_or(proto::PlacementGroupInfo()));
                       });
  ASSERT_TRUE(directory_.Remove(pending.placement_group_id()).ok());
  EXPECT_EQ(answered.get_future().get().state(), proto::PlacementGroupInfo::REMOVED);

  ASSERT_TRUE(directory_.Remove(placed.placement_group_id()).ok());
  const std::string hex = BinaryToHex(placed.placement_group_id());
  ASSERT_TRUE(Eventually([&] {
    const auto calls = a.Calls();
    return std::find(calls.begin(), calls.end(), "remove " + hex) != calls.end();
  }));
  const auto removed = directory_.RecentlyRemoved();
  EXPECT_NE(std::find(removed.begin(), removed.end(), placed.placement_group_id()), removed.end());
  EXPECT_TRUE(
      absl::IsFailedPrecondition(directory_.BundleNodes(placed.placement_group_id(), 0).status()));
  EXPECT_TRUE(absl::IsNotFound(directory_.Remove(PlacementGroupID::FromRandom().Binary())));
}

TEST(PlacementGroupDirectoryForgetting, RemovedGroupsAreForgottenAfterAWhile) {
  PlacementGroupDirectory directory({.token = kToken, .removed_kept = absl::Milliseconds(20)},
                                    [] { return std::vector<proto::NodeInfo>(); });
  proto::PlacementGroupInfo group;
  group.set_placement_group_id(PlacementGroupID::FromRandom().Binary());
  FillResourceMap({{"CPU", kResourceUnit}}, group.add_bundles()->mutable_resources());
  ASSERT_TRUE(directory.Create(group).ok());
  ASSERT_TRUE(directory.Remove(group.placement_group_id()).ok());
  EXPECT_EQ(directory.RecentlyRemoved().size(), 1u);
  EXPECT_TRUE(directory.Get(group.placement_group_id()).has_value());
  ASSERT_TRUE(Eventually([&] { return directory.RecentlyRemoved().empty(); }));
  EXPECT_FALSE(directory.Get(group.placement_group_id()).has_value());
  EXPECT_TRUE(directory.All().empty());
}

TEST_F(PlacementGroupDirectoryTest, AFinishedJobsGroupsAreRemoved) {
  AddNode(4);
  const proto::PlacementGroupInfo mine = Group(1, proto::PlacementGroupInfo::PACK, "job1");
  const proto::PlacementGroupInfo other = Group(1, proto::PlacementGroupInfo::PACK, "job2");
  ASSERT_TRUE(directory_.Create(mine).ok());
  ASSERT_TRUE(directory_.Create(other).ok());
  ASSERT_EQ(WaitReady(mine.placement_group_id(), absl::Seconds(10)).state(),
            proto::PlacementGroupInfo::CREATED);
  EXPECT_EQ(directory_.OnJobFinished("job1"), std::vector<std::string>{mine.placement_group_id()});
  EXPECT_EQ(directory_.Get(mine.placement_group_id())->state(), proto::PlacementGroupInfo::REMOVED);
  EXPECT_NE(directory_.Get(other.placement_group_id())->state(),
            proto::PlacementGroupInfo::REMOVED);
}

TEST_F(PlacementGroupDirectoryTest, MalformedGroupsAreRefusedNamingWhatIsWrong) {
  proto::PlacementGroupInfo group = Group(0, proto::PlacementGroupInfo::PACK);
  EXPECT_TRUE(absl::IsInvalidArgument(directory_.Create(group)));
  group = Group(1, proto::PlacementGroupInfo::PACK);
  group.mutable_bundles(0)->mutable_resources()->mutable_amounts()->clear();
  absl::Status empty = directory_.Create(group);
  EXPECT_TRUE(absl::IsInvalidArgument(empty));
  EXPECT_NE(empty.message().find("bundle 0 asks for no resources"), std::string::npos) << empty;
  group = Group(1, proto::PlacementGroupInfo::PACK);
  group.set_placement_group_id("short");
  EXPECT_TRUE(absl::IsInvalidArgument(directory_.Create(group)));
}

}  // namespace
}  // namespace sunray
