// Task failures: what Get throws, how failures flow through dependencies,
// and retries of failing tasks (Sunray extension).
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using ray::internal::RayTaskException;
using sunray_test::kTimeoutMs;
using sunray_test::Throws;

sunray_test::SharedInt attempts;

struct QuotaExceeded : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int ThrowLogicError(int) { throw std::logic_error("boom"); }
void ThrowFromVoid() { throw std::out_of_range("void boom"); }
int ThrowCustom() { throw QuotaExceeded("quota of 3 exceeded"); }
int ThrowNonStandard() { throw 42; }
int Double(int x) { return 2 * x; }
int Sum(int a, int b) { return a + b; }
// Throws on its first two attempts, then succeeds.
int FlakyTwice(int x) {
  if (attempts.fetch_add(1) < 2) throw std::runtime_error("flaky attempt");
  return x;
}

RAY_REMOTE(ThrowLogicError, ThrowFromVoid, ThrowCustom, ThrowNonStandard, Double, Sum, FlakyTwice);

class ExceptionTest : public sunray_test::RuntimeTest {
 protected:
  void SetUp() override {
    attempts = 0;
    RuntimeTest::SetUp();
  }
};
SUNRAY_INSTANTIATE_RUNTIMES(ExceptionTest);

TEST_P(ExceptionTest, ThrowingTaskFailsGetWithRayTaskException) {
  auto result = ray::Task(ThrowLogicError).Remote(1);
  try {
    result.Get(kTimeoutMs);
    FAIL() << "Get did not throw";
  } catch (const RayTaskException &e) {
    const std::string what = e.what();
    EXPECT_TRUE(sunray_test::Contains(what, "std::logic_error")) << what;
    EXPECT_TRUE(sunray_test::Contains(what, "boom")) << what;
    EXPECT_TRUE(sunray_test::Contains(what, "ThrowLogicError")) << what;
    EXPECT_EQ(e.FunctionName(), "ThrowLogicError");
    EXPECT_EQ(e.ExceptionType(), "std::logic_error");
    EXPECT_EQ(e.ExceptionMessage(), "boom");
    EXPECT_EQ(e.msg_, what);
  }
}

TEST_P(ExceptionTest, FailureIsRethrownOnEveryGet) {
  auto result = ray::Task(ThrowLogicError).Remote(1);
  EXPECT_TRUE(Throws<RayTaskException>([&] { result.Get(kTimeoutMs); }, {"boom"}));
  EXPECT_TRUE(Throws<RayTaskException>([&] { ray::Get(result); }, {"boom"}));
  EXPECT_TRUE(Throws<RayTaskException>(
      [&] { ray::Get<int>(std::vector<std::string>{result.ID()}); }, {"boom"}));
}

TEST_P(ExceptionTest, VoidTaskFailureIsThrownByGet) {
  auto result = ray::Task(ThrowFromVoid).Remote();
  EXPECT_TRUE(Throws<RayTaskException>([&] { result.Get(kTimeoutMs); },
                                       {"std::out_of_range", "void boom"}));
}

TEST_P(ExceptionTest, CustomExceptionTypeIsNamed) {
  auto result = ray::Task(ThrowCustom).Remote();
  try {
    result.Get(kTimeoutMs);
    FAIL() << "Get did not throw";
  } catch (const RayTaskException &e) {
    EXPECT_TRUE(sunray_test::Contains(e.what(), "QuotaExceeded")) << e.what();
    EXPECT_TRUE(sunray_test::Contains(e.ExceptionType(), "QuotaExceeded")) << e.ExceptionType();
    EXPECT_EQ(e.ExceptionMessage(), "quota of 3 exceeded");
  }
}

TEST_P(ExceptionTest, NonStandardExceptionStillFailsTheTask) {
  auto result = ray::Task(ThrowNonStandard).Remote();
  try {
    result.Get(kTimeoutMs);
    FAIL() << "Get did not throw";
  } catch (const RayTaskException &e) {
    EXPECT_EQ(e.ExceptionType(), "int");
    EXPECT_EQ(e.FunctionName(), "ThrowNonStandard");
  }
}

TEST_P(ExceptionTest, TaskExceptionIsARayException) {
  auto result = ray::Task(ThrowLogicError).Remote(1);
  EXPECT_TRUE(Throws<RayException>([&] { result.Get(kTimeoutMs); }));
}

TEST_P(ExceptionTest, FailedArgumentFailsTheDependentTask) {
  auto failed = ray::Task(ThrowLogicError).Remote(1);
  auto dependent = ray::Task(Double).Remote(failed);
  EXPECT_TRUE(Throws<RayTaskException>([&] { dependent.Get(kTimeoutMs); }, {"boom"}));
}

TEST_P(ExceptionTest, FailurePropagatesDownAChain) {
  ray::ObjectRef<int> value = ray::Task(ThrowLogicError).Remote(1);
  for (int i = 0; i < 5; ++i) value = ray::Task(Sum).Remote(value, 1);
  EXPECT_TRUE(Throws<RayTaskException>([&] { value.Get(kTimeoutMs); }, {"boom"}));
}

TEST_P(ExceptionTest, OtherTasksAreUnaffectedByAFailure) {
  auto failed = ray::Task(ThrowLogicError).Remote(1);
  auto fine = ray::Task(Double).Remote(4);
  EXPECT_THROW(failed.Get(kTimeoutMs), RayTaskException);
  EXPECT_EQ(*fine.Get(kTimeoutMs), 8);
}

// --- Retries (Sunray extension) --------------------------------------------

TEST_P(ExceptionTest, RetriedTaskSucceedsWithinItsRetries) {
  auto result = ray::Task(FlakyTwice).SetMaxRetries(2).SetRetryExceptions(true).Remote(5);
  EXPECT_EQ(*result.Get(kTimeoutMs), 5);
  EXPECT_EQ(attempts.load(), 3);
}

TEST_P(ExceptionTest, RetriedTaskFailsWhenRetriesRunOut) {
  auto result = ray::Task(FlakyTwice).SetMaxRetries(1).SetRetryExceptions(true).Remote(5);
  EXPECT_TRUE(Throws<RayTaskException>([&] { result.Get(kTimeoutMs); }, {"flaky attempt"}));
  EXPECT_EQ(attempts.load(), 2);
}

TEST_P(ExceptionTest, UnlimitedRetriesRunUntilSuccess) {
  auto result = ray::Task(FlakyTwice).SetMaxRetries(-1).SetRetryExceptions(true).Remote(6);
  EXPECT_EQ(*result.Get(kTimeoutMs), 6);
  EXPECT_EQ(attempts.load(), 3);
}

TEST_P(ExceptionTest, ExceptionsAreNotRetriedByDefault) {
  auto result = ray::Task(FlakyTwice).SetMaxRetries(5).Remote(5);
  EXPECT_TRUE(Throws<RayTaskException>([&] { result.Get(kTimeoutMs); }, {"flaky attempt"}));
  EXPECT_EQ(attempts.load(), 1);
  attempts = 0;
  auto plain = ray::Task(FlakyTwice).Remote(5);
  EXPECT_THROW(plain.Get(kTimeoutMs), RayTaskException);
  EXPECT_EQ(attempts.load(), 1);
}

TEST_P(ExceptionTest, RetryExceptionsFalseDisablesRetries) {
  auto result = ray::Task(FlakyTwice).SetMaxRetries(3).SetRetryExceptions(false).Remote(5);
  EXPECT_THROW(result.Get(kTimeoutMs), RayTaskException);
  EXPECT_EQ(attempts.load(), 1);
}

TEST_P(ExceptionTest, ZeroRetriesMeansOneAttempt) {
  auto result = ray::Task(FlakyTwice).SetMaxRetries(0).SetRetryExceptions(true).Remote(5);
  EXPECT_THROW(result.Get(kTimeoutMs), RayTaskException);
  EXPECT_EQ(attempts.load(), 1);
}

TEST_P(ExceptionTest, MaxRetriesBelowMinusOneIsRejected) {
  EXPECT_TRUE(Throws<RayException>([] { ray::Task(FlakyTwice).SetMaxRetries(-2); }));
}

}  // namespace
