// The task manager against a fake of the object side: records found by
// return id, each settlement stored once with the arguments' references
// released, refusals after shutdown, with no process and no socket.
#include "src/worker/task_manager.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace sunray {
namespace {

class FakeSink : public TaskResultSink {
 public:
  bool StoreResult(const std::string &return_id, const proto::ObjectValue &result,
                   bool report_free) override {
    absl::MutexLock lock(&mu);
    ++stores[return_id];
    values[return_id] = result.data();
    if (report_free) reported.insert(return_id);
    return !freed_before.count(return_id);
  }
  void StoreError(const std::string &return_id, ErrorInfo error) override {
    absl::MutexLock lock(&mu);
    ++stores[return_id];
    errors[return_id] = std::move(error);
  }
  void Release(const std::vector<std::string> &object_ids) override {
    absl::MutexLock lock(&mu);
    released.insert(released.end(), object_ids.begin(), object_ids.end());
  }

  absl::Mutex mu;
  std::map<std::string, int> stores;
  std::map<std::string, std::string> values;
  std::map<std::string, ErrorInfo> errors;
  std::vector<std::string> released;
  std::set<std::string> freed_before;  // results nobody refers to when they arrive
  std::set<std::string> reported;      // results whose freeing is to be reported
};

std::shared_ptr<PendingTask> Task(const std::string &name, std::vector<std::string> held = {}) {
  auto task = std::make_shared<PendingTask>();
  task->spec.set_function_name(name);
  task->spec.set_return_id("ret-" + name);
  task->held = std::move(held);
  return task;
}

proto::ObjectValue Value(const std::string &data) {
  proto::ObjectValue value;
  value.set_data(data);
  return value;
}

class TaskManagerTest : public ::testing::Test {
 protected:
  FakeSink sink_;
  TaskManager tasks_{&sink_};
};

TEST_F(TaskManagerTest, ASucceededTaskStoresItsResultReleasesItsArgumentsAndIsForgotten) {
  auto task = Task("f", {"arg-1", "arg-2"});
  ASSERT_TRUE(tasks_.Add(task));
  EXPECT_EQ(tasks_.Find("ret-f"), task);
  EXPECT_EQ(tasks_.pending(), 1u);
  EXPECT_TRUE(sink_.released.empty()) << "arguments are held until the task settles";

  tasks_.Succeeded(*task, Value("42"));
  EXPECT_EQ(sink_.values["ret-f"], "42");
  EXPECT_EQ(sink_.released, (std::vector<std::string>{"arg-1", "arg-2"}));
  EXPECT_TRUE(task->held.empty());
  EXPECT_EQ(tasks_.Find("ret-f"), nullptr);
  EXPECT_EQ(tasks_.pending(), 0u);
}

TEST_F(TaskManagerTest, AFailedTaskStoresItsErrorNamedAfterItsFunctionUnlessItNamesOne) {
  auto f = Task("f", {"arg"});
  auto g = Task("g");
  ASSERT_TRUE(tasks_.Add(f));
  ASSERT_TRUE(tasks_.Add(g));
  tasks_.Failed(*f, ErrorInfo{ErrorType::kWorkerDied, "the worker died", "", "", ""});
  ErrorInfo named{ErrorType::kTaskExecution, "it threw", "", "", ""};
  named.function_name = "inner";
  tasks_.Failed(*g, named);

  ASSERT_EQ(sink_.errors.count("ret-f"), 1u);
  EXPECT_EQ(sink_.errors["ret-f"].type, ErrorType::kWorkerDied);
  EXPECT_EQ(sink_.errors["ret-f"].message, "the worker died");
  EXPECT_EQ(sink_.errors["ret-f"].function_name, "f");
  EXPECT_EQ(sink_.errors["ret-g"].function_name, "inner");
  EXPECT_EQ(sink_.released, std::vector<std::string>{"arg"});
  EXPECT_EQ(tasks_.pending(), 0u);
}

TEST_F(TaskManagerTest, ASecondSettlementIsIgnored) {
  auto ok_first = Task("a", {"x"});
  auto failed_first = Task("b", {"y"});
  auto released_first = Task("c", {"z"});
  for (const auto &task : {ok_first, failed_first, released_first}) ASSERT_TRUE(tasks_.Add(task));

  tasks_.Succeeded(*ok_first, Value("1"));
  tasks_.Failed(*ok_first, ErrorInfo{ErrorType::kWorkerDied, "late", "", "", ""});
  tasks_.Failed(*failed_first, ErrorInfo{ErrorType::kTaskCancelled, "cancelled", "", "", ""});
  tasks_.Succeeded(*failed_first, Value("2"));
  tasks_.Release(*released_first);
  tasks_.Failed(*released_first, ErrorInfo{ErrorType::kActorDied, "late", "", "", ""});

  EXPECT_EQ(sink_.stores["ret-a"], 1);
  EXPECT_EQ(sink_.values["ret-a"], "1");
  EXPECT_EQ(sink_.errors.count("ret-a"), 0u);
  EXPECT_EQ(sink_.stores["ret-b"], 1);
  EXPECT_EQ(sink_.errors["ret-b"].type, ErrorType::kTaskCancelled);
  EXPECT_EQ(sink_.values.count("ret-b"), 0u);
  EXPECT_EQ(sink_.stores.count("ret-c"), 0u) << "a released task has no result of its own";
  EXPECT_EQ(sink_.released, (std::vector<std::string>{"x", "y", "z"})) << "each released once";
}

TEST_F(TaskManagerTest, ATaskNeverAddedSettlesTheSameWay) {
  auto task = Task("unschedulable", {"arg"});
  tasks_.Failed(*task, ErrorInfo{ErrorType::kTaskUnschedulable, "no such node", "", "", ""});
  EXPECT_EQ(sink_.errors["ret-unschedulable"].type, ErrorType::kTaskUnschedulable);
  EXPECT_EQ(sink_.released, std::vector<std::string>{"arg"});
  EXPECT_EQ(tasks_.pending(), 0u);
}

TEST_F(TaskManagerTest, AddRefusesASecondTaskWithTheSameReturnIdAndKeepsTheFirst) {
  auto first = Task("f");
  auto second = Task("f", {"arg"});
  ASSERT_TRUE(tasks_.Add(first));
  EXPECT_FALSE(tasks_.Add(second));
  // The refused one is failed by its caller; the first stays recorded.
  tasks_.Failed(*second, ErrorInfo{ErrorType::kTaskCancelled, "refused", "", "", ""});
  EXPECT_EQ(tasks_.Find("ret-f"), first);
  EXPECT_EQ(sink_.released, std::vector<std::string>{"arg"});
}

TEST_F(TaskManagerTest, AfterShutdownNewTasksAreRefusedAndUnsettledOnesStayUntilSettled) {
  auto before = Task("before", {"arg"});
  ASSERT_TRUE(tasks_.Add(before));
  tasks_.Shutdown();
  EXPECT_FALSE(tasks_.Add(Task("after")));
  EXPECT_EQ(tasks_.Find("ret-after"), nullptr);
  EXPECT_EQ(tasks_.Find("ret-before"), before);

  tasks_.Failed(*before, ErrorInfo{ErrorType::kWorkerDied, "shutting down", "", "", ""});
  EXPECT_EQ(sink_.errors["ret-before"].message, "shutting down");
  EXPECT_EQ(tasks_.pending(), 0u);
}

TEST_F(TaskManagerTest, ConcurrentSettlementsOfTheSameTasksStoreEachOnce) {
  constexpr int kTasks = 2000;
  std::vector<std::shared_ptr<PendingTask>> tasks;
  for (int i = 0; i < kTasks; ++i) {
    tasks.push_back(Task("t" + std::to_string(i), {"arg" + std::to_string(i)}));
    ASSERT_TRUE(tasks_.Add(tasks.back()));
  }
  // An answer and a broken stream race for every task.
  std::thread answers([&] {
    for (auto &task : tasks) tasks_.Succeeded(*task, Value("v"));
  });
  std::thread deaths([&] {
    for (auto &task : tasks) {
      tasks_.Failed(*task, ErrorInfo{ErrorType::kWorkerDied, "died", "", "", ""});
    }
  });
  answers.join();
  deaths.join();

  EXPECT_EQ(tasks_.pending(), 0u);
  EXPECT_EQ(sink_.released.size(), static_cast<size_t>(kTasks));
  ASSERT_EQ(sink_.stores.size(), static_cast<size_t>(kTasks));
  for (const auto &[id, count] : sink_.stores) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(sink_.values.size() + sink_.errors.size(), static_cast<size_t>(kTasks));
}

// Lineage: what recovery will run again to rebuild a lost result.
TEST_F(TaskManagerTest, ASucceededTaskWithRetriesLeftKeepsItsSpecUntilItsResultIsFreed) {
  auto task = Task("f");
  task->retries = RetryBudget(3);
  task->spec.add_args()->mutable_value()->set_data(std::string(1000, 'a'));
  ASSERT_TRUE(tasks_.Add(task));
  EXPECT_EQ(tasks_.Lineage("ret-f"), nullptr) << "not before it succeeds";
  tasks_.Succeeded(*task, Value("42"));
  EXPECT_EQ(sink_.reported, (std::set<std::string>{"ret-f"})) << "its freeing releases it";
  std::shared_ptr<const proto::TaskSpec> spec = tasks_.Lineage("ret-f");
  ASSERT_NE(spec, nullptr);
  EXPECT_EQ(spec->function_name(), "f");
  EXPECT_EQ(spec->args(0).value().data().size(), 1000u);
  EXPECT_EQ(tasks_.lineage_size(), 1u);
  EXPECT_GE(tasks_.lineage_bytes(), 1000u);

  tasks_.ReleaseLineage("ret-f");
  EXPECT_EQ(tasks_.Lineage("ret-f"), nullptr);
  EXPECT_EQ(tasks_.lineage_size(), 0u);
  EXPECT_EQ(tasks_.lineage_bytes(), 0u);
  EXPECT_EQ(spec->function_name(), "f") << "a spec handed out stays valid";
}

TEST_F(TaskManagerTest, NoLineageForErrorsActorCallsTasksWithoutRetriesOrResultsFreedAlready) {
  auto failed = Task("failed");
  auto errored = Task("errored");
  auto actor_call = Task("call");
  actor_call->spec.set_type(proto::TaskSpec::ACTOR_TASK);
  auto no_retries = Task("no_retries");
  auto unreferenced = Task("unreferenced");
  for (auto *task : {&failed, &errored, &actor_call, &unreferenced}) {
    (*task)->retries = RetryBudget(3);
  }
  sink_.freed_before.insert("ret-unreferenced");
  for (auto *task : {&failed, &errored, &actor_call, &no_retries, &unreferenced}) {
    ASSERT_TRUE(tasks_.Add(*task));
  }
  tasks_.Failed(*failed, ErrorInfo{ErrorType::kWorkerDied, "died", "", "", ""});
  proto::ObjectValue error;
  error.set_is_error(true);
  tasks_.Succeeded(*errored, error);
  tasks_.Succeeded(*actor_call, Value("1"));
  tasks_.Succeeded(*no_retries, Value("2"));
  tasks_.Succeeded(*unreferenced, Value("3"));
  EXPECT_EQ(tasks_.lineage_size(), 0u);
  EXPECT_EQ(tasks_.lineage_bytes(), 0u);
  EXPECT_EQ(sink_.reported, (std::set<std::string>{"ret-unreferenced"}))
      << "no free hook for results that keep no lineage";
}

TEST_F(TaskManagerTest, LineageBeyondItsBoundDropsTheOldestFirst) {
  TaskManager small(&sink_, /*max_lineage_bytes=*/3000);
  for (int i = 0; i < 5; ++i) {
    auto task = Task("t" + std::to_string(i));
    task->retries = RetryBudget(-1);
    task->spec.add_args()->mutable_value()->set_data(std::string(900, 'x'));
    ASSERT_TRUE(small.Add(task));
    small.Succeeded(*task, Value("v"));
    EXPECT_LE(small.lineage_bytes(), 3000u);
  }
  EXPECT_EQ(small.lineage_size(), 2u) << "each counts 900 bytes and a little more";
  EXPECT_EQ(small.Lineage("ret-t2"), nullptr);
  EXPECT_NE(small.Lineage("ret-t3"), nullptr);
  EXPECT_NE(small.Lineage("ret-t4"), nullptr);
  small.ReleaseLineage("ret-t3");
  EXPECT_EQ(small.lineage_size(), 1u);
}

}  // namespace
}  // namespace sunray
