// How actors fail and end: throwing constructors and methods, Kill,
// restarts, ExitActor, and retries of calls across a restart.
#include <atomic>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayActorException;
using ray::internal::RayTaskException;
using sunray_test::kTimeoutMs;
using sunray_test::Latch;
using sunray_test::Throws;

Latch gate;
Latch call_started;

class Tally {
 public:
  explicit Tally(int start) : value_(start) {}
  static Tally *Create(int start) { return new Tally(start); }
  static Tally *CreateFailing(std::string message) { throw std::runtime_error(message); }

  int Add(int x) { return value_ += x; }
  int Value() const { return value_; }
  int FailWith(std::string message) { throw std::invalid_argument(message); }
  int Exit() {
    ray::ExitActor();
    return -1;  // not reached
  }
  bool Restarted() { return ray::WasCurrentActorRestarted(); }
  // Signals that it runs, then blocks until the test opens the gate.
  int HoldUntilGate() {
    call_started.Release();
    gate.Wait();
    return value_;
  }

 private:
  int value_;
};

bool RestartedInTask() { return ray::WasCurrentActorRestarted(); }
void ExitActorInTask() { ray::ExitActor(); }

RAY_REMOTE(Tally::Create, Tally::CreateFailing, &Tally::Add, &Tally::Value, &Tally::FailWith,
           &Tally::Exit, &Tally::Restarted, &Tally::HoldUntilGate, RestartedInTask,
           ExitActorInTask);

class ActorLifecycleTest : public sunray_test::RuntimeTest {
 protected:
  // Every call's Get throws RayActorException.
  static void ExpectDead(ray::ActorHandle<Tally> &actor) {
    auto value = actor.Task(&Tally::Value).Remote();
    EXPECT_TRUE(Throws<RayActorException>([&] { value.Get(kTimeoutMs); }));
  }
};
SUNRAY_INSTANTIATE_RUNTIMES(ActorLifecycleTest);

// --- Errors ----------------------------------------------------------------

TEST_P(ActorLifecycleTest, ThrowingConstructorFailsEveryCall) {
  auto actor = ray::Actor(Tally::CreateFailing).Remote(std::string("no tally today"));
  auto first = actor.Task(&Tally::Value).Remote();
  auto second = actor.Task(&Tally::Add).Remote(1);
  EXPECT_TRUE(Throws<RayActorException>([&] { first.Get(kTimeoutMs); }, {"no tally today"}));
  EXPECT_TRUE(Throws<RayActorException>([&] { second.Get(kTimeoutMs); }, {"no tally today"}));
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, ThrowingMethodFailsOnlyThatCall) {
  auto actor = ray::Actor(Tally::Create).Remote(1);
  actor.Task(&Tally::Add).Remote(1);
  auto failed = actor.Task(&Tally::FailWith).Remote(std::string("bad input"));
  try {
    failed.Get(kTimeoutMs);
    ADD_FAILURE() << "no exception";
  } catch (const RayTaskException &e) {
    EXPECT_TRUE(sunray_test::Contains(e.what(), "bad input")) << e.what();
    EXPECT_TRUE(sunray_test::Contains(e.what(), "std::invalid_argument")) << e.what();
    EXPECT_EQ(e.FunctionName(), "&Tally::FailWith");
    EXPECT_EQ(e.ExceptionType(), "std::invalid_argument");
    EXPECT_EQ(e.ExceptionMessage(), "bad input");
  }
  // The actor and its state survive.
  EXPECT_EQ(*actor.Task(&Tally::Add).Remote(1).Get(kTimeoutMs), 3);
}

// --- Kill ------------------------------------------------------------------

TEST_P(ActorLifecycleTest, CallsAfterKillFail) {
  auto actor = ray::Actor(Tally::Create).Remote(1);
  EXPECT_EQ(*actor.Task(&Tally::Value).Remote().Get(kTimeoutMs), 1);
  actor.Kill();
  ExpectDead(actor);
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, CallsQueuedBeforeKillFail) {
  auto actor = ray::Actor(Tally::Create).Remote(1);
  auto running = actor.Task(&Tally::HoldUntilGate).Remote();
  ASSERT_TRUE(call_started.WaitFor(std::chrono::milliseconds(kTimeoutMs)));
  std::vector<ray::ObjectRef<int>> queued;
  for (int i = 0; i < 5; ++i) queued.push_back(actor.Task(&Tally::Add).Remote(1));
  actor.Kill();
  gate.Release();
  for (auto &call : queued) {
    EXPECT_TRUE(Throws<RayActorException>([&] { call.Get(kTimeoutMs); }));
  }
  // The call that was running when the actor died loses its result too.
  EXPECT_TRUE(Throws<RayActorException>([&] { running.Get(kTimeoutMs); }));
}

TEST_P(ActorLifecycleTest, KillWithoutRestartIgnoresMaxRestarts) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(5).Remote(1);
  actor.Kill(true);
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, KilledActorRestartsWithFreshState) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(1).Remote(10);
  EXPECT_EQ(*actor.Task(&Tally::Add).Remote(5).Get(kTimeoutMs), 15);
  EXPECT_FALSE(*actor.Task(&Tally::Restarted).Remote().Get(kTimeoutMs));
  actor.Kill(false);
  // The constructor ran again with the original arguments.
  EXPECT_EQ(*actor.Task(&Tally::Value).Remote().Get(kTimeoutMs), 10);
  EXPECT_TRUE(*actor.Task(&Tally::Restarted).Remote().Get(kTimeoutMs));
}

TEST_P(ActorLifecycleTest, KillBeyondMaxRestartsLeavesTheActorDead) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(1).Remote(1);
  actor.Kill(false);
  EXPECT_EQ(*actor.Task(&Tally::Value).Remote().Get(kTimeoutMs), 1);
  actor.Kill(false);
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, UnlimitedRestartsSurviveRepeatedKills) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(-1).Remote(2);
  for (int i = 0; i < 3; ++i) {
    actor.Kill(false);
    EXPECT_EQ(*actor.Task(&Tally::Add).Remote(1).Get(kTimeoutMs), 3) << "after kill " << i;
  }
}

TEST_P(ActorLifecycleTest, ActorWithoutRestartsDiesOnKillFalse) {
  auto actor = ray::Actor(Tally::Create).Remote(1);
  actor.Kill(false);
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, CallsQueuedAcrossARestartFailWithoutTaskRetries) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(1).Remote(1);
  auto running = actor.Task(&Tally::HoldUntilGate).Remote();
  ASSERT_TRUE(call_started.WaitFor(std::chrono::milliseconds(kTimeoutMs)));
  auto queued = actor.Task(&Tally::Add).Remote(1);
  actor.Kill(false);
  gate.Release();
  EXPECT_TRUE(Throws<RayActorException>([&] { queued.Get(kTimeoutMs); }));
  EXPECT_TRUE(Throws<RayActorException>([&] { running.Get(kTimeoutMs); }));
  EXPECT_EQ(*actor.Task(&Tally::Value).Remote().Get(kTimeoutMs), 1);
}

TEST_P(ActorLifecycleTest, CallsQueuedAcrossARestartRunAgainWithTaskRetries) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(1).SetMaxTaskRetries(1).Remote(1);
  auto running = actor.Task(&Tally::HoldUntilGate).Remote();
  ASSERT_TRUE(call_started.WaitFor(std::chrono::milliseconds(kTimeoutMs)));
  auto queued = actor.Task(&Tally::Add).Remote(5);
  actor.Kill(false);
  gate.Release();
  // Both calls ran (again) on the restarted actor, whose state starts at 1.
  EXPECT_EQ(*running.Get(kTimeoutMs), 1);
  EXPECT_EQ(*queued.Get(kTimeoutMs), 6);
  EXPECT_TRUE(*actor.Task(&Tally::Restarted).Remote().Get(kTimeoutMs));
}

TEST_P(ActorLifecycleTest, WasRestartedIsFalseOutsideActors) {
  EXPECT_FALSE(ray::WasCurrentActorRestarted());
  EXPECT_FALSE(*ray::Task(RestartedInTask).Remote().Get(kTimeoutMs));
}

// --- ExitActor -------------------------------------------------------------

TEST_P(ActorLifecycleTest, ExitActorFailsThatCallAndLaterOnes) {
  auto actor = ray::Actor(Tally::Create).Remote(1);
  EXPECT_EQ(*actor.Task(&Tally::Add).Remote(1).Get(kTimeoutMs), 2);
  auto exiting = actor.Task(&Tally::Exit).Remote();
  EXPECT_TRUE(Throws<RayActorException>([&] { exiting.Get(kTimeoutMs); }));
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, ExitedActorIsNotRestarted) {
  auto actor = ray::Actor(Tally::Create).SetMaxRestarts(3).Remote(1);
  auto exiting = actor.Task(&Tally::Exit).Remote();
  EXPECT_TRUE(Throws<RayActorException>([&] { exiting.Get(kTimeoutMs); }));
  ExpectDead(actor);
}

TEST_P(ActorLifecycleTest, ExitActorOnTheDriverThrowsLogicError) {
  EXPECT_THROW(ray::ExitActor(), std::logic_error);
}

TEST_P(ActorLifecycleTest, ExitActorInANormalTaskFailsTheTask) {
  auto result = ray::Task(ExitActorInTask).Remote();
  EXPECT_TRUE(Throws<RayTaskException>([&] { result.Get(kTimeoutMs); }, {"std::logic_error"}));
}

}  // namespace
