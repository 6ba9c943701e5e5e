// Placement groups: creation, lookup, removal, and tasks and actors in them.
#include <algorithm>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using sunray_test::kTimeoutMs;
using sunray_test::Throws;

using Bundles = std::vector<std::unordered_map<std::string, double>>;

int GroupSquare(int x) { return x * x; }

class Station {
 public:
  static Station *Create(int id) { return new Station(id); }
  explicit Station(int id) : id_(id) {}
  int Id() const { return id_; }

 private:
  int id_;
};

RAY_REMOTE(GroupSquare, Station::Create, &Station::Id);

class PlacementGroupTest : public sunray_test::RuntimeTest {
 protected:
  static ray::PlacementGroup Create(
      const std::string &name, Bundles bundles = {{{"CPU", 1}}},
      ray::PlacementStrategy strategy = ray::PlacementStrategy::PACK) {
    return ray::CreatePlacementGroup(
        ray::PlacementGroupCreationOptions{name, std::move(bundles), strategy});
  }
  static bool Listed(const std::string &id) {
    auto all = ray::GetAllPlacementGroups();
    return std::any_of(all.begin(), all.end(),
                       [&](const ray::PlacementGroup &group) { return group.GetID() == id; });
  }
};
SUNRAY_INSTANTIATE_RUNTIMES(PlacementGroupTest);

TEST_P(PlacementGroupTest, CreatedGroupDescribesItself) {
  Bundles bundles{{{"CPU", 1}}, {{"CPU", 0.5}, {"memory", 1024}}};
  auto group = Create("described", bundles, ray::PlacementStrategy::SPREAD);
  EXPECT_FALSE(group.Empty());
  EXPECT_FALSE(group.GetID().empty());
  EXPECT_EQ(group.GetName(), "described");
  EXPECT_EQ(group.GetBundles(), bundles);
  EXPECT_EQ(group.GetStrategy(), ray::PlacementStrategy::SPREAD);
  EXPECT_TRUE(group.Wait(10));
  EXPECT_EQ(ray::GetPlacementGroupById(group.GetID()).GetState(), ray::CREATED);
}

TEST_P(PlacementGroupTest, GroupIsFoundByNameByIdAndInTheList) {
  auto group = Create("findable");
  ASSERT_TRUE(group.Wait(10));
  auto by_name = ray::GetPlacementGroup("findable");
  EXPECT_EQ(by_name.GetID(), group.GetID());
  auto by_id = ray::GetPlacementGroupById(group.GetID());
  EXPECT_EQ(by_id.GetName(), "findable");
  EXPECT_EQ(by_id.GetBundles(), group.GetBundles());
  EXPECT_EQ(by_id.GetStrategy(), ray::PlacementStrategy::PACK);
  EXPECT_TRUE(Listed(group.GetID()));
}

TEST_P(PlacementGroupTest, AllStrategiesAreAccepted) {
  for (auto strategy : {ray::PlacementStrategy::PACK, ray::PlacementStrategy::SPREAD,
                        ray::PlacementStrategy::STRICT_PACK}) {
    auto group = Create("", {{{"CPU", 1}}}, strategy);
    EXPECT_TRUE(group.Wait(10));
    EXPECT_EQ(group.GetStrategy(), strategy);
  }
}

TEST_P(PlacementGroupTest, UnnamedGroupsDoNotClash) {
  auto first = Create("");
  auto second = Create("");
  EXPECT_NE(first.GetID(), second.GetID());
  EXPECT_TRUE(Listed(first.GetID()));
  EXPECT_TRUE(Listed(second.GetID()));
}

TEST_P(PlacementGroupTest, RemovedGroupIsReportedRemoved) {
  auto group = Create("removable");
  ASSERT_TRUE(group.Wait(10));
  ray::RemovePlacementGroup(group.GetID());
  EXPECT_EQ(ray::GetPlacementGroupById(group.GetID()).GetState(), ray::REMOVED);
  EXPECT_TRUE(ray::GetPlacementGroup("removable").Empty());
}

TEST_P(PlacementGroupTest, NameIsFreeAgainAfterRemoval) {
  auto first = Create("recycled");
  ray::RemovePlacementGroup(first.GetID());
  auto second = Create("recycled");
  EXPECT_NE(second.GetID(), first.GetID());
  EXPECT_EQ(ray::GetPlacementGroup("recycled").GetID(), second.GetID());
}

TEST_P(PlacementGroupTest, UnknownNameGivesAnEmptyGroup) {
  auto group = ray::GetPlacementGroup("no_such_group");
  EXPECT_TRUE(group.Empty());
  EXPECT_TRUE(group.GetID().empty());
}

TEST_P(PlacementGroupTest, DuplicateNameThrows) {
  auto first = Create("unique_group");
  EXPECT_TRUE(Throws<RayException>([] { Create("unique_group"); }, {"unique_group"}));
  EXPECT_EQ(ray::GetPlacementGroup("unique_group").GetID(), first.GetID());
}

TEST_P(PlacementGroupTest, InvalidBundlesThrow) {
  EXPECT_THROW(Create("no_bundles", {}), RayException);
  EXPECT_THROW(Create("empty_bundle", {{{"CPU", 1}}, {}}), RayException);
  for (double value : {0.0, -1.0, 1.5}) {
    EXPECT_THROW(Create("bad_value", {{{"CPU", value}}}), RayException) << value;
  }
  EXPECT_THROW(Create("empty_resource_name", {{{"", 1}}}), RayException);
  // None of them was created.
  EXPECT_TRUE(ray::GetPlacementGroup("no_bundles").Empty());
  EXPECT_TRUE(ray::GetPlacementGroup("bad_value").Empty());
}

TEST_P(PlacementGroupTest, WaitOnAnUnknownGroupThrows) {
  ray::PlacementGroup unknown(
      std::string(18, '\x07'),
      ray::PlacementGroupCreationOptions{"ghost", {{{"CPU", 1}}}, ray::PlacementStrategy::PACK});
  EXPECT_THROW(unknown.Wait(1), RayException);
}

TEST_P(PlacementGroupTest, WaitCallbackReplacesTheRuntimeQuery) {
  auto group = Create("with_callback");
  std::string seen_id;
  int seen_timeout = 0;
  group.SetWaitCallbak([&](const std::string &id, int timeout_seconds) {
    seen_id = id;
    seen_timeout = timeout_seconds;
    return false;
  });
  EXPECT_FALSE(group.Wait(7));
  EXPECT_EQ(seen_id, group.GetID());
  EXPECT_EQ(seen_timeout, 7);
}

TEST_P(PlacementGroupTest, TaskRunsInABundle) {
  auto group = Create("task_group", {{{"CPU", 1}}, {{"CPU", 1}}});
  ASSERT_TRUE(group.Wait(10));
  EXPECT_EQ(*ray::Task(GroupSquare).SetPlacementGroup(group, 0).Remote(3).Get(kTimeoutMs), 9);
  EXPECT_EQ(*ray::Task(GroupSquare).SetPlacementGroup(group, 1).Remote(4).Get(kTimeoutMs), 16);
  EXPECT_EQ(*ray::Task(GroupSquare).SetPlacementGroup(group, -1).Remote(5).Get(kTimeoutMs), 25);
}

TEST_P(PlacementGroupTest, ActorRunsInABundle) {
  auto group = Create("actor_group");
  ASSERT_TRUE(group.Wait(10));
  auto actor = ray::Actor(Station::Create).SetPlacementGroup(group, 0).Remote(6);
  EXPECT_EQ(*actor.Task(&Station::Id).Remote().Get(kTimeoutMs), 6);
}

TEST_P(PlacementGroupTest, BundleIndexOutOfRangeThrowsAtRemote) {
  auto group = Create("two_bundles", {{{"CPU", 1}}, {{"CPU", 1}}});
  EXPECT_THROW(ray::Task(GroupSquare).SetPlacementGroup(group, 2).Remote(1), RayException);
  EXPECT_THROW(ray::Task(GroupSquare).SetPlacementGroup(group, -2).Remote(1), RayException);
  EXPECT_THROW(ray::Actor(Station::Create).SetPlacementGroup(group, 2).Remote(1), RayException);
}

TEST_P(PlacementGroupTest, TaskInARemovedGroupIsUnschedulable) {
  auto group = Create("gone_group");
  ASSERT_TRUE(group.Wait(10));
  ray::RemovePlacementGroup(group.GetID());
  auto result = ray::Task(GroupSquare).SetPlacementGroup(group, 0).Remote(2);
  EXPECT_TRUE(Throws<ray::internal::TaskUnschedulableException>([&] { result.Get(kTimeoutMs); }));
}

}  // namespace
