#include "src/node/worker_pool.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "src/common/process.h"
#include "src/node/fake_worker.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr auto kDeadline = std::chrono::seconds(10);

using testing::FakeWorker;

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sunray-pool-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    pool_.reset();
    fs::remove_all(directory_);
  }

  void MakePool(int soft_limit, milliseconds register_timeout = milliseconds(30000)) {
    pool_ = std::make_unique<WorkerPool>(
        WorkerPool::Options{directory_, soft_limit, register_timeout, milliseconds(2000)});
  }

  pid_t RegisterWhenStarted(int64_t token) {
    return testing::RegisterWhenStarted(*pool_, directory_, token);
  }

  // Pops a worker and returns a future for the result.
  std::future<absl::StatusOr<WorkerInfo>> Pop(const std::string &job,
                                              const WorkerPool::Launch &launch) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<WorkerInfo>>>();
    auto future = promise->get_future();
    pool_->PopWorker(job, launch, [promise](absl::StatusOr<WorkerInfo> worker) {
      promise->set_value(std::move(worker));
    });
    return future;
  }

  std::string directory_;
  std::unique_ptr<WorkerPool> pool_;
};

TEST_F(WorkerPoolTest, StartsAWorkerHandsItOutOnceRegisteredAndCapturesItsOutput) {
  MakePool(2);
  auto popped = Pop("job1", FakeWorker(directory_));
  const pid_t pid = RegisterWhenStarted(1);
  ASSERT_NE(pid, 0);
  ASSERT_EQ(popped.wait_for(kDeadline), std::future_status::ready);
  auto worker = popped.get();
  ASSERT_TRUE(worker.ok()) << worker.status();
  EXPECT_EQ(worker->pid, pid);
  EXPECT_EQ(worker->address, "addr-1");
  std::ifstream log(worker->log_path);
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line, "hello from worker 1");
}

TEST_F(WorkerPoolTest, AReturnedWorkerIsReusedForTheSameJobOnly) {
  MakePool(4);
  auto first = Pop("job1", FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto worker = first.get();
  ASSERT_TRUE(worker.ok());
  pool_->PushWorker(worker->startup_token);
  auto again = Pop("job1", FakeWorker(directory_));
  ASSERT_EQ(again.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(again.get()->pid, worker->pid);
  EXPECT_EQ(pool_->NumProcesses(), 1);
  auto other_job = Pop("job2", FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_EQ(other_job.wait_for(kDeadline), std::future_status::ready);
  EXPECT_NE(other_job.get()->pid, worker->pid);
  EXPECT_EQ(pool_->NumProcesses(), 2);
}

TEST_F(WorkerPoolTest, SoftLimitQueuesRequestsUntilAWorkerIsFreeOrBlocked) {
  MakePool(1);
  auto first = Pop("job", FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto busy = first.get();
  ASSERT_TRUE(busy.ok());
  auto second = Pop("job", FakeWorker(directory_));
  EXPECT_EQ(second.wait_for(milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(pool_->NumProcesses(), 1);  // no second process beyond the limit
  // A worker blocked in Get does not count: a second one starts.
  pool_->SetBlocked(busy->startup_token, true);
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_EQ(second.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(second.get().ok());
}

TEST_F(WorkerPoolTest, AWorkerThatExitsBeforeRegisteringFailsItsRequestWithTheLogPath) {
  MakePool(1);
  auto popped = Pop("job", {{"/bin/sh", "-c", "echo cannot start; exit 3"}, {}});
  ASSERT_EQ(popped.wait_for(kDeadline), std::future_status::ready);
  auto worker = popped.get();
  ASSERT_TRUE(absl::IsUnavailable(worker.status())) << worker.status();
  EXPECT_NE(worker.status().message().find("exited with code 3"), std::string::npos);
  EXPECT_NE(worker.status().message().find("worker-1.out"), std::string::npos);
}

TEST_F(WorkerPoolTest, AWorkerThatNeverRegistersIsKilledAfterTheTimeout) {
  MakePool(1, milliseconds(200));
  auto popped = Pop("job", FakeWorker(directory_));
  ASSERT_EQ(popped.wait_for(kDeadline), std::future_status::ready);
  auto worker = popped.get();
  ASSERT_FALSE(worker.ok());
  EXPECT_NE(worker.status().message().find("signal 9"), std::string::npos) << worker.status();
}

TEST_F(WorkerPoolTest, RegistrationWithAnUnknownTokenOrWrongPidIsRefused) {
  MakePool(1);
  EXPECT_TRUE(absl::IsNotFound(pool_->RegisterWorker(99, 1234, "x")));
  auto popped = Pop("job", FakeWorker(directory_));
  const std::string marker = directory_ + "/started-1";
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_TRUE(absl::IsPermissionDenied(pool_->RegisterWorker(1, 1, "x")));
}

TEST_F(WorkerPoolTest, StopKillsEveryWorkerAndFailsWaitingRequests) {
  MakePool(1);
  auto first = Pop("job", FakeWorker(directory_));
  const pid_t pid = RegisterWhenStarted(1);
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(first.get().ok());
  auto waiting = Pop("job", FakeWorker(directory_));
  pool_->Stop();
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_EQ(pool_->NumProcesses(), 0);
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsUnavailable(waiting.get().status()));
}

}  // namespace
}  // namespace sunray
