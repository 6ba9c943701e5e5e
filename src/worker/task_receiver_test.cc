// The task receiver against a fake runner: arrival order, each caller's
// order for actor calls, cancels before and after a task arrives, bounces
// while the running task is blocked, a concurrent actor's owned threads,
// and ExitActor after its answer — with no process and no socket.
#include "src/worker/task_receiver.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "src/core/execution_context.h"
#include "src/core/object_error.h"
#include "src/core/schedulable.h"

namespace sunray {
namespace {

constexpr absl::Duration kWait = absl::Seconds(10);

class FakeRunner : public TaskRunner {
 public:
  ExecutionResult Run(const proto::TaskSpec &spec, void *instance) override {
    absl::Notification *gate = nullptr;
    std::function<void()> hook;
    {
      absl::MutexLock lock(&mu);
      ran.push_back(spec.return_id());
      instances.push_back(instance);
      const ExecutionContext *context = CurrentExecutionContext();
      in_actor.push_back(context != nullptr && context->in_actor);
      ++running;
      max_running = std::max(max_running, running);
      if (auto it = gates.find(spec.return_id()); it != gates.end()) gate = it->second;
      if (auto it = on_run.find(spec.return_id()); it != on_run.end()) hook = it->second;
    }
    if (hook) hook();
    if (gate != nullptr) {
      EXPECT_TRUE(gate->WaitForNotificationWithTimeout(kWait));
    }
    ExecutionResult result;
    result.data.write(spec.function_name().data(), spec.function_name().size());
    result.exit_actor = spec.function_name() == "exit";
    absl::MutexLock lock(&mu);
    --running;
    return result;
  }
  ExecutionResult Create(const proto::TaskSpec &spec, void **instance,
                         ray::internal::ActorDeleter *deleter) override {
    ExecutionResult result;
    if (spec.function_name() == "failing") {
      result.error = ErrorInfo{ErrorType::kTaskExecution, "the constructor threw", "", "", ""};
      return result;
    }
    *instance = new int(7);
    *deleter = [](void *p) {
      delete static_cast<int *>(p);
      ++deleted;
    };
    return result;
  }
  void Encode(const proto::TaskSpec &, ExecutionResult result, proto::ObjectValue *out) override {
    if (result.error) {
      out->set_is_error(true);
      ErrorToProto(*result.error, out->mutable_error());
    } else {
      out->set_data(result.data.data(), result.data.size());
    }
  }
  void FinishActorExit(const std::string &actor_id) override {
    absl::MutexLock lock(&mu);
    exited_actor = actor_id;
  }
  void ForceExit() override { ++force_exits; }

  absl::Mutex mu;
  std::vector<std::string> ran;
  std::vector<void *> instances;
  std::vector<bool> in_actor;
  int running = 0;
  int max_running = 0;
  std::map<std::string, absl::Notification *> gates;  // set before the task runs
  std::map<std::string, std::function<void()>> on_run;
  std::string exited_actor;
  std::atomic<int> force_exits{0};
  static inline std::atomic<int> deleted{0};
};

// A task as an owner pushes it, and its answer once sent.
struct Pushed {
  proto::TaskSpec spec;
  proto::PushTaskReply reply;
  absl::Notification answered;
  std::function<void()> after_sent;
};

class TaskReceiverTest : public ::testing::Test {
 protected:
  ~TaskReceiverTest() override {
    receiver_.Stop();
    if (run_thread_.joinable()) run_thread_.join();
  }

  void StartRunning() {
    run_thread_ = std::thread([this] { receiver_.Run(); });
  }

  Pushed &Push(proto::TaskSpec::Type type, const std::string &return_id,
               const std::string &function = "f", const std::string &caller = "",
               int64_t sequence = 0, int max_concurrency = 0) {
    auto pushed = std::make_unique<Pushed>();
    pushed->spec.set_type(type);
    pushed->spec.set_return_id(return_id);
    pushed->spec.set_function_name(function);
    pushed->spec.set_caller_id(caller);
    pushed->spec.set_sequence_number(sequence);
    pushed->spec.set_max_concurrency(max_concurrency);  // before the receiver can read it
    if (type != proto::TaskSpec::NORMAL) pushed->spec.set_actor_id(std::string(16, 'a'));
    Pushed *raw = pushed.get();
    pushed_.push_back(std::move(pushed));
    receiver_.Receive(raw->spec, &raw->reply, [raw](std::function<void()> after_sent) {
      raw->after_sent = std::move(after_sent);
      raw->answered.Notify();
    });
    return *raw;
  }

  Pushed &CreateActor(int max_concurrency = 1, const std::string &function = "Counter") {
    return Push(proto::TaskSpec::ACTOR_CREATION, "create", function, "", 0, max_concurrency);
  }

  // `id` waits for `gate` (if any) when it runs, after calling `hook`.
  void Gate(const std::string &id, absl::Notification *gate, std::function<void()> hook = nullptr) {
    absl::MutexLock lock(&runner_.mu);
    if (gate != nullptr) runner_.gates[id] = gate;
    if (hook) runner_.on_run[id] = std::move(hook);
  }

  std::vector<std::string> Ran() {
    absl::MutexLock lock(&runner_.mu);
    return runner_.ran;
  }

  FakeRunner runner_;
  TaskReceiver receiver_{&runner_};
  std::thread run_thread_;
  std::deque<std::unique_ptr<Pushed>> pushed_;
};

TEST_F(TaskReceiverTest, NormalTasksRunInArrivalOrderOnTheThreadThatCallsRun) {
  Pushed &a = Push(proto::TaskSpec::NORMAL, "a", "fa");
  Pushed &b = Push(proto::TaskSpec::NORMAL, "b", "fb");
  Pushed &c = Push(proto::TaskSpec::NORMAL, "c", "fc");
  EXPECT_TRUE(Ran().empty()) << "nothing runs before Run";
  StartRunning();
  for (Pushed *pushed : {&a, &b, &c})
    ASSERT_TRUE(pushed->answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(Ran(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(a.reply.result().data(), "fa");
  EXPECT_EQ(c.reply.result().data(), "fc");
  EXPECT_FALSE(runner_.in_actor[0]);
}

TEST_F(TaskReceiverTest, ActorCallsRunInEachCallersOrderWhateverOrderTheyArriveIn) {
  // (Calls come once the actor's creation was answered: the control
  // service makes it ALIVE on that answer.)
  Pushed &created = CreateActor();
  StartRunning();
  ASSERT_TRUE(created.answered.WaitForNotificationWithTimeout(kWait));
  absl::Notification gate;
  Gate("y0", &gate);  // holds the execution thread while the others arrive
  Push(proto::TaskSpec::ACTOR_TASK, "y0", "m", "caller-y", 0);
  Push(proto::TaskSpec::ACTOR_TASK, "x2", "m", "caller-x", 2);
  Push(proto::TaskSpec::ACTOR_TASK, "x0", "m", "caller-x", 0);
  Pushed &x1 = Push(proto::TaskSpec::ACTOR_TASK, "x1", "m", "caller-x", 1);
  gate.Notify();
  ASSERT_TRUE(x1.answered.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(pushed_[2]->answered.WaitForNotificationWithTimeout(kWait));
  std::vector<std::string> ran = Ran();
  ASSERT_EQ(ran.size(), 4u);
  auto at = [&](const std::string &id) { return std::find(ran.begin(), ran.end(), id); };
  EXPECT_LT(at("x0"), at("x1"));
  EXPECT_LT(at("x1"), at("x2"));
  absl::MutexLock lock(&runner_.mu);
  for (void *instance : runner_.instances) EXPECT_NE(instance, nullptr);
  for (bool in_actor : runner_.in_actor) EXPECT_TRUE(in_actor);
}

TEST_F(TaskReceiverTest, ACallForAnActorThisWorkerDoesNotHostIsAnsweredActorDied) {
  Pushed &call = Push(proto::TaskSpec::ACTOR_TASK, "c0", "m", "caller", 0);
  StartRunning();
  ASSERT_TRUE(call.answered.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(call.reply.result().is_error());
  EXPECT_EQ(ErrorFromProto(call.reply.result().error()).type, ErrorType::kActorDied);
  EXPECT_NE(call.reply.result().error().message().find("not hosted"), std::string::npos);
  EXPECT_TRUE(Ran().empty());
}

TEST_F(TaskReceiverTest, AFailedConstructorHostsNoActorAndLaterCallsAreAnsweredActorDied) {
  Pushed &created = CreateActor(1, "failing");
  Pushed &call = Push(proto::TaskSpec::ACTOR_TASK, "c0", "m", "caller", 0);
  StartRunning();
  ASSERT_TRUE(call.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(created.reply.result().is_error());
  EXPECT_EQ(ErrorFromProto(call.reply.result().error()).type, ErrorType::kActorDied);
  EXPECT_EQ(receiver_.extra_threads(), 0u);
}

TEST_F(TaskReceiverTest, ASecondCreationIsRefusedAndTheFirstActorStays) {
  Pushed &first = CreateActor();
  Pushed &second = Push(proto::TaskSpec::ACTOR_CREATION, "create-again", "Counter");
  Pushed &call = Push(proto::TaskSpec::ACTOR_TASK, "c0", "m", "caller", 0);
  StartRunning();
  ASSERT_TRUE(call.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(first.reply.result().is_error());
  ASSERT_TRUE(second.reply.result().is_error());
  EXPECT_NE(second.reply.result().error().message().find("hosts an actor already"),
            std::string::npos);
  EXPECT_FALSE(call.reply.result().is_error());
}

TEST_F(TaskReceiverTest, AWaitingTaskCancelledIsAnsweredCancelledWithoutRunning) {
  absl::Notification gate;
  Gate("first", &gate);
  Pushed &first = Push(proto::TaskSpec::NORMAL, "first");
  Pushed &second = Push(proto::TaskSpec::NORMAL, "second");
  StartRunning();
  EXPECT_TRUE(receiver_.Cancel("second", /*force=*/false));
  gate.Notify();
  ASSERT_TRUE(second.answered.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(first.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(first.reply.result().is_error());
  ASSERT_TRUE(second.reply.result().is_error());
  EXPECT_EQ(ErrorFromProto(second.reply.result().error()).type, ErrorType::kTaskCancelled);
  EXPECT_EQ(Ran(), (std::vector<std::string>{"first"}));
}

TEST_F(TaskReceiverTest, ACancelThatOvertakesItsTaskCancelsItWhenItComes) {
  EXPECT_FALSE(receiver_.Cancel("late", /*force=*/false));
  Pushed &late = Push(proto::TaskSpec::NORMAL, "late");
  StartRunning();
  ASSERT_TRUE(late.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(ErrorFromProto(late.reply.result().error()).type, ErrorType::kTaskCancelled);
  EXPECT_TRUE(Ran().empty());
}

TEST_F(TaskReceiverTest, OnlyTheNewestEarlyCancelsAreRemembered) {
  for (int i = 0; i < 1100; ++i) EXPECT_FALSE(receiver_.Cancel("old-" + std::to_string(i), false));
  Pushed &oldest = Push(proto::TaskSpec::NORMAL, "old-0");
  Pushed &newest = Push(proto::TaskSpec::NORMAL, "old-1099");
  StartRunning();
  ASSERT_TRUE(newest.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(oldest.reply.result().is_error()) << "forgotten, so it ran";
  EXPECT_TRUE(newest.reply.result().is_error());
}

TEST_F(TaskReceiverTest, ForceCancelEndsTheProcessForARunningTaskButNotForAnActorCall) {
  absl::Notification gate, started;
  Gate("task", &gate, [&] { started.Notify(); });
  Pushed &task = Push(proto::TaskSpec::NORMAL, "task");
  StartRunning();
  ASSERT_TRUE(started.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(receiver_.Cancel("task", /*force=*/false));
  EXPECT_EQ(runner_.force_exits, 0) << "without force a running task is left alone";
  EXPECT_TRUE(receiver_.Cancel("task", /*force=*/true));
  EXPECT_EQ(runner_.force_exits, 1);
  gate.Notify();
  ASSERT_TRUE(task.answered.WaitForNotificationWithTimeout(kWait));

  absl::Notification call_gate, call_started;
  Gate("call", &call_gate, [&] { call_started.Notify(); });
  Pushed &created = CreateActor();
  Pushed &call = Push(proto::TaskSpec::ACTOR_TASK, "call", "m", "caller", 0);
  ASSERT_TRUE(call_started.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(created.answered.HasBeenNotified());
  EXPECT_TRUE(receiver_.Cancel("call", /*force=*/true));
  EXPECT_EQ(runner_.force_exits, 1) << "ending the process would end the actor";
  call_gate.Notify();
  ASSERT_TRUE(call.answered.WaitForNotificationWithTimeout(kWait));
}

TEST_F(TaskReceiverTest, WhileTheRunningTaskIsBlockedWaitingAndNewTasksGoBackBounced) {
  absl::Notification gate, blocked;
  Gate("outer", &gate, [&] {
    receiver_.SetBlocked(true);
    blocked.Notify();
  });
  Pushed &outer = Push(proto::TaskSpec::NORMAL, "outer");
  Pushed &waiting = Push(proto::TaskSpec::NORMAL, "waiting");
  StartRunning();
  ASSERT_TRUE(blocked.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(waiting.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(waiting.reply.bounced());
  Pushed &arriving = Push(proto::TaskSpec::NORMAL, "arriving");
  ASSERT_TRUE(arriving.answered.HasBeenNotified()) << "bounced at once";
  EXPECT_TRUE(arriving.reply.bounced());
  EXPECT_FALSE(receiver_.Cancel("waiting", false)) << "not held here any more";

  receiver_.SetBlocked(false);
  Pushed &after = Push(proto::TaskSpec::NORMAL, "after");
  gate.Notify();
  ASSERT_TRUE(after.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_FALSE(after.reply.bounced());
  ASSERT_TRUE(outer.answered.HasBeenNotified());
  EXPECT_EQ(Ran(), (std::vector<std::string>{"outer", "after"}));
}

TEST_F(TaskReceiverTest, AConcurrentActorRunsCallsAtOnceOnThreadsStopJoins) {
  Pushed &created = CreateActor(/*max_concurrency=*/3);
  StartRunning();
  ASSERT_TRUE(created.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_EQ(receiver_.extra_threads(), 2u);
  absl::Notification gate;
  std::atomic<int> started{0};
  absl::Notification all_started;
  for (const char *id : {"c0", "c1", "c2"}) {
    Gate(id, &gate, [&] {
      if (++started == 3) all_started.Notify();
    });
  }
  Push(proto::TaskSpec::ACTOR_TASK, "c0", "m", "caller", 0);
  Push(proto::TaskSpec::ACTOR_TASK, "c1", "m", "caller", 1);
  Push(proto::TaskSpec::ACTOR_TASK, "c2", "m", "caller", 2);
  ASSERT_TRUE(all_started.WaitForNotificationWithTimeout(kWait)) << "three calls at once";
  gate.Notify();
  for (size_t i = 1; i < pushed_.size(); ++i) {
    ASSERT_TRUE(pushed_[i]->answered.WaitForNotificationWithTimeout(kWait));
  }
  EXPECT_EQ(runner_.max_running, 3);
  receiver_.Stop();
  EXPECT_EQ(receiver_.extra_threads(), 0u) << "joined";
}

TEST_F(TaskReceiverTest, AConcurrencyOverTheLimitHostsNoActorAndStartsNoThread) {
  Pushed &created = CreateActor(kMaxActorConcurrency + 1);
  StartRunning();
  ASSERT_TRUE(created.answered.WaitForNotificationWithTimeout(kWait));
  ASSERT_TRUE(created.reply.result().is_error());
  EXPECT_NE(created.reply.result().error().message().find("over the limit"), std::string::npos);
  EXPECT_EQ(receiver_.extra_threads(), 0u);
}

TEST_F(TaskReceiverTest, ExitActorEndsTheProcessOnlyAfterItsAnswerIsSent) {
  CreateActor();
  Pushed &exit = Push(proto::TaskSpec::ACTOR_TASK, "exit-call", "exit", "caller", 0);
  StartRunning();
  ASSERT_TRUE(exit.answered.WaitForNotificationWithTimeout(kWait));
  EXPECT_TRUE(exit.reply.actor_exiting());
  ASSERT_TRUE(exit.after_sent) << "the exit waits for the answer to be written";
  absl::SleepFor(absl::Milliseconds(50));  // (a chance to exit too early)
  {
    absl::MutexLock lock(&runner_.mu);
    EXPECT_TRUE(runner_.exited_actor.empty());
  }
  exit.after_sent();  // written, as the stream's thread would say
  absl::MutexLock lock(&runner_.mu);
  EXPECT_TRUE(runner_.mu.AwaitWithTimeout(
      absl::Condition(
          +[](std::string *id) { return !id->empty(); }, &runner_.exited_actor),
      kWait));
  EXPECT_EQ(runner_.exited_actor, std::string(16, 'a'));
}

TEST_F(TaskReceiverTest, TheHostedActorIsDeletedWithTheReceiver) {
  const int before = FakeRunner::deleted;
  {
    FakeRunner runner;
    TaskReceiver receiver(&runner);
    proto::TaskSpec spec;
    spec.set_type(proto::TaskSpec::ACTOR_CREATION);
    spec.set_return_id("create");
    proto::PushTaskReply reply;
    absl::Notification answered;
    receiver.Receive(spec, &reply, [&](std::function<void()>) { answered.Notify(); });
    std::thread run([&] { receiver.Run(); });
    ASSERT_TRUE(answered.WaitForNotificationWithTimeout(kWait));
    receiver.Stop();
    run.join();
  }
  EXPECT_EQ(FakeRunner::deleted, before + 1);
}

}  // namespace
}  // namespace sunray
