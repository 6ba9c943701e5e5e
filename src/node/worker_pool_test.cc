#include "src/node/worker_pool.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "src/common/process.h"
#include "src/node/fake_worker.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;
namespace fs = std::filesystem;

constexpr auto kDeadline = std::chrono::seconds(10);

using testing::FakeWorker;
using testing::Register;

class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sunray-pool-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
  }
  void TearDown() override {
    if (pool_ != nullptr) pool_->Stop();  // exit callbacks end before exits_ goes
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

  // Records every worker exit the pool reports.
  void RecordExits() {
    pool_->SetExitCallback([this](const WorkerInfo &worker, const std::string &how) {
      absl::MutexLock lock(&mu_);
      exits_[worker.startup_token] = how;
    });
  }
  // How the worker with `token` ended, once the pool reported it (10 s at
  // most; empty if it did not).
  std::string WaitForExit(int64_t token) {
    absl::MutexLock lock(&mu_);
    auto reported = [this, token] {
      mu_.AssertHeld();
      return exits_.count(token) > 0;
    };
    if (!mu_.AwaitWithTimeout(absl::Condition(&reported), absl::FromChrono(kDeadline))) return "";
    return exits_[token];
  }
  bool Exited(int64_t token) {
    absl::MutexLock lock(&mu_);
    return exits_.count(token) > 0;
  }

  // Pops a worker and returns a future for the result.
  std::future<absl::StatusOr<WorkerInfo>> Pop(const JobID &job, const WorkerPool::Launch &launch,
                                              bool detached = false, bool uses_cpu = true) {
    auto promise = std::make_shared<std::promise<absl::StatusOr<WorkerInfo>>>();
    auto future = promise->get_future();
    pool_->PopWorker(job, launch, detached, uses_cpu, [promise](absl::StatusOr<WorkerInfo> worker) {
      promise->set_value(std::move(worker));
    });
    return future;
  }

  std::string directory_;
  std::unique_ptr<WorkerPool> pool_;
  absl::Mutex mu_;
  std::map<int64_t, std::string> exits_ ABSL_GUARDED_BY(mu_);  // token -> how it ended
};

TEST_F(WorkerPoolTest, StartsAWorkerHandsItOutOnceRegisteredAndCapturesItsOutput) {
  MakePool(2);
  auto popped = Pop(JobIdFromNumber(1), FakeWorker(directory_));
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

// Regression: the pool forked on the caller's thread, and the kernel sends a
// child's parent-death signal when the thread that forked it ends (not the
// process): a worker started from a gRPC handler thread that gRPC later ended
// got SIGTERM. The pool's own thread forks now.
TEST_F(WorkerPoolTest, AWorkerOutlivesTheThreadThatAskedForIt) {
  MakePool(1);
  RecordExits();
  std::future<absl::StatusOr<WorkerInfo>> popped;
  std::thread asker([&] { popped = Pop(JobIdFromNumber(1), FakeWorker(directory_)); });
  asker.join();  // the thread is gone before its worker even registers
  const pid_t pid = RegisterWhenStarted(1);
  ASSERT_NE(pid, 0);
  ASSERT_EQ(popped.wait_for(kDeadline), std::future_status::ready);
  ASSERT_TRUE(popped.get().ok());
  // A parent-death signal goes out as the thread ends: with the old pool the
  // worker was dead before it could register (the assertion above).
  EXPECT_FALSE(Exited(1)) << "worker 1 " << WaitForExit(1);
  EXPECT_TRUE(ProcessAlive(pid));
}

TEST_F(WorkerPoolTest, AReturnedWorkerIsReusedForTheSameJobOnly) {
  MakePool(4);
  auto first = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto worker = first.get();
  ASSERT_TRUE(worker.ok());
  pool_->PushWorker(worker->startup_token);
  auto again = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_EQ(again.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(again.get()->pid, worker->pid);
  EXPECT_EQ(pool_->NumProcesses(), 1);
  auto other_job = Pop(JobIdFromNumber(2), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_EQ(other_job.wait_for(kDeadline), std::future_status::ready);
  EXPECT_NE(other_job.get()->pid, worker->pid);
  EXPECT_EQ(pool_->NumProcesses(), 2);
}

TEST_F(WorkerPoolTest, AnIdleWorkerIsReusedOnlyWithTheSameEnvironment) {
  MakePool(4);
  WorkerPool::Launch with_env = FakeWorker(directory_);
  with_env.env.push_back("TASK_VAR=1");
  auto first = Pop(JobIdFromNumber(1), with_env);
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto worker = first.get();
  ASSERT_TRUE(worker.ok());
  pool_->PushWorker(worker->startup_token);
  // Another environment: a new process.
  auto plain = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_EQ(plain.wait_for(kDeadline), std::future_status::ready);
  EXPECT_NE(plain.get()->pid, worker->pid);
  // The same one: the idle worker.
  auto again = Pop(JobIdFromNumber(1), with_env);
  ASSERT_EQ(again.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(again.get()->pid, worker->pid);
}

TEST_F(WorkerPoolTest, SoftLimitQueuesRequestsUntilAWorkerIsFreeOrBlocked) {
  MakePool(1);
  auto first = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto busy = first.get();
  ASSERT_TRUE(busy.ok());
  auto second = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  EXPECT_EQ(second.wait_for(milliseconds(100)), std::future_status::timeout);
  EXPECT_EQ(pool_->NumProcesses(), 1);  // no second process beyond the limit
  // A worker blocked in Get does not count: a second one starts.
  pool_->SetBlocked(busy->startup_token, true);
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_EQ(second.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(second.get().ok());
}

TEST_F(WorkerPoolTest, WorkersWithoutCpuDoNotCountAgainstTheSoftLimit) {
  MakePool(1);
  // Two actor-style workers (leased without CPU) start beside each other...
  auto actor1 = Pop(JobIdFromNumber(1), FakeWorker(directory_), false, /*uses_cpu=*/false);
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto actor2 = Pop(JobIdFromNumber(1), FakeWorker(directory_), false, /*uses_cpu=*/false);
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_TRUE(actor1.get().ok());
  ASSERT_TRUE(actor2.get().ok());
  // ...and a CPU task still gets the one slot.
  auto task = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(3), 0);
  ASSERT_EQ(task.wait_for(kDeadline), std::future_status::ready);
  auto worker = task.get();
  ASSERT_TRUE(worker.ok());
  // A second CPU request waits, but one without CPU behind it does not.
  auto waiting = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  auto actor3 = Pop(JobIdFromNumber(1), FakeWorker(directory_), false, /*uses_cpu=*/false);
  ASSERT_NE(RegisterWhenStarted(4), 0);
  ASSERT_EQ(actor3.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(waiting.wait_for(milliseconds(100)), std::future_status::timeout);
  pool_->PushWorker(worker->startup_token);
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(waiting.get()->pid, worker->pid);
}

// Regression: the driver only heard that the worker "exited with status
// 127"; why (here: a missing shared library) was in a log it never saw.
TEST_F(WorkerPoolTest, AWorkerThatExitsBeforeRegisteringFailsItsRequestWithItsLogsEnd) {
  MakePool(1);
  auto popped =
      Pop(JobIdFromNumber(1), {{"/bin/sh", "-c",
                                "echo starting; echo 'libsunray.so.0: cannot open shared object "
                                "file' >&2; exit 127"},
                               {}});
  ASSERT_EQ(popped.wait_for(kDeadline), std::future_status::ready);
  auto worker = popped.get();
  ASSERT_TRUE(absl::IsUnavailable(worker.status())) << worker.status();
  const std::string message(worker.status().message());
  EXPECT_NE(message.find("exited with status 127"), std::string::npos) << message;
  EXPECT_NE(message.find("worker-1.out"), std::string::npos) << message;
  EXPECT_NE(message.find("starting\nlibsunray.so.0: cannot open shared object file"),
            std::string::npos)
      << message;
}

TEST_F(WorkerPoolTest, AWorkerThatNeverRegistersIsKilledAfterTheTimeout) {
  MakePool(1, milliseconds(200));
  auto popped = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_EQ(popped.wait_for(kDeadline), std::future_status::ready);
  auto worker = popped.get();
  ASSERT_FALSE(worker.ok());
  EXPECT_NE(worker.status().message().find("signal 9"), std::string::npos) << worker.status();
}

TEST_F(WorkerPoolTest, RegistrationWithAnUnknownTokenOrWrongPidIsRefused) {
  MakePool(1);
  EXPECT_TRUE(absl::IsNotFound(Register(*pool_, 99, 1234, "x", "y")));
  auto popped = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  const std::string marker = directory_ + "/started-1";
  const auto deadline = std::chrono::steady_clock::now() + kDeadline;
  while (!fs::exists(marker) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(2));
  }
  EXPECT_TRUE(absl::IsPermissionDenied(Register(*pool_, 1, 1, "x", "y")));
}

TEST_F(WorkerPoolTest, StopKillsEveryWorkerAndFailsWaitingRequests) {
  MakePool(1);
  auto first = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  const pid_t pid = RegisterWhenStarted(1);
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(first.get().ok());
  auto waiting = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  pool_->Stop();
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_EQ(pool_->NumProcesses(), 0);
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsUnavailable(waiting.get().status()));
}

TEST_F(WorkerPoolTest, ARegisteredWorkerThatExitsIsReportedWithHowItEnded) {
  MakePool(2);
  RecordExits();
  auto popped = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  const pid_t pid = RegisterWhenStarted(1);
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(popped.get().ok());
  kill(pid, SIGKILL);
  EXPECT_EQ(WaitForExit(1), "killed by signal 9");
  EXPECT_EQ(pool_->NumProcesses(), 0);
}

// A fake worker that ignores SIGTERM (an ignored signal stays ignored
// across exec).
WorkerPool::Launch StubbornWorker(const std::string &directory) {
  WorkerPool::Launch launch = FakeWorker(directory);
  launch.argv.back() = "trap '' TERM; " + launch.argv.back();
  return launch;
}

TEST_F(WorkerPoolTest, KillWorkerTerminatesThenKillsAfterTheGrace) {
  pool_ = std::make_unique<WorkerPool>(
      WorkerPool::Options{directory_, 4, milliseconds(30000), milliseconds(200)});
  RecordExits();
  auto polite = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto stubborn = Pop(JobIdFromNumber(1), StubbornWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_TRUE(polite.get().ok());
  ASSERT_TRUE(stubborn.get().ok());

  ASSERT_TRUE(pool_->KillWorker(1, /*force=*/false).ok());
  EXPECT_EQ(WaitForExit(1), "killed by signal 15");
  ASSERT_TRUE(pool_->KillWorker(2, /*force=*/false).ok());
  EXPECT_EQ(WaitForExit(2), "killed by signal 9");  // after the grace
  EXPECT_TRUE(absl::IsNotFound(pool_->KillWorker(2, true)));
  EXPECT_TRUE(absl::IsNotFound(pool_->KillWorker(99, true)));
}

TEST_F(WorkerPoolTest, AKilledIdleWorkerIsNotHandedOutAgain) {
  pool_ = std::make_unique<WorkerPool>(
      WorkerPool::Options{directory_, 4, milliseconds(30000), milliseconds(300)});
  RecordExits();
  auto first = Pop(JobIdFromNumber(1), StubbornWorker(directory_));
  const pid_t pid = RegisterWhenStarted(1);
  ASSERT_NE(pid, 0);
  ASSERT_TRUE(first.get().ok());
  pool_->PushWorker(1);
  ASSERT_TRUE(pool_->KillWorker(1, /*force=*/false).ok());  // dies after the grace
  auto second = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(2), 0);
  ASSERT_EQ(second.wait_for(kDeadline), std::future_status::ready);
  EXPECT_EQ(second.get()->startup_token, 2);
}

TEST_F(WorkerPoolTest, KillJobWorkersSparesDetachedWorkersAndOtherJobs) {
  MakePool(3);
  RecordExits();
  auto owned = Pop(JobIdFromNumber(1), FakeWorker(directory_));
  ASSERT_NE(RegisterWhenStarted(1), 0);
  auto detached = Pop(JobIdFromNumber(1), FakeWorker(directory_), /*detached=*/true);
  const pid_t detached_pid = RegisterWhenStarted(2);
  ASSERT_NE(detached_pid, 0);
  auto other = Pop(JobIdFromNumber(2), FakeWorker(directory_));
  const pid_t other_pid = RegisterWhenStarted(3);
  ASSERT_NE(other_pid, 0);
  for (auto *popped : {&owned, &detached, &other}) ASSERT_TRUE(popped->get().ok());
  auto waiting = Pop(JobIdFromNumber(1), FakeWorker(directory_));  // beyond the limit of 3

  EXPECT_EQ(pool_->KillJobWorkers(JobIdFromNumber(1)), 1);
  EXPECT_EQ(WaitForExit(1), "killed by signal 15");
  ASSERT_EQ(waiting.wait_for(kDeadline), std::future_status::ready);
  EXPECT_TRUE(absl::IsCancelled(waiting.get().status()));
  EXPECT_TRUE(ProcessAlive(detached_pid));
  EXPECT_TRUE(ProcessAlive(other_pid));
  EXPECT_FALSE(Exited(2));
  EXPECT_FALSE(Exited(3));
}

}  // namespace
}  // namespace sunray
