#include "src/node/lease_manager.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <future>
#include <thread>

#include "src/common/process.h"
#include "src/node/fake_worker.h"
#include "src/testing/eventually.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;
constexpr auto kDeadline = Deadline(std::chrono::seconds(10));

// The lease in an answer; a spillback is an error here (one node only).
absl::StatusOr<Lease> AsLease(absl::StatusOr<LeaseManager::Answer> answer) {
  if (!answer.ok()) return answer.status();
  if (const Lease *lease = std::get_if<Lease>(&*answer)) return *lease;
  return absl::InternalError("sent on to " + std::get<Spillback>(*answer).address);
}

class LeaseManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sunray-lease-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
    pool_ = std::make_unique<WorkerPool>(
        WorkerPool::Options{directory_, 8, milliseconds(30000), milliseconds(2000)});
  }
  void TearDown() override {
    pool_->Stop();  // its exit callback uses leases_
    leases_.reset();
    pool_.reset();
    std::filesystem::remove_all(directory_);
  }

  // As the node daemon wires them: a worker's exit ends its lease.
  void MakeManager(ResourceSet total, LeaseManager::Options options = {}) {
    leases_ = std::make_unique<LeaseManager>(std::move(total), *pool_, std::move(options));
    pool_->SetExitCallback([this](const WorkerInfo &worker, const std::string &) {
      leases_->OnWorkerExit(worker.startup_token);
    });
  }

  // Asks with `scheduling`; the answer as it comes (lease or spillback).
  std::future<absl::StatusOr<LeaseManager::Answer>> Ask(
      const ResourceSet &resources, const LeaseManager::Scheduling &scheduling = {}) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<LeaseManager::Answer>>>();
    auto future = promise->get_future();
    leases_->RequestLease(JobIdFromNumber(1), resources, testing::FakeWorker(directory_),
                          /*detached=*/false, scheduling,
                          [promise](absl::StatusOr<LeaseManager::Answer> answer) {
                            promise->set_value(std::move(answer));
                          });
    return future;
  }

  std::future<absl::StatusOr<Lease>> Request(const ResourceSet &resources,
                                             const WorkerPool::Launch &launch,
                                             const JobID &job = JobIdFromNumber(1)) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<Lease>>>();
    auto future = promise->get_future();
    leases_->RequestLease(job, resources, launch, /*detached=*/false,
                          [promise](absl::StatusOr<LeaseManager::Answer> answer) {
                            promise->set_value(AsLease(std::move(answer)));
                          });
    return future;
  }

  // Leases one CPU on a fake worker; returns the lease and sets `pid`.
  Lease LeaseOneCpu(pid_t *pid) {
    auto granted = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
    *pid = testing::RegisterWhenStarted(*pool_, directory_, next_token_++);
    EXPECT_NE(*pid, 0);
    auto lease = granted.get();
    EXPECT_TRUE(lease.ok()) << lease.status();
    return lease.ok() ? *lease : Lease{};
  }

  std::string directory_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<LeaseManager> leases_;
  int64_t next_token_ = 1;
};

TEST_F(LeaseManagerTest, ACancelledRequestStopsWaitingAndIsAnsweredCancelled) {
  MakeManager({{"CPU", kResourceUnit}});
  std::promise<absl::StatusOr<Lease>> answered;
  const LeaseManager::RequestId id = leases_->RequestLease(
      JobIdFromNumber(1), {{"GPU", kResourceUnit}}, testing::FakeWorker(directory_), false,
      [&](absl::StatusOr<LeaseManager::Answer> answer) {
        answered.set_value(AsLease(std::move(answer)));
      });
  EXPECT_EQ(leases_->NumPending(), 1);
  EXPECT_EQ(leases_->NumInfeasible(), 1);
  EXPECT_TRUE(leases_->CancelRequest(id));
  EXPECT_EQ(leases_->NumPending(), 0);
  EXPECT_EQ(leases_->NumInfeasible(), 0);
  auto lease = answered.get_future().get();
  EXPECT_TRUE(absl::IsCancelled(lease.status())) << lease.status();
  EXPECT_FALSE(leases_->CancelRequest(id));  // answered already
}

TEST_F(LeaseManagerTest, GrantsALeaseAndReservesItsResourcesUntilReturned) {
  MakeManager({{"CPU", 2 * kResourceUnit}});
  auto granted = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 1), 0);
  ASSERT_EQ(granted.wait_for(kDeadline), std::future_status::ready);
  auto lease = granted.get();
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->worker.address, "addr-1");
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
  ASSERT_TRUE(leases_->ReturnLease(lease->lease_id).ok());
  EXPECT_EQ(leases_->Available().at("CPU"), 2 * kResourceUnit);
}

TEST_F(LeaseManagerTest, ARequestBeyondFreeResourcesWaitsForAReturnAndReusesTheWorker) {
  MakeManager({{"CPU", kResourceUnit}});
  auto first = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 1), 0);
  auto lease = first.get();
  ASSERT_TRUE(lease.ok());
  auto second = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
  EXPECT_EQ(second.wait_for(milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(leases_->NumPending(), 1);
  EXPECT_EQ(leases_->NumInfeasible(), 0);
  ASSERT_TRUE(leases_->ReturnLease(lease->lease_id).ok());
  ASSERT_EQ(second.wait_for(kDeadline), std::future_status::ready);
  auto reused = second.get();
  ASSERT_TRUE(reused.ok());
  EXPECT_EQ(reused->worker.pid, lease->worker.pid);
}

TEST_F(LeaseManagerTest, ABlockedWorkerLendsItsCpuUntilItWakes) {
  MakeManager({{"CPU", kResourceUnit}, {"GPU", kResourceUnit}});
  auto first =
      Request({{"CPU", kResourceUnit}, {"GPU", kResourceUnit}}, testing::FakeWorker(directory_));
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 1), 0);
  auto outer = first.get();
  ASSERT_TRUE(outer.ok());
  // The outer task waits for a nested one, which needs the CPU it holds.
  auto nested = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
  EXPECT_EQ(nested.wait_for(milliseconds(100)), std::future_status::timeout);
  leases_->SetBlocked(outer->lease_id, true);
  EXPECT_EQ(leases_->Available().at("GPU"), 0);  // only CPU is lent
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 2), 0);
  ASSERT_EQ(nested.wait_for(kDeadline), std::future_status::ready);
  auto inner = nested.get();
  ASSERT_TRUE(inner.ok());
  // Waking takes the CPU back even while the nested lease still holds it.
  leases_->SetBlocked(outer->lease_id, false);
  EXPECT_EQ(leases_->Available().at("CPU"), -kResourceUnit);
  ASSERT_TRUE(leases_->ReturnLease(inner->lease_id).ok());
  EXPECT_EQ(leases_->Available().at("CPU"), 0);
  // Returned while blocked, a lease gives back only what it did not lend.
  leases_->SetBlocked(outer->lease_id, true);
  ASSERT_TRUE(leases_->ReturnLease(outer->lease_id).ok());
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
  EXPECT_EQ(leases_->Available().at("GPU"), kResourceUnit);
}

TEST_F(LeaseManagerTest, AnInfeasibleRequestIsCountedAndDoesNotBlockOthers) {
  MakeManager({{"CPU", kResourceUnit}});
  auto impossible = Request({{"GPU", kResourceUnit}}, testing::FakeWorker(directory_));
  auto possible = Request({{"CPU", kResourceUnit / 2}}, testing::FakeWorker(directory_));
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 1), 0);
  ASSERT_EQ(possible.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(possible.get().ok());
  EXPECT_EQ(impossible.wait_for(milliseconds(50)), std::future_status::timeout);
  EXPECT_EQ(leases_->NumInfeasible(), 1);
  EXPECT_EQ(leases_->NumPending(), 1);
}

TEST_F(LeaseManagerTest, AWorkerThatFailsToStartReleasesTheResources) {
  MakeManager({{"CPU", kResourceUnit}});
  auto failed = Request({{"CPU", kResourceUnit}}, {{"/bin/sh", "-c", "exit 4"}, {}});
  ASSERT_EQ(failed.wait_for(kDeadline), std::future_status::ready);
  EXPECT_FALSE(failed.get().ok());
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
}

TEST_F(LeaseManagerTest, StopFailsWaitingAndLaterRequests) {
  MakeManager({{"CPU", kResourceUnit}});
  auto waiting = Request({{"GPU", kResourceUnit}}, testing::FakeWorker(directory_));
  leases_->Stop();
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsUnavailable(waiting.get().status()));
  auto later = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
  ASSERT_EQ(later.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsUnavailable(later.get().status()));
}

TEST_F(LeaseManagerTest, ReturningAnUnknownLeaseIsAnError) {
  MakeManager({{"CPU", kResourceUnit}});
  EXPECT_TRUE(absl::IsNotFound(leases_->ReturnLease(42)));
}

TEST_F(LeaseManagerTest, AWorkerThatDiesEndsItsLeaseAndFreesItsResources) {
  MakeManager({{"CPU", kResourceUnit}});
  pid_t pid = 0;
  const Lease lease = LeaseOneCpu(&pid);
  auto waiting = Request({{"CPU", kResourceUnit}}, testing::FakeWorker(directory_));
  kill(pid, SIGKILL);
  // The freed CPU goes to the waiting request, on a new worker.
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 2), 0);
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(waiting.get().ok());
  EXPECT_TRUE(absl::IsNotFound(leases_->ReturnLease(lease.lease_id)));
}

TEST_F(LeaseManagerTest, ReturningADeadWorkerKillsItInsteadOfReusingIt) {
  MakeManager({{"CPU", kResourceUnit}});
  pid_t pid = 0;
  const Lease lease = LeaseOneCpu(&pid);
  ASSERT_TRUE(leases_->ReturnLease(lease.lease_id, /*worker_dead=*/true).ok());
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
  EXPECT_TRUE(Eventually([&] { return pool_->NumProcesses() == 0; }));
  EXPECT_FALSE(ProcessAlive(pid));
}

TEST_F(LeaseManagerTest, CancelJobFailsTheJobsWaitingRequestsOnly) {
  MakeManager({{"CPU", kResourceUnit}});
  auto impossible =
      Request({{"GPU", kResourceUnit}}, testing::FakeWorker(directory_), JobIdFromNumber(1));
  auto other =
      Request({{"GPU", kResourceUnit}}, testing::FakeWorker(directory_), JobIdFromNumber(2));
  EXPECT_EQ(leases_->CancelJob(JobIdFromNumber(1)), 1);
  ASSERT_EQ(impossible.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsCancelled(impossible.get().status()));
  EXPECT_EQ(other.wait_for(milliseconds(0)), std::future_status::timeout);
  EXPECT_EQ(leases_->NumPending(), 1);
}

// A request sent before its driver died can reach the node after the node
// saw the death (with pidfds, within microseconds of it): it is refused, not
// left waiting forever. Detached actors' requests still go through.
TEST_F(LeaseManagerTest, ARequestForAFinishedJobIsCancelledUnlessDetached) {
  MakeManager({{"CPU", kResourceUnit}});
  EXPECT_EQ(leases_->CancelJob(JobIdFromNumber(1)), 0);
  auto late =
      Request({{"GPU", kResourceUnit}}, testing::FakeWorker(directory_), JobIdFromNumber(1));
  ASSERT_EQ(late.wait_for(kDeadline), std::future_status::ready);
  const auto refused = late.get();
  EXPECT_TRUE(absl::IsCancelled(refused.status())) << refused.status();
  EXPECT_NE(refused.status().message().find("the job 01000000 finished"), std::string::npos);
  leases_->RequestLease(JobIdFromNumber(1), {{"GPU", kResourceUnit}},
                        testing::FakeWorker(directory_),
                        /*detached=*/true, [](absl::StatusOr<LeaseManager::Answer>) {});
  EXPECT_EQ(leases_->NumPending(), 1);  // waits (no GPU here), as any request
}

// --- Across nodes: the cluster view, spillbacks, strategies ---------------

NodeView OtherNode(ResourceSet total, Labels labels = {}) {
  NodeView node;
  node.id = NodeID::FromRandom();
  node.address = "10.0.0.2:7000";
  node.available = total;
  node.total = std::move(total);
  node.labels = std::move(labels);
  return node;
}

// The spillback in a ready answer, or a failure.
::testing::AssertionResult SentTo(std::future<absl::StatusOr<LeaseManager::Answer>> &answer,
                                  const NodeView &node) {
  if (answer.wait_for(kDeadline) != std::future_status::ready) {
    return ::testing::AssertionFailure() << "no answer";
  }
  auto got = answer.get();
  if (!got.ok()) return ::testing::AssertionFailure() << got.status();
  const auto *spillback = std::get_if<Spillback>(&*got);
  if (spillback == nullptr) return ::testing::AssertionFailure() << "granted here";
  if (spillback->node_id != node.id || spillback->address != node.address) {
    return ::testing::AssertionFailure() << "sent to " << spillback->address;
  }
  return ::testing::AssertionSuccess();
}

TEST_F(LeaseManagerTest, ARequestOnlyAnotherNodeCanFitIsSentThere) {
  MakeManager({{"CPU", kResourceUnit}}, {NodeID::FromRandom(), {}, nullptr});
  const NodeView other = OtherNode({{"CPU", kResourceUnit}, {"accel", kResourceUnit}});
  leases_->UpdateClusterView({other});
  auto answer = Ask({{"accel", kResourceUnit}});
  EXPECT_TRUE(SentTo(answer, other));
  EXPECT_EQ(leases_->NumPending(), 0);
  // Without such a node it waits here, infeasible, until one joins.
  leases_->UpdateClusterView({});
  auto waiting = Ask({{"accel", kResourceUnit}});
  EXPECT_EQ(leases_->NumInfeasible(), 1);
  leases_->UpdateClusterView({other});
  EXPECT_TRUE(SentTo(waiting, other));
  EXPECT_EQ(leases_->NumInfeasible(), 0);
}

TEST_F(LeaseManagerTest, AWaitingRequestGoesWhereAViewShowsRoom) {
  MakeManager({{"CPU", kResourceUnit}}, {NodeID::FromRandom(), {}, nullptr});
  pid_t pid = 0;
  const Lease held = LeaseOneCpu(&pid);
  auto waiting = Ask({{"CPU", kResourceUnit}});
  EXPECT_EQ(leases_->NumPending(), 1);  // this node fits it, not now; no other known
  NodeView other = OtherNode({{"CPU", kResourceUnit}});
  other.available["CPU"] = 0;
  leases_->UpdateClusterView({other});
  EXPECT_EQ(leases_->NumPending(), 1);  // the other is busy too
  other.available["CPU"] = kResourceUnit;
  leases_->UpdateClusterView({other});
  EXPECT_TRUE(SentTo(waiting, other));
  // What was sent there is off its free resources, in this view and the
  // next ones (until kSentHold): a second request waits here rather than
  // following.
  leases_->UpdateClusterView({other});
  auto second = Ask({{"CPU", kResourceUnit}});
  EXPECT_EQ(leases_->NumPending(), 1);
  EXPECT_TRUE(leases_->ReturnLease(held.lease_id).ok());
  ASSERT_EQ(second.wait_for(kDeadline), std::future_status::ready);  // the worker is reused
  auto granted = second.get();
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_TRUE(std::holds_alternative<Lease>(*granted));
}

TEST_F(LeaseManagerTest, ARequestSentHereStaysIfThisNodeCanFitIt) {
  MakeManager({{"CPU", kResourceUnit}}, {NodeID::FromRandom(), {}, nullptr});
  pid_t pid = 0;
  LeaseOneCpu(&pid);
  leases_->UpdateClusterView({OtherNode({{"CPU", 4 * kResourceUnit}})});
  auto stays = Ask({{"CPU", kResourceUnit}}, {{}, /*spillback_count=*/1});
  EXPECT_EQ(leases_->NumPending(), 1);
  EXPECT_EQ(stays.wait_for(milliseconds(0)), std::future_status::timeout);
  // One this node can never fit goes on, until sent on too often.
  const NodeView accel = OtherNode({{"accel", kResourceUnit}});
  leases_->UpdateClusterView({accel});
  auto on = Ask({{"accel", kResourceUnit}}, {{}, 1});
  EXPECT_TRUE(SentTo(on, accel));
  auto stuck = Ask({{"accel", kResourceUnit}}, {{}, kMaxSpillbacks});
  EXPECT_EQ(leases_->NumInfeasible(), 1);
}

TEST_F(LeaseManagerTest, HardAffinityToADeadNodeFailsAndToAnUnknownOneOnceANewerViewLacksIt) {
  MakeManager({{"CPU", kResourceUnit}}, {NodeID::FromRandom(), {}, nullptr});
  NodeView dead = OtherNode({{"CPU", kResourceUnit}});
  dead.alive = false;
  leases_->UpdateClusterView({dead});
  LeaseManager::Scheduling affinity;
  affinity.strategy.set_kind(proto::SchedulingStrategy::NODE_AFFINITY);
  affinity.strategy.set_node_id(dead.id.Binary());
  auto failed = Ask({{"CPU", kResourceUnit}}, affinity);
  ASSERT_EQ(failed.wait_for(kDeadline), std::future_status::ready);
  auto answer = failed.get();
  EXPECT_TRUE(absl::IsFailedPrecondition(answer.status())) << answer.status();
  EXPECT_NE(answer.status().message().find(dead.id.Hex() + " (hard affinity), which is dead"),
            std::string::npos);

  const NodeID unknown = NodeID::FromRandom();
  affinity.strategy.set_node_id(unknown.Binary());
  auto later = Ask({{"CPU", kResourceUnit}}, affinity);
  EXPECT_EQ(leases_->NumPending(), 1);  // the view may just not have it yet
  leases_->UpdateClusterView({dead});
  EXPECT_EQ(leases_->NumPending(), 1);  // nor the next (it may have been on its way)
  leases_->UpdateClusterView({dead});
  ASSERT_EQ(later.wait_for(kDeadline), std::future_status::ready);
  answer = later.get();
  EXPECT_TRUE(absl::IsFailedPrecondition(answer.status())) << answer.status();
  EXPECT_NE(answer.status().message().find("not in this cluster"), std::string::npos);

  // Soft affinity to the dead node runs anywhere: another node here.
  const NodeView alive = OtherNode({{"CPU", 2 * kResourceUnit}});
  leases_->UpdateClusterView({dead, alive});
  pid_t pid = 0;
  LeaseOneCpu(&pid);
  affinity.strategy.set_node_id(dead.id.Binary());
  affinity.strategy.set_soft(true);
  auto soft = Ask({{"CPU", kResourceUnit}}, affinity);
  EXPECT_TRUE(SentTo(soft, alive));
}

TEST_F(LeaseManagerTest, ALabelSelectorSendsTheRequestToAMatchingNode) {
  MakeManager({{"CPU", kResourceUnit}}, {NodeID::FromRandom(), {{"zone", "a"}}, nullptr});
  const NodeView b = OtherNode({{"CPU", kResourceUnit}}, {{"zone", "b"}});
  leases_->UpdateClusterView({b});
  LeaseManager::Scheduling zone_b;
  proto::LabelConstraint *term = zone_b.strategy.add_label_selector();
  term->set_key("zone");
  term->add_values("b");
  auto answer = Ask({{"CPU", kResourceUnit}}, zone_b);
  EXPECT_TRUE(SentTo(answer, b));
  term->set_values(0, "c");  // no such node: infeasible, waits
  auto waits = Ask({{"CPU", kResourceUnit}}, zone_b);
  EXPECT_EQ(leases_->NumInfeasible(), 1);
}

TEST_F(LeaseManagerTest, BundlesArePreparedThenCommittedAsResourcesOfTheirOwn) {
  MakeManager({{"CPU", 2 * kResourceUnit}});
  const PlacementGroupID group = PlacementGroupID::FromRandom();
  // Too big: refused naming what is short; nothing taken.
  absl::Status refused = leases_->PrepareBundles(group, {{0, {{"CPU", 3 * kResourceUnit}}}});
  EXPECT_TRUE(absl::IsResourceExhausted(refused)) << refused;
  EXPECT_EQ(leases_->Available().at("CPU"), 2 * kResourceUnit);

  ASSERT_TRUE(leases_->PrepareBundles(group, {{0, {{"CPU", kResourceUnit}}}}).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(leases_->PrepareBundles(group, {{1, {{"CPU", 1}}}})));
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
  // A task in the bundle waits until it is committed.
  auto in_bundle = Request(ResourcesInBundle({{"CPU", kResourceUnit}}, group, 0),
                           testing::FakeWorker(directory_));
  EXPECT_EQ(in_bundle.wait_for(milliseconds(50)), std::future_status::timeout);
  ASSERT_TRUE(leases_->CommitBundles(group).ok());
  EXPECT_EQ(leases_->Total().at(BundleResourceName("CPU", group, 0)), kResourceUnit);
  ASSERT_NE(testing::RegisterWhenStarted(*pool_, directory_, 1), 0);
  ASSERT_EQ(in_bundle.wait_for(kDeadline), std::future_status::ready);
  auto lease = in_bundle.get();
  ASSERT_TRUE(lease.ok()) << lease.status();
  // It used the bundle's CPU, not the free one.
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
  ASSERT_TRUE(leases_->ReturnLease(lease->lease_id).ok());
  EXPECT_EQ(leases_->Available().at(BundleResourceName("CPU", group, 0)), kResourceUnit);
}

TEST_F(LeaseManagerTest, ReturningARemovedGroupStopsItsWorkersAndFailsItsRequests) {
  MakeManager({{"CPU", 2 * kResourceUnit}});
  const PlacementGroupID group = PlacementGroupID::FromRandom();
  ASSERT_TRUE(leases_->PrepareBundles(group, {{0, {{"CPU", kResourceUnit}}}}).ok());
  ASSERT_TRUE(leases_->CommitBundles(group).ok());
  auto running = Request(ResourcesInBundle({{"CPU", kResourceUnit}}, group, 0),
                         testing::FakeWorker(directory_));
  const pid_t pid = testing::RegisterWhenStarted(*pool_, directory_, 1);
  ASSERT_NE(pid, 0);
  ASSERT_EQ(running.wait_for(kDeadline), std::future_status::ready);
  auto lease = running.get();
  ASSERT_TRUE(lease.ok()) << lease.status();
  auto waiting = Request(ResourcesInBundle({{"CPU", kResourceUnit}}, group, 0),
                         testing::FakeWorker(directory_));
  EXPECT_EQ(waiting.wait_for(milliseconds(50)), std::future_status::timeout);

  leases_->ReturnBundles(group, /*removed=*/true);
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  auto failed = waiting.get();
  EXPECT_TRUE(absl::IsFailedPrecondition(failed.status())) << failed.status();
  EXPECT_NE(failed.status().message().find("was removed"), std::string::npos);
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(pid); }));
  // Everything is back; the bundle's own resources are gone.
  EXPECT_EQ(leases_->Available().at("CPU"), 2 * kResourceUnit);
  EXPECT_EQ(leases_->Total().count(BundleResourceName("CPU", group, 0)), 0u);
  EXPECT_TRUE(absl::IsNotFound(leases_->ReturnLease(lease->lease_id)));
  // Later requests for it fail too, and it cannot come back.
  auto later = Request(ResourcesInBundle({}, group, -1), testing::FakeWorker(directory_));
  ASSERT_EQ(later.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsFailedPrecondition(later.get().status()));
  EXPECT_FALSE(leases_->PrepareBundles(group, {{0, {{"CPU", 1}}}}).ok());
}

TEST_F(LeaseManagerTest, ARolledBackBundleGivesItsResourcesBack) {
  MakeManager({{"CPU", kResourceUnit}});
  const PlacementGroupID group = PlacementGroupID::FromRandom();
  ASSERT_TRUE(leases_->PrepareBundles(group, {{0, {{"CPU", kResourceUnit}}}}).ok());
  EXPECT_EQ(leases_->Available().at("CPU"), 0);
  leases_->ReturnBundles(group, /*removed=*/false);
  EXPECT_EQ(leases_->Available().at("CPU"), kResourceUnit);
  // Not removed: it may be prepared again.
  EXPECT_TRUE(leases_->PrepareBundles(group, {{0, {{"CPU", kResourceUnit}}}}).ok());
}

}  // namespace
}  // namespace sunray
