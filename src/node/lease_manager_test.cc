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
  void MakeManager(ResourceSet total) {
    leases_ = std::make_unique<LeaseManager>(std::move(total), *pool_);
    pool_->SetExitCallback([this](const WorkerInfo &worker, const std::string &) {
      leases_->OnWorkerExit(worker.startup_token);
    });
  }

  std::future<absl::StatusOr<Lease>> Request(const ResourceSet &resources,
                                             const WorkerPool::Launch &launch,
                                             const JobID &job = JobIdFromNumber(1)) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<Lease>>>();
    auto future = promise->get_future();
    leases_->RequestLease(job, resources, launch, /*detached=*/false,
                          [promise](absl::StatusOr<Lease> lease) { promise->set_value(lease); });
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
      [&](absl::StatusOr<Lease> lease) { answered.set_value(std::move(lease)); });
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
                        /*detached=*/true, [](absl::StatusOr<Lease>) {});
  EXPECT_EQ(leases_->NumPending(), 1);  // waits (no GPU here), as any request
}

}  // namespace
}  // namespace sunray
