#include "src/node/driver_watcher.h"

#include <gtest/gtest.h>
#include <signal.h>

#include "src/common/process.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;
constexpr auto kDeadline = std::chrono::seconds(10);

class DriverWatcherTest : public ::testing::Test {
 protected:
  void TearDown() override {
    watcher_.Stop();
    if (driver_ > 0 && ProcessAlive(driver_)) {
      kill(driver_, SIGKILL);
      TerminateProcess(driver_, milliseconds(0));
    }
  }

  pid_t StartDriver() {
    auto pid = SpawnProcess({"/bin/sleep", "1000"}, {});
    EXPECT_TRUE(pid.ok()) << pid.status();
    driver_ = pid.ok() ? *pid : 0;
    return driver_;
  }

  absl::Mutex mu_;
  std::vector<JobID> exited_ ABSL_GUARDED_BY(mu_);
  DriverWatcher watcher_{{milliseconds(10)}, [this](const JobID &job_id) {
                           absl::MutexLock lock(&mu_);
                           exited_.push_back(job_id);
                         }};
  pid_t driver_ = 0;

  // Waits until some job was reported; returns the reports.
  std::vector<JobID> WaitForAReport() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::vector<JobID> *exited) { return !exited->empty(); }, &exited_),
        absl::FromChrono(kDeadline));
    return exited_;
  }
};

TEST_F(DriverWatcherTest, ReportsTheJobOnceItsDriverExits) {
  const pid_t driver = StartDriver();
  ASSERT_GT(driver, 0);
  watcher_.Watch(JobIdFromNumber(1), driver);
  watcher_.Watch(JobIdFromNumber(2), getpid());  // alive throughout
  kill(driver, SIGKILL);
  EXPECT_EQ(WaitForAReport(), std::vector<JobID>{JobIdFromNumber(1)});
  // Reported once: the job is no longer watched.
  EXPECT_FALSE(watcher_.Forget(JobIdFromNumber(1)));
  EXPECT_TRUE(watcher_.Forget(JobIdFromNumber(2)));
}

TEST_F(DriverWatcherTest, AForgottenDriverIsNotReported) {
  const pid_t driver = StartDriver();
  ASSERT_GT(driver, 0);
  watcher_.Watch(JobIdFromNumber(1), driver);
  EXPECT_TRUE(watcher_.Forget(JobIdFromNumber(1)));
  kill(driver, SIGKILL);
  ASSERT_TRUE(TerminateProcess(driver, milliseconds(0)));
  // A driver that exits later is reported in a later polling round than
  // the forgotten one would have been: only it is reported.
  const pid_t other = StartDriver();
  watcher_.Watch(JobIdFromNumber(2), other);
  kill(other, SIGKILL);
  EXPECT_EQ(WaitForAReport(), std::vector<JobID>{JobIdFromNumber(2)});
}

// The watcher sleeps until a driver exits: with an hour between looks, the
// exit is still reported at once (it used to be noticed only at the next
// 100 ms poll).
TEST(DriverWatcherEventsTest, AnExitIsReportedWithoutWaitingForAPoll) {
  absl::Mutex mu;
  std::vector<JobID> exited;
  DriverWatcher watcher({std::chrono::hours(1)}, [&](const JobID &job_id) {
    absl::MutexLock lock(&mu);
    exited.push_back(job_id);
  });
  auto driver = SpawnProcess({"/bin/sleep", "1000"}, {});
  ASSERT_TRUE(driver.ok()) << driver.status();
  watcher.Watch(JobIdFromNumber(1), *driver);
  kill(*driver, SIGKILL);
  {
    absl::MutexLock lock(&mu);
    EXPECT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(
                                +[](std::vector<JobID> *e) { return !e->empty(); }, &exited),
                            absl::FromChrono(kDeadline)));
  }
  watcher.Stop();
  TerminateProcess(*driver, milliseconds(0));  // reaps it
}

TEST_F(DriverWatcherTest, StopIsIdempotent) {
  watcher_.Stop();
  watcher_.Stop();
  watcher_.Watch(JobIdFromNumber(1), 1);  // ignored: nothing polls any more
}

}  // namespace
}  // namespace sunray
