// The dependency resolver against a fake source of argument values:
// by-reference arguments filled in, `done` once after the last, the first
// failed argument's error, values from many threads, with no process.
#include "src/worker/dependency_resolver.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace sunray {
namespace {

class FakeSource : public ArgumentSource {
 public:
  void WhenReady(const std::string &object_id,
                 std::function<void(proto::ObjectValue value)> ready) override {
    std::optional<proto::ObjectValue> now;
    {
      absl::MutexLock lock(&mu);
      asked.push_back(object_id);
      auto it = ready_now.find(object_id);
      if (it != ready_now.end()) {
        now = it->second;
      } else {
        waiting[object_id].push_back(std::move(ready));
      }
    }
    if (now) ready(*now);
  }
  // `object_id` becomes ready with `value`: its waiters run on this thread.
  void Ready(const std::string &object_id, const proto::ObjectValue &value) {
    std::vector<std::function<void(proto::ObjectValue)>> run;
    {
      absl::MutexLock lock(&mu);
      run.swap(waiting[object_id]);
    }
    for (auto &ready : run) ready(value);
  }

  absl::Mutex mu;
  std::map<std::string, proto::ObjectValue> ready_now;
  std::map<std::string, std::vector<std::function<void(proto::ObjectValue)>>> waiting;
  std::vector<std::string> asked;
};

proto::ObjectValue Data(const std::string &data) {
  proto::ObjectValue value;
  value.set_data(data);
  return value;
}

proto::ObjectValue Error(const std::string &message) {
  proto::ObjectValue value;
  value.set_is_error(true);
  value.mutable_error()->set_type(proto::TASK_EXECUTION_EXCEPTION);
  value.mutable_error()->set_message(message);
  return value;
}

// A task whose arguments are `args`: "=x" is the by-value x, anything else
// an object id.
std::shared_ptr<PendingTask> Task(const std::vector<std::string> &args) {
  auto task = std::make_shared<PendingTask>();
  task->spec.set_function_name("f");
  for (const auto &arg : args) {
    proto::TaskArg *out = task->spec.add_args();
    if (arg.rfind('=', 0) == 0) {
      out->mutable_value()->set_data(arg.substr(1));
    } else {
      out->set_object_id(arg);
    }
  }
  return task;
}

// Counts `done` calls and keeps the last error.
struct Outcome {
  int calls = 0;
  std::optional<ErrorInfo> error;
  DependencyResolver::Done Done() {
    return [this](std::optional<ErrorInfo> e) {
      ++calls;
      error = std::move(e);
    };
  }
};

class DependencyResolverTest : public ::testing::Test {
 protected:
  FakeSource source_;
  DependencyResolver resolver_{&source_};
};

TEST_F(DependencyResolverTest, ATaskWithoutReferencesIsDoneAtOnce) {
  Outcome outcome;
  resolver_.Resolve(Task({"=1", "=2"}), outcome.Done());
  EXPECT_EQ(outcome.calls, 1);
  EXPECT_FALSE(outcome.error);
  EXPECT_TRUE(source_.asked.empty());
}

TEST_F(DependencyResolverTest, ReferencesAreFilledInAndDoneRunsOnceAfterTheLast) {
  auto task = Task({"a", "=v", "b"});
  Outcome outcome;
  resolver_.Resolve(task, outcome.Done());
  EXPECT_EQ(source_.asked, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(resolver_.pending(), 1u);

  source_.Ready("b", Data("B"));
  EXPECT_EQ(outcome.calls, 0) << "a is not in yet";
  source_.Ready("a", Data("A"));
  EXPECT_EQ(outcome.calls, 1);
  EXPECT_FALSE(outcome.error);
  EXPECT_EQ(resolver_.pending(), 0u);
  EXPECT_EQ(task->spec.args(0).value().data(), "A");
  EXPECT_EQ(task->spec.args(0).object_id(), "a") << "the id stays, for the executing side";
  EXPECT_EQ(task->spec.args(1).value().data(), "v");
  EXPECT_EQ(task->spec.args(2).value().data(), "B");
}

TEST_F(DependencyResolverTest, ValuesReadyAlreadyFinishBeforeResolveReturns) {
  source_.ready_now["a"] = Data("A");
  source_.ready_now["b"] = Data("B");
  auto task = Task({"a", "b"});
  Outcome outcome;
  resolver_.Resolve(task, outcome.Done());
  EXPECT_EQ(outcome.calls, 1);
  EXPECT_EQ(task->spec.args(1).value().data(), "B");
  EXPECT_EQ(resolver_.pending(), 0u);
}

TEST_F(DependencyResolverTest, TheFirstFailedArgumentInTheListIsTheErrorOnceAllHaveArrived) {
  auto task = Task({"a", "b", "c"});
  Outcome outcome;
  resolver_.Resolve(task, outcome.Done());
  source_.Ready("c", Error("c failed"));
  source_.Ready("a", Error("a failed"));
  EXPECT_EQ(outcome.calls, 0) << "b is still to come";
  source_.Ready("b", Data("B"));
  ASSERT_EQ(outcome.calls, 1);
  ASSERT_TRUE(outcome.error);
  EXPECT_EQ(outcome.error->message, "a failed");
  EXPECT_EQ(outcome.error->type, ErrorType::kTaskExecution);
  EXPECT_FALSE(task->spec.args(0).has_value()) << "a failed argument gets no value";
}

TEST_F(DependencyResolverTest, AnArgumentThatHasItsValueIsNotAskedForAgain) {
  auto task = Task({"a", "b"});
  task->spec.mutable_args(0)->mutable_value()->set_data("A");  // resolved before
  Outcome outcome;
  resolver_.Resolve(task, outcome.Done());
  EXPECT_EQ(source_.asked, std::vector<std::string>{"b"});
  source_.Ready("b", Data("B"));
  EXPECT_EQ(outcome.calls, 1);
}

TEST_F(DependencyResolverTest, ValuesFromManyThreadsFillEveryTaskOnce) {
  constexpr int kTasks = 200;
  constexpr int kArgs = 4;
  std::vector<std::shared_ptr<PendingTask>> tasks;
  std::vector<Outcome> outcomes(kTasks);
  for (int t = 0; t < kTasks; ++t) {
    std::vector<std::string> args;
    for (int a = 0; a < kArgs; ++a) args.push_back(std::to_string(t) + "/" + std::to_string(a));
    tasks.push_back(Task(args));
    resolver_.Resolve(tasks.back(), outcomes[t].Done());
  }
  // Argument a of every task arrives on thread a.
  std::vector<std::thread> threads;
  for (int a = 0; a < kArgs; ++a) {
    threads.emplace_back([&, a] {
      for (int t = 0; t < kTasks; ++t) {
        const std::string id = std::to_string(t) + "/" + std::to_string(a);
        source_.Ready(id, Data(id));
      }
    });
  }
  for (auto &thread : threads) thread.join();
  EXPECT_EQ(resolver_.pending(), 0u);
  for (int t = 0; t < kTasks; ++t) {
    EXPECT_EQ(outcomes[t].calls, 1) << t;
    for (int a = 0; a < kArgs; ++a) {
      EXPECT_EQ(tasks[t]->spec.args(a).value().data(), std::to_string(t) + "/" + std::to_string(a));
    }
  }
}

}  // namespace
}  // namespace sunray
