#include "src/node/node_reporter.h"

#include <gtest/gtest.h>

#include <atomic>

#include "src/testing/eventually.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

TEST(NodeReporterTest, ReportsUntilControlSaysTheNodeWasDeclaredDead) {
  std::atomic<int> reports{0};
  std::atomic<int> told{0};
  absl::Mutex mu;
  std::string why;
  NodeReporter reporter(
      {milliseconds(5)},
      [&]() -> absl::Status {
        const int n = ++reports;
        if (n <= 2) return absl::UnavailableError("connection refused");  // control unreachable
        if (n <= 5) return absl::OkStatus();
        return absl::FailedPreconditionError("node 1234 was declared dead (health check failed)");
      },
      [&](const std::string &reason) {
        absl::MutexLock lock(&mu);
        why = reason;
        ++told;
      });
  ASSERT_TRUE(Eventually([&] { return told.load() == 1; }));
  // It reports no more once told.
  reporter.Stop();
  EXPECT_EQ(reports.load(), 6);
  EXPECT_EQ(told.load(), 1);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(why, "node 1234 was declared dead (health check failed)");
}

TEST(NodeReporterTest, StopEndsTheWaitBetweenReports) {
  std::atomic<int> reports{0};
  NodeReporter reporter(
      {std::chrono::hours(1)}, [&] { return ++reports, absl::OkStatus(); },
      [](const std::string &) {});
  ASSERT_TRUE(Eventually([&] { return reports.load() == 1; }));
  reporter.Stop();  // returns without waiting the hour
  EXPECT_EQ(reports.load(), 1);
}

TEST(NodeReporterTest, AChangeIsReportedAfterTheShortestIntervalNotThePeriod) {
  std::atomic<int> reports{0};
  NodeReporter reporter(
      {std::chrono::hours(1), milliseconds(10)}, [&] { return ++reports, absl::OkStatus(); },
      [](const std::string &) {});
  ASSERT_TRUE(Eventually([&] { return reports.load() == 1; }));
  reporter.ReportSoon();
  ASSERT_TRUE(Eventually([&] { return reports.load() == 2; }));
  reporter.ReportSoon();
  ASSERT_TRUE(Eventually([&] { return reports.load() == 3; }));
  reporter.Stop();
  EXPECT_EQ(reports.load(), 3);
}

}  // namespace
}  // namespace sunray
