// The actor-task submitter against fakes of the task streams, the actor
// directory and the runtime: per-actor order and sequence numbers, resends
// after a restart, deaths, ExitActor, stale answers, cancel, the creation
// task's references and shutdown, with no process and no socket.
#include "src/worker/actor_task_submitter.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "src/common/id.h"
#include "src/worker/submitter_fakes.h"

namespace sunray {
namespace {

class FakeDirectory : public ActorDirectory {
 public:
  void Watch(const std::string &actor_id) override { watched.push_back(actor_id); }
  std::vector<std::string> watched;
};

constexpr char kActor[] = "actor-1";

class ActorTaskSubmitterTest : public ::testing::Test {
 protected:
  ActorTaskSubmitterTest()
      : submitter_(&streams_, &outcomes_, &directory_, [this](const std::vector<std::string> &ids) {
          released_.insert(released_.end(), ids.begin(), ids.end());
        }) {}

  // A call named `name` (returning "ret-<name>"), its arguments resolved
  // unless told otherwise.
  std::shared_ptr<PendingTask> Call(const std::string &name, bool resolve = true) {
    auto task = std::make_shared<PendingTask>();
    task->spec.set_function_name(name);
    task->spec.set_return_id("ret-" + name);
    task->spec.set_actor_id(kActor);
    EXPECT_TRUE(submitter_.Add(task));
    if (resolve) submitter_.ArgumentsResolved(task, std::nullopt);
    return task;
  }
  // The actor's state `version`: alive at incarnation `n` ("actor-at-n").
  void Alive(int64_t version, int n, int max_task_retries = 0) {
    proto::ActorInfo info;
    info.set_actor_id(kActor);
    info.set_class_name("Counter");
    info.set_state(proto::ActorInfo::ALIVE);
    info.set_version(version);
    info.set_address("actor-at-" + std::to_string(n));
    info.set_task_address("tasks-at-" + std::to_string(n));
    info.set_max_task_retries(max_task_retries);
    submitter_.OnActorInfo(kActor, info);
  }
  void State(int64_t version, proto::ActorInfo::State state) {
    proto::ActorInfo info;
    info.set_actor_id(kActor);
    info.set_state(state);
    info.set_version(version);
    submitter_.OnActorInfo(kActor, info);
  }
  // This process creates the actor (so its states are taken before any
  // call), and the control service has accepted it.
  void Create() {
    ASSERT_TRUE(submitter_.AddCreating(kActor, "Counter"));
    submitter_.Created(kActor, {});
  }
  FakeStream &Stream(size_t index) { return *streams_.opened.at(index); }

  FakeStreams streams_;
  FakeOutcomes outcomes_;
  FakeDirectory directory_;
  std::vector<std::string> released_;
  ActorTaskSubmitter submitter_;
};

TEST_F(ActorTaskSubmitterTest, CallsWaitForTheActorThenGoInOrderOnOneStream) {
  Call("a");
  Call("b");
  Call("c");
  EXPECT_EQ(directory_.watched, std::vector<std::string>{kActor}) << "watched once, on first use";
  EXPECT_TRUE(streams_.opened.empty()) << "nothing is sent before the actor's state is known";
  EXPECT_EQ(submitter_.counts(kActor).queued, 3u);

  Alive(1, 1);
  ASSERT_EQ(streams_.opened.size(), 1u);
  EXPECT_EQ(Stream(0).address, "tasks-at-1");
  EXPECT_EQ(Stream(0).sent, (std::vector<std::string>{"ret-a", "ret-b", "ret-c"}));
  EXPECT_EQ(Stream(0).sequence_numbers, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(submitter_.counts(kActor).in_flight, 3u);

  Stream(0).Answer("ret-b", "B");
  Stream(0).Answer("ret-b", "again");  // a duplicate answer is ignored
  EXPECT_EQ(outcomes_.values["ret-b"], "B");
  Call("d");
  EXPECT_EQ(Stream(0).sequence_numbers.back(), 3) << "numbers go on on the same incarnation";
  EXPECT_EQ(streams_.opened.size(), 1u);
}

TEST_F(ActorTaskSubmitterTest, AnUnresolvedCallHoldsBackTheCallsAfterIt) {
  Create();
  Alive(1, 1);
  auto first = Call("a", /*resolve=*/false);
  Call("b");
  EXPECT_TRUE(streams_.opened.empty());
  submitter_.ArgumentsResolved(first, std::nullopt);
  ASSERT_EQ(streams_.opened.size(), 1u);
  EXPECT_EQ(Stream(0).sent, (std::vector<std::string>{"ret-a", "ret-b"}));
}

TEST_F(ActorTaskSubmitterTest, ACallWhoseArgumentFailedFailsInItsTurnAndTakesNoNumber) {
  Create();
  Alive(1, 1);
  auto first = Call("a", /*resolve=*/false);
  Call("b");
  submitter_.ArgumentsResolved(first,
                               ErrorInfo{ErrorType::kTaskExecution, "arg broke", "", "", ""});
  EXPECT_EQ(outcomes_.errors["ret-a"].message, "arg broke");
  ASSERT_EQ(streams_.opened.size(), 1u);
  EXPECT_EQ(Stream(0).sent, std::vector<std::string>{"ret-b"});
  EXPECT_EQ(Stream(0).sequence_numbers, std::vector<int64_t>{0});
}

TEST_F(ActorTaskSubmitterTest, ARestartResendsTheUnansweredCallsInOrderFromNumberZero) {
  Create();
  Alive(1, 1, /*max_task_retries=*/1);
  Call("a");
  Call("b");
  Call("c");
  Stream(0).Answer("ret-a", "A");
  Stream(0).End(absl::UnavailableError("connection reset"));
  EXPECT_FALSE(outcomes_.settled("ret-b"));
  Call("d");
  EXPECT_EQ(streams_.opened.size(), 1u) << "held until the directory says where the actor is";
  EXPECT_EQ(submitter_.counts(kActor).queued, 3u);

  State(2, proto::ActorInfo::RESTARTING);
  EXPECT_EQ(streams_.opened.size(), 1u);
  Alive(3, 2, 1);
  ASSERT_EQ(streams_.opened.size(), 2u);
  EXPECT_EQ(Stream(1).address, "tasks-at-2");
  EXPECT_EQ(Stream(1).sent, (std::vector<std::string>{"ret-b", "ret-c", "ret-d"}));
  EXPECT_EQ(Stream(1).sequence_numbers, (std::vector<int64_t>{0, 1, 2}));

  // The second loss is past max_task_retries for b and c, not for d.
  Stream(1).End(absl::UnavailableError("gone again"));
  EXPECT_EQ(outcomes_.errors["ret-b"].type, ErrorType::kActorDied);
  EXPECT_NE(
      outcomes_.errors["ret-b"].message.find("died while the call b was in flight: gone again"),
      std::string::npos)
      << outcomes_.errors["ret-b"].message;
  EXPECT_TRUE(outcomes_.settled("ret-c"));
  EXPECT_FALSE(outcomes_.settled("ret-d")) << "d's first loss: it waits for the next incarnation";
  Alive(4, 3, 1);
  EXPECT_EQ(Stream(2).sent, std::vector<std::string>{"ret-d"});
}

TEST_F(ActorTaskSubmitterTest, WithoutRetriesALostCallFailsAndLaterCallsWaitForTheNextState) {
  Create();
  Alive(1, 1);
  Call("a");
  Stream(0).End(absl::UnavailableError("reset"));
  EXPECT_EQ(outcomes_.errors["ret-a"].type, ErrorType::kActorDied);
  Call("b");
  EXPECT_EQ(streams_.opened.size(), 1u) << "the old address is suspect";
  Alive(2, 2);
  ASSERT_EQ(streams_.opened.size(), 2u);
  EXPECT_EQ(Stream(1).sent, std::vector<std::string>{"ret-b"});
}

TEST_F(ActorTaskSubmitterTest, DeathFailsEveryQueuedCallWithItsCause) {
  Call("a");
  Call("b");
  proto::ActorInfo dead = DeadActorInfo(kActor, "its node went away.");
  dead.set_class_name("Counter");
  submitter_.OnActorInfo(kActor, dead);
  ASSERT_TRUE(outcomes_.settled("ret-a") && outcomes_.settled("ret-b"));
  EXPECT_EQ(outcomes_.errors["ret-a"].message,
            "The actor " + BinaryToHex(kActor) + " (Counter) died: its node went away.");
  Call("c");
  EXPECT_TRUE(outcomes_.settled("ret-c")) << "a call to a dead actor fails at once";
  EXPECT_TRUE(streams_.opened.empty());
}

TEST_F(ActorTaskSubmitterTest, AConstructorFailureIsNamedAsTheCause) {
  Call("a");
  proto::ActorInfo dead = DeadActorInfo(kActor, "ValueError: bad seed");
  dead.mutable_death_cause()->set_type(proto::TASK_EXECUTION_EXCEPTION);
  submitter_.OnActorInfo(kActor, dead);
  EXPECT_NE(outcomes_.errors["ret-a"].message.find("its constructor failed: ValueError: bad seed"),
            std::string::npos);
}

TEST_F(ActorTaskSubmitterTest, OlderStatesAreIgnored) {
  Create();
  Alive(5, 1);
  Call("a");
  State(4, proto::ActorInfo::DEAD);
  EXPECT_FALSE(outcomes_.settled("ret-a"));
  EXPECT_EQ(Stream(0).sent, std::vector<std::string>{"ret-a"});
}

TEST_F(ActorTaskSubmitterTest, ExitActorFailsThatCallAndEveryLaterOne) {
  Create();
  Alive(1, 1, /*max_task_retries=*/-1);
  Call("a");
  Call("b");
  proto::TaskResults results;
  proto::TaskResult *result = results.add_results();
  result->set_return_id("ret-a");
  result->mutable_reply()->set_actor_exiting(true);
  Stream(0).on_results(results);
  EXPECT_NE(outcomes_.errors["ret-a"].message.find("it exited through ray::ExitActor in a."),
            std::string::npos)
      << outcomes_.errors["ret-a"].message;
  Stream(0).End(absl::OkStatus());  // the worker exits
  EXPECT_EQ(outcomes_.errors["ret-b"].type, ErrorType::kActorDied)
      << "not resent, whatever the retries";
  Call("c");
  EXPECT_TRUE(outcomes_.settled("ret-c"));
  Alive(7, 2);  // the control service's own DEAD state is the newest possible
  EXPECT_EQ(streams_.opened.size(), 1u);
}

TEST_F(ActorTaskSubmitterTest, AnAnswerFromAKilledIncarnationCountsAsLost) {
  Create();
  Alive(1, 1, /*max_task_retries=*/1);
  Call("a");
  Alive(2, 2, 1);  // restarted while a ran: the old stream is closed
  EXPECT_TRUE(Stream(0).closed);
  Stream(0).Answer("ret-a", "from the old one");
  EXPECT_FALSE(outcomes_.settled("ret-a"));
  ASSERT_EQ(streams_.opened.size(), 2u);
  EXPECT_EQ(Stream(1).sent, std::vector<std::string>{"ret-a"});
  Stream(1).Answer("ret-a", "A");
  EXPECT_EQ(outcomes_.values["ret-a"], "A");
}

TEST_F(ActorTaskSubmitterTest, CancelFailsAQueuedCallAndMarksASentOneNotToResend) {
  auto queued = Call("a");
  CancelOutcome outcome = submitter_.Cancel(queued);
  EXPECT_EQ(outcome.kind, CancelOutcome::kFailed);
  EXPECT_EQ(outcomes_.errors["ret-a"].type, ErrorType::kTaskCancelled);
  EXPECT_EQ(submitter_.Cancel(queued).kind, CancelOutcome::kNotHeld);

  Alive(1, 1, /*max_task_retries=*/-1);
  auto sent = Call("b");
  outcome = submitter_.Cancel(sent);
  EXPECT_EQ(outcome.kind, CancelOutcome::kPushed);
  EXPECT_EQ(outcome.worker_address, "actor-at-1");
  EXPECT_FALSE(outcomes_.settled("ret-b"));
  Stream(0).End(absl::UnavailableError("reset"));
  EXPECT_TRUE(outcomes_.settled("ret-b")) << "a cancelled call is not resent";
}

TEST_F(ActorTaskSubmitterTest, TheCreationTasksReferencesGoWhenTheActorIsDeadForGood) {
  ASSERT_TRUE(submitter_.AddCreating(kActor, "Counter"));
  Call("a");
  EXPECT_TRUE(directory_.watched.empty()) << "watched once the control service has it";
  submitter_.Created(kActor, {"arg-1", "arg-2"});
  EXPECT_EQ(directory_.watched, std::vector<std::string>{kActor});
  Alive(1, 1);
  State(2, proto::ActorInfo::RESTARTING);
  EXPECT_TRUE(released_.empty()) << "a restart runs the creation task again";
  State(3, proto::ActorInfo::DEAD);
  EXPECT_EQ(released_, (std::vector<std::string>{"arg-1", "arg-2"}));
  EXPECT_FALSE(outcomes_.settled("ret-a")) << "a sent call settles when its stream ends";
  Stream(0).End(absl::UnavailableError("reset"));
  EXPECT_EQ(outcomes_.errors["ret-a"].type, ErrorType::kActorDied);
}

TEST_F(ActorTaskSubmitterTest, ACreationThatFailedBeforeRegistrationLeavesNothing) {
  ASSERT_TRUE(submitter_.AddCreating(kActor, "Counter"));
  submitter_.Forget(kActor);
  submitter_.Created(kActor, {"arg-1"});  // a late registration releases at once
  EXPECT_EQ(released_, std::vector<std::string>{"arg-1"});
  EXPECT_TRUE(directory_.watched.empty());
}

TEST_F(ActorTaskSubmitterTest, AfterShutdownNothingIsResentOrTaken) {
  Create();
  Alive(1, 1, /*max_task_retries=*/-1);
  Call("a");
  submitter_.Shutdown();
  Stream(0).End(absl::CancelledError("shutting down"));
  EXPECT_EQ(outcomes_.errors["ret-a"].type, ErrorType::kActorDied);
  auto late = std::make_shared<PendingTask>();
  late->spec.set_actor_id(kActor);
  EXPECT_FALSE(submitter_.Add(late));
  EXPECT_FALSE(submitter_.AddCreating("actor-2", "Counter"));
}

TEST_F(ActorTaskSubmitterTest, AStreamThatCannotOpenFailsTheCallsItWouldCarry) {
  Create();
  streams_.refuse = true;
  Alive(1, 1);
  Call("a");
  EXPECT_NE(outcomes_.errors["ret-a"].message.find("the call a was not sent"), std::string::npos);
}

}  // namespace
}  // namespace sunray
