// Application metrics (ray/api/metric.h) and RAYLOG.
#include <ray/api/metric.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <string>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using sunray_test::Contains;
using sunray_test::kTimeoutMs;

void LogFromTask(std::string text) { RAYLOG(INFO) << "task says " << text; }
void CountInTask(std::string name) {
  ray::Counter counter(name, "from a task", "1");
  counter.Inc(4);
}

RAY_REMOTE(LogFromTask, CountInTask);

class ObservabilityTest : public sunray_test::RuntimeTest {
 protected:
  // A metric name no other test uses.
  std::string UniqueName(const std::string &kind) const {
    const auto *info = ::testing::UnitTest::GetInstance()->current_test_info();
    static std::atomic<int> serial{0};  // distinct across --gtest_repeat runs too
    std::string name = std::string("sunray_test_") + kind + "_" + info->name() + "_" +
                       std::to_string(serial.fetch_add(1));
    for (auto &c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    }
    return name;
  }
  static std::string Text() { return ray::internal::MetricsPrometheusText(); }
};
SUNRAY_INSTANTIATE_RUNTIMES(ObservabilityTest);

// --- Metrics ---------------------------------------------------------------

TEST_P(ObservabilityTest, GaugeKeepsTheLastValuePerTagSet) {
  const std::string name = UniqueName("gauge");
  ray::Gauge gauge(name, "a test gauge", "items", {"route"});
  EXPECT_EQ(gauge.GetName(), name);
  gauge.Set(1, {{"route", "/a"}});
  gauge.Set(3.5, {{"route", "/a"}});
  gauge.Set(7, {{"route", "/b"}});
  const std::string text = Text();
  EXPECT_TRUE(Contains(text, "# TYPE " + name + " gauge")) << text;
  EXPECT_TRUE(Contains(text, "# HELP " + name + " a test gauge")) << text;
  EXPECT_TRUE(Contains(text, name + "{route=\"/a\"} 3.5\n")) << text;
  EXPECT_TRUE(Contains(text, name + "{route=\"/b\"} 7\n")) << text;
}

TEST_P(ObservabilityTest, CounterAddsIncrements) {
  const std::string name = UniqueName("counter");
  ray::Counter counter(name, "a test counter", "1");
  counter.Inc();
  counter.Inc(2);
  counter.Inc(0.5);
  const std::string text = Text();
  EXPECT_TRUE(Contains(text, "# TYPE " + name + " counter")) << text;
  EXPECT_TRUE(Contains(text, name + " 3.5\n")) << text;
}

TEST_P(ObservabilityTest, SumAddsRecordedValues) {
  const std::string name = UniqueName("sum");
  ray::Sum sum(name, "a test sum", "bytes", {"kind"});
  sum.Record(1.5, {{"kind", "x"}});
  sum.Record(2, {{"kind", "x"}});
  sum.Record(-1, {{"kind", "y"}});
  const std::string text = Text();
  EXPECT_TRUE(Contains(text, name + "{kind=\"x\"} 3.5\n")) << text;
  EXPECT_TRUE(Contains(text, name + "{kind=\"y\"} -1\n")) << text;
}

TEST_P(ObservabilityTest, HistogramCountsObservationsPerBucket) {
  const std::string name = UniqueName("histogram");
  ray::Histogram histogram(name, "a test histogram", "ms", {1, 10});
  histogram.Observe(0.5);
  histogram.Observe(5);
  histogram.Observe(50);
  const std::string text = Text();
  EXPECT_TRUE(Contains(text, "# TYPE " + name + " histogram")) << text;
  EXPECT_TRUE(Contains(text, name + "_bucket{le=\"1\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, name + "_bucket{le=\"10\"} 2\n")) << text;
  EXPECT_TRUE(Contains(text, name + "_bucket{le=\"+Inf\"} 3\n")) << text;
  EXPECT_TRUE(Contains(text, name + "_count 3\n")) << text;
  EXPECT_TRUE(Contains(text, name + "_sum 55.5\n")) << text;
}

TEST_P(ObservabilityTest, MetricsWithTheSameNameShareTheirSeries) {
  const std::string name = UniqueName("shared");
  ray::Counter first(name, "shared counter", "1");
  ray::Counter second(name, "shared counter", "1");
  first.Inc(1);
  second.Inc(2);
  EXPECT_TRUE(Contains(Text(), name + " 3\n")) << Text();
}

TEST_P(ObservabilityTest, UndeclaredTagKeyThrows) {
  const std::string name = UniqueName("tags");
  ray::Gauge gauge(name, "tagged", "1", {"declared"});
  EXPECT_THROW(gauge.Set(1, {{"undeclared", "x"}}), RayException);
  EXPECT_THROW(gauge.Set(1, {{"declared", "a"}, {"undeclared", "x"}}), RayException);
  EXPECT_FALSE(Contains(Text(), "undeclared"));
  EXPECT_NO_THROW(gauge.Set(1, {{"declared", "a"}}));
}

TEST_P(ObservabilityTest, NegativeCounterIncrementThrows) {
  const std::string name = UniqueName("negative");
  ray::Counter counter(name, "never negative", "1");
  counter.Inc(2);
  EXPECT_THROW(counter.Inc(-1), RayException);
  EXPECT_THROW(counter.Record(-0.5), RayException);
  EXPECT_TRUE(Contains(Text(), name + " 2\n")) << Text();
}

TEST_P(ObservabilityTest, MetricsAreUsableInsideTasks) {
  const std::string name = UniqueName("task");
  ray::Task(CountInTask).Remote(name).Get(kTimeoutMs);
  if (GetParam() == "local") {
    // The task ran in this process, so its metric is in this process's text.
    EXPECT_TRUE(Contains(Text(), name + " 4\n")) << Text();
  }
}

// --- Logging ---------------------------------------------------------------

TEST_P(ObservabilityTest, RaylogWritesTheLineToStderr) {
  ::testing::internal::CaptureStderr();
  RAYLOG(INFO) << "hello from the test " << 42;
  const std::string captured = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(Contains(captured, "hello from the test 42")) << captured;
  EXPECT_TRUE(Contains(captured, "observability_test.cc")) << captured;
}

TEST_P(ObservabilityTest, RaylogWorksInsideTasks) {
  ::testing::internal::CaptureStderr();
  ray::Task(LogFromTask).Remote(std::string("from a worker")).Get(kTimeoutMs);
  const std::string captured = ::testing::internal::GetCapturedStderr();
  if (GetParam() == "local") {
    EXPECT_TRUE(Contains(captured, "task says from a worker")) << captured;
  }
}

TEST_P(ObservabilityTest, RaylogLevelsFollowTheThreshold) {
  EXPECT_TRUE(ray::IsLevelEnabled(ray::RayLoggerLevel::ERROR));
  EXPECT_TRUE(ray::IsLevelEnabled(ray::RayLoggerLevel::WARNING));
  if (std::getenv("RAY_BACKEND_LOG_LEVEL") != nullptr) {
    GTEST_SKIP() << "RAY_BACKEND_LOG_LEVEL is set; the default threshold is not in effect";
  }
  EXPECT_TRUE(ray::IsLevelEnabled(ray::RayLoggerLevel::INFO));
  EXPECT_FALSE(ray::IsLevelEnabled(ray::RayLoggerLevel::DEBUG));
  ::testing::internal::CaptureStderr();
  RAYLOG(DEBUG) << "hidden debug line";
  RAYLOG(WARNING) << "visible warning line";
  const std::string captured = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(Contains(captured, "hidden debug line")) << captured;
  EXPECT_TRUE(Contains(captured, "visible warning line")) << captured;
}

TEST_P(ObservabilityTest, RaylogBindsElseToTheUsersIf) {
  ::testing::internal::CaptureStderr();
  bool flag = false;
  if (flag)
    RAYLOG(INFO) << "then branch";
  else
    RAYLOG(INFO) << "else branch";
  const std::string captured = ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(Contains(captured, "then branch")) << captured;
  EXPECT_TRUE(Contains(captured, "else branch")) << captured;
}

}  // namespace
