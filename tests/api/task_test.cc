// Normal tasks: submission, arguments, ObjectRef arguments, nesting, options.
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using sunray_test::kTimeoutMs;
using sunray_test::Latch;
using sunray_test::Throws;

Latch gate;
Latch ran;
sunray_test::SharedInt recorded;

int TaskPlus(int a, int b) { return a + b; }
int PlusOne(int x) { return x + 1; }
int FortyTwo() { return 42; }
void Record(int x) { recorded = x; }
void RecordAndSignal(int x) {
  recorded = x;
  ran.Release();
}
std::string Describe(int i, double d, bool b, std::string s, char c) {
  return std::to_string(i) + "|" + std::to_string(d) + "|" + (b ? "true" : "false") + "|" + s +
         "|" + c;
}

std::string ConcatByConstRef(const std::string &a, const std::string &b) { return a + b; }
int SumByRvalue(std::vector<int> &&v) {
  std::vector<int> taken = std::move(v);
  return std::accumulate(taken.begin(), taken.end(), 0);
}
int GrowByRef(std::vector<int> &v) {
  v.push_back(0);
  return static_cast<int>(v.size());
}

int WaitForGateThenReturn(int x) {
  gate.Wait();
  return x;
}

int GetThroughRef(ray::ObjectRef<int> ref) { return *ref.Get() * 10; }
std::string RefIdOf(ray::ObjectRef<int> ref) { return ref.ID(); }
int SumRefs(std::vector<ray::ObjectRef<int>> refs) {
  int total = 0;
  for (const auto &value : ray::Get(refs)) total += *value;
  return total;
}

int Fib(int n) {
  if (n < 2) return n;
  auto a = ray::Task(Fib).Remote(n - 1);
  auto b = ray::Task(Fib).Remote(n - 2);
  return *a.Get() + *b.Get();
}

int FanOutChild(int x) { return x * 2; }
int FanOutParent(int x) {
  std::vector<ray::ObjectRef<int>> children;
  children.push_back(ray::Task(FanOutChild).Remote(x));
  children.push_back(ray::Task(FanOutChild).Remote(x + 1));
  int total = 0;
  for (const auto &value : ray::Get(children)) total += *value;
  return total;
}

ray::ObjectRef<int> PutInsideTask(int x) { return ray::Put(x); }
ray::ObjectRef<int> SubmitInsideTask(int x) { return ray::Task(PlusOne).Remote(x); }

RAY_REMOTE(TaskPlus, PlusOne, FortyTwo, Record, RecordAndSignal, Describe, ConcatByConstRef,
           SumByRvalue, GrowByRef, WaitForGateThenReturn, GetThroughRef, RefIdOf, SumRefs, Fib,
           FanOutChild, FanOutParent, PutInsideTask, SubmitInsideTask);

class TaskTest : public sunray_test::RuntimeTest {
 protected:
  void SetUp() override {
    recorded = 0;
    RuntimeTest::SetUp();
  }
};
SUNRAY_INSTANTIATE_RUNTIMES(TaskTest);

// --- Results and arguments -------------------------------------------------

TEST_P(TaskTest, ReturnsTheFunctionsResult) {
  ray::ObjectRef<int> sum = ray::Task(TaskPlus).Remote(1, 2);
  EXPECT_EQ(*sum.Get(kTimeoutMs), 3);
  EXPECT_EQ(*ray::Get(sum), 3);
  EXPECT_EQ(*ray::Task(FortyTwo).Remote().Get(kTimeoutMs), 42);
}

TEST_P(TaskTest, VoidTaskGetWaitsForTheCall) {
  ray::ObjectRef<void> done = ray::Task(Record).Remote(17);
  done.Get(kTimeoutMs);
  EXPECT_EQ(recorded.load(), 17);
}

TEST_P(TaskTest, TaskWhoseResultIsDroppedStillRuns) {
  ray::Task(RecordAndSignal).Remote(5);
  ASSERT_TRUE(ran.WaitFor(std::chrono::milliseconds(kTimeoutMs)));
  EXPECT_EQ(recorded.load(), 5);
}

TEST_P(TaskTest, ArgumentsOfSeveralTypesArriveIntact) {
  EXPECT_EQ(*ray::Task(Describe).Remote(-3, 2.5, true, std::string("text"), 'z').Get(kTimeoutMs),
            "-3|2.500000|true|text|z");
}

TEST_P(TaskTest, ArgumentsConvertToTheParameterType) {
  // A string literal for std::string, a short for int.
  short one = 1;
  EXPECT_EQ(*ray::Task(TaskPlus).Remote(one, 2).Get(kTimeoutMs), 3);
  EXPECT_EQ(*ray::Task(ConcatByConstRef).Remote("ab", "cd").Get(kTimeoutMs), "abcd");
}

TEST_P(TaskTest, ConstReferenceParametersWork) {
  const std::string a = "left-";
  std::string b = "right";
  EXPECT_EQ(*ray::Task(ConcatByConstRef).Remote(a, b).Get(kTimeoutMs), "left-right");
}

TEST_P(TaskTest, RvalueReferenceParametersWork) {
  EXPECT_EQ(*ray::Task(SumByRvalue).Remote(std::vector<int>{1, 2, 3, 4}).Get(kTimeoutMs), 10);
}

TEST_P(TaskTest, NonConstReferenceParametersGetACopy) {
  std::vector<int> v{1, 2};
  EXPECT_EQ(*ray::Task(GrowByRef).Remote(v).Get(kTimeoutMs), 3);
  EXPECT_EQ(v.size(), 2u);  // the caller's value is not touched
}

TEST_P(TaskTest, ArgumentsAreCapturedAtSubmission) {
  std::string text = "before";
  auto ref = ray::Task(ConcatByConstRef).Remote(text, std::string("!"));
  text = "after";
  EXPECT_EQ(*ref.Get(kTimeoutMs), "before!");
}

// --- ObjectRef arguments ---------------------------------------------------

TEST_P(TaskTest, ObjectRefArgumentIsResolvedToItsValue) {
  auto five = ray::Put(5);
  EXPECT_EQ(*ray::Task(TaskPlus).Remote(five, 1).Get(kTimeoutMs), 6);
  auto text = ray::Put(std::string("ref-"));
  EXPECT_EQ(*ray::Task(ConcatByConstRef).Remote(text, text).Get(kTimeoutMs), "ref-ref-");
}

TEST_P(TaskTest, ObjectRefArgumentOfARunningTaskIsAwaited) {
  auto slow = ray::Task(WaitForGateThenReturn).Remote(20);
  auto dependent = ray::Task(TaskPlus).Remote(slow, 1);
  EXPECT_TRUE(Throws<ray::internal::RayTimeoutException>([&] { dependent.Get(50); }));
  gate.Release();
  EXPECT_EQ(*dependent.Get(kTimeoutMs), 21);
}

TEST_P(TaskTest, ChainsOfObjectRefsResolve) {
  ray::ObjectRef<int> value = ray::Put(0);
  for (int i = 0; i < 20; ++i) value = ray::Task(PlusOne).Remote(value);
  EXPECT_EQ(*value.Get(kTimeoutMs), 20);
}

TEST_P(TaskTest, DiamondOfDependenciesResolves) {
  auto root = ray::Task(PlusOne).Remote(0);
  auto left = ray::Task(PlusOne).Remote(root);
  auto right = ray::Task(TaskPlus).Remote(root, 10);
  EXPECT_EQ(*ray::Task(TaskPlus).Remote(left, right).Get(kTimeoutMs), 13);
}

TEST_P(TaskTest, ObjectRefParameterReceivesTheRefItself) {
  auto ref = ray::Put(4);
  EXPECT_EQ(*ray::Task(RefIdOf).Remote(ref).Get(kTimeoutMs), ref.ID());
  EXPECT_EQ(*ray::Task(GetThroughRef).Remote(ref).Get(kTimeoutMs), 40);
}

TEST_P(TaskTest, ObjectRefParameterMayPointAtAnUnfinishedTask) {
  auto slow = ray::Task(WaitForGateThenReturn).Remote(3);
  auto result = ray::Task(GetThroughRef).Remote(slow);
  EXPECT_TRUE(Throws<ray::internal::RayTimeoutException>([&] { result.Get(50); }));
  gate.Release();
  EXPECT_EQ(*result.Get(kTimeoutMs), 30);
}

TEST_P(TaskTest, ObjectRefsInsideAnArgumentStayUsable) {
  std::vector<ray::ObjectRef<int>> refs{ray::Put(1), ray::Task(PlusOne).Remote(1), ray::Put(3)};
  auto sum = ray::Task(SumRefs).Remote(refs);
  refs.clear();  // the task's argument keeps the objects alive
  EXPECT_EQ(*sum.Get(kTimeoutMs), 6);
}

// --- Tasks inside tasks ----------------------------------------------------

TEST_P(TaskTest, RecursiveTasksFinish) {
  // 67 tasks, up to 33 blocked at once: on a cluster each blocked one keeps
  // a worker process, so this also starts a few dozen workers.
  EXPECT_EQ(*ray::Task(Fib).Remote(8).Get(kTimeoutMs), 21);
}

TEST_P(TaskTest, SixtyFourParentsWaitingOnChildrenFinish) {
  std::vector<ray::ObjectRef<int>> parents;
  for (int i = 0; i < 64; ++i) parents.push_back(ray::Task(FanOutParent).Remote(i));
  auto values = ray::Get(parents, kTimeoutMs);
  ASSERT_EQ(values.size(), 64u);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(*values[i], 2 * i + 2 * (i + 1)) << i;
}

TEST_P(TaskTest, TaskCanReturnAnObjectRefItPut) {
  auto outer = ray::Task(PutInsideTask).Remote(9);
  std::shared_ptr<ray::ObjectRef<int>> inner = outer.Get(kTimeoutMs);
  EXPECT_EQ(*inner->Get(kTimeoutMs), 9);
}

TEST_P(TaskTest, TaskCanReturnAnObjectRefOfATaskItSubmitted) {
  auto outer = ray::Task(SubmitInsideTask).Remote(9);
  std::shared_ptr<ray::ObjectRef<int>> inner = outer.Get(kTimeoutMs);
  EXPECT_EQ(*inner->Get(kTimeoutMs), 10);
}

// --- Options ---------------------------------------------------------------

TEST_P(TaskTest, NamedTaskRuns) {
  EXPECT_EQ(*ray::Task(TaskPlus).SetName("named_plus").Remote(2, 3).Get(kTimeoutMs), 5);
}

TEST_P(TaskTest, ValidResourceValuesAreAccepted) {
  for (double value : {0.5, 1.0, 3.0, 0.0001}) {
    EXPECT_EQ(*ray::Task(TaskPlus).SetResource("CPU", value).Remote(1, 1).Get(kTimeoutMs), 2)
        << value;
  }
  EXPECT_EQ(*ray::Task(TaskPlus)
                 .SetResources({{"CPU", 1}, {"memory", 1024}})
                 .Remote(1, 1)
                 .Get(kTimeoutMs),
            2);
}

TEST_P(TaskTest, InvalidResourceValuesAreRejectedAtRemote) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double value : {0.0, -1.0, 1.5, 2.5, nan, inf}) {
    EXPECT_TRUE(Throws<RayException>([&] {
      ray::Task(TaskPlus).SetResource("CPU", value).Remote(1, 1);
    })) << value;
    EXPECT_TRUE(Throws<RayException>([&] {
      ray::Task(TaskPlus).SetResources({{"GPU", value}}).Remote(1, 1);
    })) << value;
  }
}

TEST_P(TaskTest, EmptyResourceNameIsRejected) {
  EXPECT_TRUE(Throws<RayException>([] { ray::Task(TaskPlus).SetResource("", 1).Remote(1, 1); }));
}

TEST_P(TaskTest, RejectedSubmissionRunsNothing) {
  EXPECT_THROW(ray::Task(Record).SetResource("CPU", 0).Remote(99), RayException);
  ray::Task(Record).Remote(1).Get(kTimeoutMs);
  EXPECT_EQ(recorded.load(), 1);
}

TEST_P(TaskTest, SetResourceKeepsTheFirstValueOfAName) {
  // The second, invalid value is ignored: only the first one is checked.
  EXPECT_EQ(
      *ray::Task(TaskPlus).SetResource("CPU", 1).SetResource("CPU", 0).Remote(1, 2).Get(kTimeoutMs),
      3);
  // Whereas an invalid first value is kept, and rejected.
  EXPECT_THROW(ray::Task(TaskPlus).SetResource("CPU", 0).SetResource("CPU", 1).Remote(1, 2),
               RayException);
}

TEST_P(TaskTest, SetResourcesReplacesEarlierRequirements) {
  EXPECT_EQ(*ray::Task(TaskPlus)
                 .SetResource("CPU", 0)
                 .SetResources({{"CPU", 1}})
                 .Remote(1, 2)
                 .Get(kTimeoutMs),
            3);
  EXPECT_THROW(ray::Task(TaskPlus).SetResources({{"CPU", 1}}).SetResource("GPU", 0).Remote(1, 2),
               RayException);
}

}  // namespace
