// Sunray's extensions (scheduling strategies, ray::Cancel,
// ray::GetRuntimeContext) and the cross-language stubs.
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using ray::internal::TaskCancelledException;
using ray::internal::TaskUnschedulableException;
using sunray_test::kTimeoutMs;
using sunray_test::Latch;
using sunray_test::Throws;

Latch gate;
Latch started;

int Increment(int x) { return x + 1; }
int HoldGate(int x) {
  started.Release();
  gate.Wait();
  return x;
}
// Which context a task sees: {job, task, actor, node, namespace}.
std::vector<std::string> TaskContext() {
  auto context = ray::GetRuntimeContext();
  return {context.GetJobId(), context.GetTaskId(), context.GetActorId(), context.GetNodeId(),
          context.GetNamespace()};
}

class Probe {
 public:
  static Probe *Create() { return new Probe(); }
  std::vector<std::string> Context() { return TaskContext(); }
  int Hold(int x) { return HoldGate(x); }
  int Echo(int x) { return x; }
};

RAY_REMOTE(Increment, HoldGate, TaskContext, Probe::Create, &Probe::Context, &Probe::Hold,
           &Probe::Echo);

class ExtensionTest : public sunray_test::RuntimeTest {};
SUNRAY_INSTANTIATE_RUNTIMES(ExtensionTest);

// --- Scheduling strategies -------------------------------------------------

TEST_P(ExtensionTest, HardAffinityToThisNodeRuns) {
  const std::string node = ray::GetRuntimeContext().GetNodeId();
  auto result = ray::Task(Increment)
                    .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{node, false})
                    .Remote(1);
  EXPECT_EQ(*result.Get(kTimeoutMs), 2);
}

TEST_P(ExtensionTest, HardAffinityToAnUnknownNodeIsUnschedulable) {
  auto result =
      ray::Task(Increment)
          .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{std::string(56, 'f'), false})
          .Remote(1);
  EXPECT_TRUE(Throws<TaskUnschedulableException>([&] { result.Get(kTimeoutMs); }));
}

TEST_P(ExtensionTest, SoftAffinityToAnUnknownNodeRunsElsewhere) {
  auto result =
      ray::Task(Increment)
          .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{std::string(56, 'f'), true})
          .Remote(1);
  EXPECT_EQ(*result.Get(kTimeoutMs), 2);
}

TEST_P(ExtensionTest, SpreadAndDefaultStrategiesRun) {
  EXPECT_EQ(*ray::Task(Increment)
                 .SetSchedulingStrategy(ray::SpreadSchedulingStrategy{})
                 .Remote(1)
                 .Get(kTimeoutMs),
            2);
  EXPECT_EQ(*ray::Task(Increment)
                 .SetSchedulingStrategy(ray::DefaultSchedulingStrategy{})
                 .Remote(2)
                 .Get(kTimeoutMs),
            3);
}

TEST_P(ExtensionTest, ALabelSelectorMatchingThisNodeRuns) {
  const std::string node = ray::GetRuntimeContext().GetNodeId();
  auto result = ray::Task(Increment).SetLabelSelector({{"ray.io/node_id", node}}).Remote(1);
  EXPECT_EQ(*result.Get(kTimeoutMs), 2);
  auto listed =
      ray::Task(Increment)
          .SetLabelSelector({{"ray.io/node_id", "in(" + std::string(56, 'f') + ", " + node + ")"}})
          .Remote(2);
  EXPECT_EQ(*listed.Get(kTimeoutMs), 3);
  auto actor = ray::Actor(Probe::Create)
                   .SetLabelSelector({{"ray.io/node_id", "!" + std::string(56, 'f')}})
                   .Remote();
  EXPECT_EQ(*actor.Task(&Probe::Echo).Remote(3).Get(kTimeoutMs), 3);
}

TEST_P(ExtensionTest, AMalformedLabelSelectorIsUnschedulableNamingTheTerm) {
  auto result = ray::Task(Increment).SetLabelSelector({{"zone", "in(a,"}}).Remote(1);
  try {
    result.Get(kTimeoutMs);
    ADD_FAILURE() << "no exception";
  } catch (const TaskUnschedulableException &e) {
    EXPECT_NE(std::string(e.what()).find("label selector \"zone\""), std::string::npos) << e.what();
  }
  EXPECT_THROW(ray::Actor(Probe::Create).SetLabelSelector({{"", "a"}}).Remote(),
               ray::internal::RayActorException);
}

TEST_P(ExtensionTest, ActorAcceptsSchedulingStrategies) {
  const std::string node = ray::GetRuntimeContext().GetNodeId();
  auto pinned = ray::Actor(Probe::Create)
                    .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{node, false})
                    .Remote();
  auto spread =
      ray::Actor(Probe::Create).SetSchedulingStrategy(ray::SpreadSchedulingStrategy{}).Remote();
  EXPECT_EQ(*pinned.Task(&Probe::Echo).Remote(1).Get(kTimeoutMs), 1);
  EXPECT_EQ(*spread.Task(&Probe::Echo).Remote(2).Get(kTimeoutMs), 2);
}

// --- Cancel ----------------------------------------------------------------

TEST_P(ExtensionTest, CancelledWaitingTaskFailsWithTaskCancelled) {
  auto blocker = ray::Task(HoldGate).Remote(1);
  auto waiting = ray::Task(Increment).Remote(blocker);
  ray::Cancel(waiting);
  EXPECT_TRUE(Throws<TaskCancelledException>([&] { waiting.Get(kTimeoutMs); }));
  gate.Release();
  EXPECT_EQ(*blocker.Get(kTimeoutMs), 1);
  // Still cancelled after its dependency became ready.
  EXPECT_TRUE(Throws<TaskCancelledException>([&] { waiting.Get(kTimeoutMs); }));
}

TEST_P(ExtensionTest, CancelOfAFinishedTaskKeepsItsValue) {
  auto done = ray::Task(Increment).Remote(4);
  ASSERT_EQ(*done.Get(kTimeoutMs), 5);
  ray::Cancel(done);
  EXPECT_EQ(*done.Get(kTimeoutMs), 5);
}

TEST_P(ExtensionTest, CancelWithoutForceLetsARunningTaskFinish) {
  auto running = ray::Task(HoldGate).Remote(7);
  ASSERT_TRUE(started.WaitFor(std::chrono::milliseconds(kTimeoutMs)));
  ray::Cancel(running, /*force=*/false);
  gate.Release();
  EXPECT_EQ(*running.Get(kTimeoutMs), 7);
}

TEST_P(ExtensionTest, CancelledQueuedActorCallFailsWithTaskCancelled) {
  auto actor = ray::Actor(Probe::Create).Remote();
  auto running = actor.Task(&Probe::Hold).Remote(1);
  ASSERT_TRUE(started.WaitFor(std::chrono::milliseconds(kTimeoutMs)));
  auto queued = actor.Task(&Probe::Echo).Remote(2);
  auto after = actor.Task(&Probe::Echo).Remote(3);
  ray::Cancel(queued);
  gate.Release();
  EXPECT_TRUE(Throws<TaskCancelledException>([&] { queued.Get(kTimeoutMs); }));
  EXPECT_EQ(*running.Get(kTimeoutMs), 1);
  EXPECT_EQ(*after.Get(kTimeoutMs), 3);
}

// --- Runtime context -------------------------------------------------------

TEST_P(ExtensionTest, DriverContextHasJobNodeAndTask) {
  auto context = ray::GetRuntimeContext();
  EXPECT_TRUE(sunray_test::IsHex(context.GetJobId())) << context.GetJobId();
  EXPECT_TRUE(sunray_test::IsHex(context.GetNodeId())) << context.GetNodeId();
  EXPECT_TRUE(context.GetActorId().empty());
  EXPECT_EQ(context.GetNamespace(), ray::GetNamespace());
  EXPECT_FALSE(context.WasCurrentActorRestarted());
}

TEST_P(ExtensionTest, TaskContextDiffersFromTheDriversOnlyInTheTask) {
  auto driver = ray::GetRuntimeContext();
  auto task = *ray::Task(TaskContext).Remote().Get(kTimeoutMs);
  ASSERT_EQ(task.size(), 5u);
  EXPECT_EQ(task[0], driver.GetJobId());
  EXPECT_TRUE(sunray_test::IsHex(task[1])) << task[1];
  EXPECT_NE(task[1], driver.GetTaskId());
  EXPECT_TRUE(task[2].empty()) << task[2];
  EXPECT_TRUE(sunray_test::IsHex(task[3])) << task[3];
  EXPECT_EQ(task[4], ray::GetNamespace());
  // Each task has its own id.
  auto other = *ray::Task(TaskContext).Remote().Get(kTimeoutMs);
  EXPECT_NE(other[1], task[1]);
}

TEST_P(ExtensionTest, ActorMethodContextNamesTheActor) {
  auto actor = ray::Actor(Probe::Create).Remote();
  auto other = ray::Actor(Probe::Create).Remote();
  auto first = *actor.Task(&Probe::Context).Remote().Get(kTimeoutMs);
  auto second = *actor.Task(&Probe::Context).Remote().Get(kTimeoutMs);
  auto elsewhere = *other.Task(&Probe::Context).Remote().Get(kTimeoutMs);
  EXPECT_TRUE(sunray_test::IsHex(first[2])) << first[2];
  EXPECT_EQ(first[2], second[2]);
  EXPECT_NE(first[2], elsewhere[2]);
  EXPECT_EQ(first[0], ray::GetRuntimeContext().GetJobId());
  EXPECT_EQ(first[4], ray::GetNamespace());
}

TEST_P(ExtensionTest, ContextNamespaceFollowsTheConfiguredNamespace) {
  ray::Shutdown();
  auto config = sunray_test::ConfigFor(GetParam());
  config.ray_namespace = "context_ns";
  ray::Init(config);
  EXPECT_EQ(ray::GetRuntimeContext().GetNamespace(), "context_ns");
  EXPECT_EQ((*ray::Task(TaskContext).Remote().Get(kTimeoutMs))[4], "context_ns");
}

// --- Cross-language stubs --------------------------------------------------

TEST_P(ExtensionTest, PythonCallsAreNotSupported) {
  EXPECT_TRUE(Throws<RayException>(
      [] {
        ray::Task(ray::PyFunction<int>{"module", "function"}).Remote(1);
      },
      {"not supported"}));
  EXPECT_TRUE(Throws<RayException>(
      [] {
        ray::Actor(ray::PyActorClass{"module", "Counter"}).Remote();
      },
      {"not supported"}));
  ray::ActorHandleXlang handle(std::string(16, '\x01'));
  EXPECT_TRUE(Throws<RayException>(
      [&] { handle.Task(ray::PyActorMethod<int>{"increase"}).Remote(1); }, {"not supported"}));
}

TEST_P(ExtensionTest, JavaCallsAreNotSupported) {
  EXPECT_TRUE(Throws<RayException>(
      [] {
        ray::Task(ray::JavaFunction<int>{"io.ray.Test", "add"}).Remote(1, 2);
      },
      {"not supported"}));
  EXPECT_TRUE(Throws<RayException>(
      [] { ray::Actor(ray::JavaActorClass{"io.ray.test.Counter"}).Remote(1); }, {"not supported"}));
  ray::ActorHandleXlang handle(std::string(16, '\x01'));
  EXPECT_TRUE(Throws<RayException>(
      [&] { handle.Task(ray::JavaActorMethod<int>{"increase"}).Remote(); }, {"not supported"}));
}

TEST_P(ExtensionTest, CrossLanguageGetActorFindsNamedActors) {
  auto actor = ray::Actor(Probe::Create).SetName("xlang_visible").Remote();
  auto found = ray::GetActor("xlang_visible");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), actor.ID());
  EXPECT_FALSE(ray::GetActor("xlang_missing").has_value());
  EXPECT_FALSE(ray::GetActor("").has_value());
}

}  // namespace
