// The normal-task submitter against fakes of the node, the task streams and
// the runtime: leases, pushes, retries, bounces, cancel and shutdown, with
// no process and no socket.
#include "src/worker/normal_task_submitter.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "src/common/id.h"
#include "src/worker/submitter_fakes.h"

namespace sunray {
namespace {

// A node that keeps each lease request until the test grants or refuses
// it, and confirms every return.
class FakeNode : public NodeClient {
 public:
  struct Request {
    proto::RequestWorkerLeaseRequest request;
    std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> done;
  };

  void RequestWorkerLease(
      const proto::RequestWorkerLeaseRequest &request,
      std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> done) override {
    requests.push_back({request, std::move(done)});
  }
  void ReturnWorker(const proto::ReturnWorkerRequest &request, std::chrono::milliseconds,
                    std::function<void(absl::Status)> done) override {
    returns.push_back(request);
    done(absl::OkStatus());
  }
  void NotifyBlocked(const proto::NotifyBlockedRequest &, std::chrono::milliseconds,
                     std::function<void(absl::Status)> done) override {
    done(absl::UnimplementedError("not used here"));
  }

  // Grants request `index` with worker `n` (lease n, address "worker-n").
  void Grant(size_t index, int n) {
    proto::RequestWorkerLeaseReply reply;
    reply.set_lease_id(n);
    reply.set_worker_address("worker-" + std::to_string(n));
    reply.set_worker_task_address("tasks-" + std::to_string(n));
    reply.set_worker_pid(1000 + n);
    Take(index)(reply);
  }
  void Refuse(size_t index, absl::Status status) { Take(index)(status); }
  // Answers request `index`: ask the node `id` at `address` instead.
  void SpillBack(size_t index, const NodeID &id, const std::string &address) {
    proto::RequestWorkerLeaseReply reply;
    reply.set_spillback_node_id(id.Binary());
    reply.set_spillback_address(address);
    Take(index)(reply);
  }

  std::vector<Request> requests;
  std::vector<proto::ReturnWorkerRequest> returns;

 private:
  std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> Take(size_t index) {
    auto done = std::move(requests.at(index).done);
    EXPECT_TRUE(done) << "lease request " << index << " answered twice";
    return done;
  }
};

// The local node ("node-a") and any other a spillback names, each a
// FakeNode with its own returner, made on first use.
class FakeNodes : public NodeClients {
 public:
  Node Local() override { return At("local"); }
  Node At(const std::string &address) override {
    auto &entry = nodes_[address];
    if (entry.first == nullptr) {
      entry.first = std::make_unique<FakeNode>();
      entry.second = std::make_unique<LeaseReturner>(entry.first.get());
    }
    return Node{entry.first.get(), entry.second.get()};
  }
  FakeNode &node(const std::string &address) {
    return *static_cast<FakeNode *>(At(address).client);
  }

 private:
  std::map<std::string, std::pair<std::unique_ptr<FakeNode>, std::unique_ptr<LeaseReturner>>>
      nodes_;
};

class NormalTaskSubmitterTest : public ::testing::Test {
 protected:
  NormalTaskSubmitterTest() : node_(nodes_.node("local")) { Make(); }

  void Make() {
    NormalTaskSubmitter::Options options;
    options.lease_template.set_job_id(JobIdFromNumber(1).Binary());
    options.lease_template.add_env("SUNRAY_JOB_ID=01000000");
    options.node_totals = {ResourceSetFromUnits(std::map<std::string, double>{{"CPU", 2}})};
    options.node_name = "node-a";
    options.lease_went_idle = [this](absl::Time) { ++went_idle_; };
    submitter_ =
        std::make_unique<NormalTaskSubmitter>(std::move(options), &nodes_, &streams_, &outcomes_);
  }

  // A task named `name` (returning "ret-<name>"), its arguments resolved.
  std::shared_ptr<PendingTask> Submit(const std::string &name, int retries = 0,
                                      bool retry_exceptions = false, bool resolve = true) {
    auto task = std::make_shared<PendingTask>();
    task->spec.set_function_name(name);
    task->spec.set_return_id("ret-" + name);
    task->retries = RetryBudget(retries);
    task->retry_exceptions = retry_exceptions;
    submitter_->Add(task, Cpus(1), {});
    if (resolve) submitter_->ArgumentsResolved(task, std::nullopt);
    return task;
  }
  static ResourceSet Cpus(double n) {
    return ResourceSetFromUnits(std::map<std::string, double>{{"CPU", n}});
  }
  FakeStream &Stream(size_t index) { return *streams_.opened.at(index); }

  FakeNodes nodes_;
  FakeNode &node_;
  FakeStreams streams_;
  FakeOutcomes outcomes_;
  int went_idle_ = 0;
  std::unique_ptr<NormalTaskSubmitter> submitter_;
};

TEST_F(NormalTaskSubmitterTest, ATaskRunsOnALeasedWorkerAndItsAnswerSettlesIt) {
  Submit("f");
  ASSERT_EQ(node_.requests.size(), 1u);
  const auto &request = node_.requests[0].request;
  EXPECT_EQ(request.job_id(), JobIdFromNumber(1).Binary());
  EXPECT_EQ(request.resources().amounts().at("CPU"), kResourceUnit);
  ASSERT_EQ(request.env_size(), 1);
  node_.Grant(0, 1);
  ASSERT_EQ(streams_.opened.size(), 1u);
  EXPECT_EQ(Stream(0).address, "tasks-1");
  ASSERT_EQ(Stream(0).sent, std::vector<std::string>{"ret-f"});
  EXPECT_EQ(submitter_->counts().held, 1u);

  Stream(0).Answer("ret-f", "42");
  EXPECT_EQ(outcomes_.values["ret-f"], "42");
  EXPECT_EQ(submitter_->counts().held, 0u);
  EXPECT_GE(went_idle_, 1);
  // Kept for the next task during its linger, then given back.
  EXPECT_NE(submitter_->ReturnIdleLeases(false), absl::InfiniteFuture());
  EXPECT_TRUE(node_.returns.empty());
  EXPECT_EQ(submitter_->ReturnIdleLeases(true), absl::InfiniteFuture());
  ASSERT_EQ(node_.returns.size(), 1u);
  EXPECT_EQ(node_.returns[0].lease_id(), 1);
  EXPECT_FALSE(node_.returns[0].worker_dead());
  EXPECT_TRUE(Stream(0).closed);
}

TEST_F(NormalTaskSubmitterTest, TasksOfAClassReuseItsLease) {
  Submit("a");
  node_.Grant(0, 1);
  Stream(0).Answer("ret-a", "1");
  Submit("b");
  EXPECT_EQ(node_.requests.size(), 1u) << "the idle lease takes the next task";
  EXPECT_EQ(Stream(0).sent, (std::vector<std::string>{"ret-a", "ret-b"}));
  Stream(0).Answer("ret-b", "2");
  EXPECT_EQ(outcomes_.values.size(), 2u);
}

TEST_F(NormalTaskSubmitterTest, TasksDoNotWaitBehindABusyWorkerWhileTheirLeasesMayCome) {
  for (const char *name : {"a", "b", "c"}) Submit(name);
  ASSERT_EQ(node_.requests.size(), 3u);
  node_.Grant(0, 1);
  // "a" runs; "b" and "c" wait for the two leases still asked for (a free
  // CPU, a worker starting), not behind "a".
  EXPECT_EQ(Stream(0).sent, std::vector<std::string>{"ret-a"});
  EXPECT_EQ(submitter_->counts().queued, 2u);
  node_.Grant(1, 2);
  EXPECT_EQ(Stream(1).sent, std::vector<std::string>{"ret-b"});
}

TEST_F(NormalTaskSubmitterTest, ADeepBacklogIsPipelinedBehindTheWorkersTasks) {
  // More tasks than workers and leases asked for (at most 10) can take.
  std::vector<std::string> names;
  for (int i = 0; i < 14; ++i) names.push_back("t" + std::to_string(i));
  for (const auto &name : names) Submit(name);
  ASSERT_EQ(node_.requests.size(), 10u);
  node_.Grant(0, 1);
  // One runs; of the 13 left, 1 worker + 9 leases asked for take 10: the
  // worker takes the rest behind its first task.
  EXPECT_EQ(Stream(0).sent, (std::vector<std::string>{"ret-t0", "ret-t1", "ret-t2", "ret-t3"}));
  EXPECT_EQ(submitter_->counts().queued, 10u);
}

TEST_F(NormalTaskSubmitterTest, AWorkerDeathRetriesTheTaskOnANewLease) {
  auto task = Submit("f", /*retries=*/1);
  node_.Grant(0, 1);
  Stream(0).End(absl::UnavailableError("connection reset"));
  ASSERT_EQ(node_.returns.size(), 1u);
  EXPECT_TRUE(node_.returns[0].worker_dead()) << "a dead worker is not leased again";
  EXPECT_FALSE(outcomes_.settled("ret-f"));
  EXPECT_FALSE(task->retries.CanRetry());
  ASSERT_EQ(node_.requests.size(), 2u);
  node_.Grant(1, 2);
  EXPECT_EQ(Stream(1).sent, std::vector<std::string>{"ret-f"});
  Stream(1).Answer("ret-f", "ok");
  EXPECT_EQ(outcomes_.values["ret-f"], "ok");
}

TEST_F(NormalTaskSubmitterTest, AWorkerDeathWithNoRetriesLeftFailsNamingTheWorker) {
  Submit("f");
  node_.Grant(0, 3);
  Stream(0).End(absl::UnavailableError("connection reset"));
  ASSERT_TRUE(outcomes_.errors.count("ret-f"));
  const ErrorInfo &error = outcomes_.errors["ret-f"];
  EXPECT_EQ(error.type, ErrorType::kWorkerDied);
  EXPECT_NE(error.message.find("pid 1003"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("node-a"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("connection reset"), std::string::npos) << error.message;
}

TEST_F(NormalTaskSubmitterTest, AnExceptionIsRetriedOnlyWhenTheTaskAsks) {
  Submit("plain", /*retries=*/3);
  Submit("asks", /*retries=*/3, /*retry_exceptions=*/true);
  node_.Grant(0, 1);
  node_.Grant(1, 2);
  Stream(0).Answer("ret-plain", "", false, /*exception=*/true);
  EXPECT_TRUE(outcomes_.settled("ret-plain")) << "its exception is its result";
  Stream(1).Answer("ret-asks", "", false, /*exception=*/true);
  EXPECT_FALSE(outcomes_.settled("ret-asks"));
  // Sent again at once, to the worker that is free now.
  EXPECT_EQ(Stream(0).sent.back(), "ret-asks");
}

TEST_F(NormalTaskSubmitterTest, ABouncedTaskGoesElsewhereWithoutSpendingAnAttempt) {
  Submit("a");
  auto b = Submit("b");
  // A backlog deeper than the leases asked for: "b" waits behind "a".
  for (int i = 0; i < 10; ++i) Submit("c" + std::to_string(i));
  node_.Grant(0, 1);
  ASSERT_EQ(Stream(0).sent, (std::vector<std::string>{"ret-a", "ret-b"}));
  // "a" blocks in Get: the worker sends "b" back.
  Stream(0).Answer("ret-b", "", /*bounced=*/true);
  EXPECT_FALSE(outcomes_.settled("ret-b"));
  EXPECT_FALSE(b->retries.CanRetry());
  EXPECT_EQ(Stream(0).sent.size(), 2u) << "nothing more queues behind a blocked worker";
  node_.Grant(1, 2);
  EXPECT_EQ(Stream(1).sent.front(), "ret-b");
  Stream(1).Answer("ret-b", "done");
  EXPECT_EQ(outcomes_.values["ret-b"], "done");
}

TEST_F(NormalTaskSubmitterTest, ACancelBeforeTheArgumentsResolveFailsTheTaskOnce) {
  auto task = Submit("f", 0, false, /*resolve=*/false);
  const auto outcome = submitter_->Cancel("ret-f");
  EXPECT_EQ(outcome.kind, NormalTaskSubmitter::CancelOutcome::kFailed);
  ASSERT_TRUE(outcomes_.errors.count("ret-f"));
  EXPECT_EQ(outcomes_.errors["ret-f"].type, ErrorType::kTaskCancelled);
  submitter_->ArgumentsResolved(task, std::nullopt);
  EXPECT_TRUE(node_.requests.empty()) << "a cancelled task asks for no worker";
  EXPECT_EQ(submitter_->Cancel("ret-f").kind, NormalTaskSubmitter::CancelOutcome::kNotHeld);
}

TEST_F(NormalTaskSubmitterTest, ACancelOfAQueuedTaskTakesItOutOfTheQueue) {
  Submit("f");
  EXPECT_EQ(submitter_->Cancel("ret-f").kind, NormalTaskSubmitter::CancelOutcome::kFailed);
  node_.Grant(0, 1);
  EXPECT_TRUE(Stream(0).sent.empty());
}

TEST_F(NormalTaskSubmitterTest, ACancelledRunningTaskIsNotRetriedWhenItsWorkerDies) {
  Submit("f", /*retries=*/5);
  node_.Grant(0, 1);
  const auto outcome = submitter_->Cancel("ret-f");
  EXPECT_EQ(outcome.kind, NormalTaskSubmitter::CancelOutcome::kPushed);
  EXPECT_EQ(outcome.worker_address, "worker-1");
  Stream(0).End(absl::UnavailableError("killed"));
  ASSERT_TRUE(outcomes_.errors.count("ret-f"));
  EXPECT_EQ(outcomes_.errors["ret-f"].type, ErrorType::kTaskCancelled);
  EXPECT_EQ(node_.requests.size(), 1u);
}

TEST_F(NormalTaskSubmitterTest, ADependencyErrorFailsTheTaskWithIt) {
  auto task = Submit("f", 0, false, /*resolve=*/false);
  submitter_->ArgumentsResolved(
      task, ErrorInfo{ErrorType::kObjectLost, "the argument was lost", "", "", ""});
  ASSERT_TRUE(outcomes_.errors.count("ret-f"));
  EXPECT_EQ(outcomes_.errors["ret-f"].type, ErrorType::kObjectLost);
  EXPECT_TRUE(node_.requests.empty());
}

TEST_F(NormalTaskSubmitterTest, ARefusedLeaseFailsTheTasksWaitingWithTheNodesReason) {
  Submit("a");
  Submit("b");
  ASSERT_EQ(node_.requests.size(), 2u);
  node_.Refuse(0, absl::CancelledError("the job 01 finished"));
  // Both fail at once: asking again for each refusal kept them waiting
  // forever, one new request per refused one.
  ASSERT_EQ(outcomes_.errors.size(), 2u);
  EXPECT_NE(outcomes_.errors["ret-a"].message.find("the job 01 finished"), std::string::npos);
  EXPECT_EQ(submitter_->counts().held, 0u);
  node_.Refuse(1, absl::CancelledError("the job 01 finished"));
  EXPECT_EQ(node_.requests.size(), 2u) << "no more requests";
}

TEST_F(NormalTaskSubmitterTest, ALeaseWhoseStreamCannotOpenGoesBack) {
  streams_.refuse = true;
  Submit("f");
  node_.Grant(0, 1);
  ASSERT_EQ(node_.returns.size(), 1u);
  EXPECT_FALSE(node_.returns[0].worker_dead());
  EXPECT_EQ(submitter_->counts().leases, 0u);
  EXPECT_EQ(node_.requests.size(), 2u) << "the task asks for another worker";
}

TEST_F(NormalTaskSubmitterTest, WaitingTasksFailAfterAFewLeasesWhoseStreamsCannotOpen) {
  streams_.refuse = true;
  Submit("f");
  for (size_t i = 0; i + 1 < kMaxFailedStreamOpens; ++i) {
    node_.Grant(i, static_cast<int>(i) + 1);
    ASSERT_TRUE(outcomes_.errors.empty()) << "after " << i + 1;
    ASSERT_EQ(node_.requests.size(), i + 2) << "another worker is asked for";
  }
  node_.Grant(kMaxFailedStreamOpens - 1, kMaxFailedStreamOpens);
  ASSERT_EQ(outcomes_.errors.count("ret-f"), 1u);
  EXPECT_NE(outcomes_.errors["ret-f"].message.find("No task stream could be opened"),
            std::string::npos)
      << outcomes_.errors["ret-f"].message;
  EXPECT_EQ(node_.requests.size(), static_cast<size_t>(kMaxFailedStreamOpens))
      << "no more workers asked for: it would never end";
  EXPECT_EQ(node_.returns.size(), static_cast<size_t>(kMaxFailedStreamOpens));
  EXPECT_EQ(submitter_->counts().held, 0u);
}

TEST_F(NormalTaskSubmitterTest, AStreamThatOpensResetsTheCountOfFailedOpens) {
  streams_.refuse = true;
  Submit("f");
  for (size_t i = 0; i + 1 < kMaxFailedStreamOpens; ++i) node_.Grant(i, static_cast<int>(i) + 1);
  streams_.refuse = false;
  node_.Grant(kMaxFailedStreamOpens - 1, 10);
  ASSERT_EQ(streams_.opened.size(), 1u);
  Stream(0).Answer("ret-f", "1");
  EXPECT_EQ(outcomes_.values["ret-f"], "1");
  // Back to a full count: the next task survives as many failed opens.
  streams_.refuse = true;
  Stream(0).End(absl::UnavailableError("the worker exited"));
  Submit("g");
  const size_t first = node_.requests.size() - 1;
  for (size_t i = 0; i + 1 < kMaxFailedStreamOpens; ++i) {
    node_.Grant(first + i, 20 + static_cast<int>(i));
  }
  EXPECT_EQ(outcomes_.errors.count("ret-g"), 0u);
}

// A stream refused at once ends on the loop thread, possibly before the
// grant is recorded: the dead worker must not join the class (the task
// would be sent on a stream that is gone and wait forever).
TEST_F(NormalTaskSubmitterTest, AStreamThatEndsBeforeTheGrantIsRecordedLeavesNoDeadWorker) {
  streams_.end_at_once = true;
  Submit("f", /*retries=*/1);
  node_.Grant(0, 1);
  EXPECT_EQ(submitter_->counts().leases, 0u);
  ASSERT_EQ(node_.returns.size(), 1u) << "given back once";
  EXPECT_TRUE(node_.returns[0].worker_dead());
  EXPECT_TRUE(Stream(0).sent.empty());
  ASSERT_EQ(node_.requests.size(), 2u);
  streams_.end_at_once = false;
  node_.Grant(1, 2);
  EXPECT_EQ(Stream(1).sent, std::vector<std::string>{"ret-f"});
}

TEST_F(NormalTaskSubmitterTest, AfterShutdownNothingIsRetriedAndLeasesGoBack) {
  Submit("running", /*retries=*/5);
  node_.Grant(0, 1);
  Submit("queued");
  submitter_->Shutdown(/*return_leases=*/true);
  ASSERT_EQ(node_.returns.size(), 1u);
  EXPECT_TRUE(Stream(0).closed);
  Stream(0).End(absl::CancelledError("shutting down"));
  EXPECT_EQ(outcomes_.errors["ret-running"].type, ErrorType::kWorkerDied);
  EXPECT_EQ(node_.requests.size(), 2u) << "no lease asked for after Shutdown";
  auto late = std::make_shared<PendingTask>();
  late->spec.set_return_id("ret-late");
  submitter_->Add(late, Cpus(1), {});
  EXPECT_TRUE(outcomes_.errors.count("ret-late"));
}

TEST_F(NormalTaskSubmitterTest, ASpilledBackLeaseIsAskedOfTheNamedNodeAndReturnedThere) {
  proto::SchedulingStrategy spread;
  spread.set_kind(proto::SchedulingStrategy::SPREAD);
  auto task = std::make_shared<PendingTask>();
  task->spec.set_function_name("f");
  task->spec.set_return_id("ret-f");
  task->retries = RetryBudget(0);
  submitter_->Add(task, Cpus(1), {}, spread);
  submitter_->ArgumentsResolved(task, std::nullopt);
  ASSERT_EQ(node_.requests.size(), 1u);
  EXPECT_EQ(node_.requests[0].request.strategy().kind(), proto::SchedulingStrategy::SPREAD);
  EXPECT_EQ(node_.requests[0].request.spillback_count(), 0);
  const NodeID b = NodeID::FromRandom();
  node_.SpillBack(0, b, "node-b");
  FakeNode &node_b = nodes_.node("node-b");
  ASSERT_EQ(node_b.requests.size(), 1u);
  EXPECT_EQ(node_b.requests[0].request.spillback_count(), 1);
  EXPECT_EQ(node_b.requests[0].request.strategy().kind(), proto::SchedulingStrategy::SPREAD);
  EXPECT_EQ(submitter_->counts().pending_leases, 1u);  // still the one request
  node_b.Grant(0, 7);
  ASSERT_EQ(streams_.opened.size(), 1u);
  EXPECT_EQ(Stream(0).address, "tasks-7");
  // Its worker dies: the error names the node it ran on.
  Stream(0).End(absl::UnavailableError("connection reset"));
  ASSERT_EQ(outcomes_.errors.count("ret-f"), 1u);
  EXPECT_NE(outcomes_.errors["ret-f"].message.find("node " + b.Hex()), std::string::npos)
      << outcomes_.errors["ret-f"].message;
  // The dead worker's lease goes back to the node that granted it.
  ASSERT_EQ(node_b.returns.size(), 1u);
  EXPECT_EQ(node_b.returns[0].lease_id(), 7);
  EXPECT_TRUE(node_b.returns[0].worker_dead());
  EXPECT_TRUE(node_.returns.empty());
}

TEST_F(NormalTaskSubmitterTest, SpreadTasksDoNotQueueBehindABusyWorker) {
  proto::SchedulingStrategy spread;
  spread.set_kind(proto::SchedulingStrategy::SPREAD);
  for (const std::string name : {"a", "b", "c"}) {
    auto task = std::make_shared<PendingTask>();
    task->spec.set_function_name(name);
    task->spec.set_return_id("ret-" + name);
    task->retries = RetryBudget(0);
    submitter_->Add(task, Cpus(1), {}, spread);
    submitter_->ArgumentsResolved(task, std::nullopt);
  }
  ASSERT_EQ(node_.requests.size(), 3u);
  node_.Grant(0, 1);
  ASSERT_EQ(streams_.opened.size(), 1u);
  EXPECT_EQ(Stream(0).sent, std::vector<std::string>{"ret-a"}) << "one task per worker";
}

TEST_F(NormalTaskSubmitterTest, AStrategyThatCanNeverBeMetFailsTheClassAsUnschedulable) {
  Submit("a");
  Submit("b");
  node_.Refuse(0, absl::FailedPreconditionError(
                      "The task asks to run on node 00ff (hard affinity), which is dead"));
  for (const std::string id : {"ret-a", "ret-b"}) {
    ASSERT_EQ(outcomes_.errors.count(id), 1u) << id;
    EXPECT_EQ(outcomes_.errors[id].type, ErrorType::kTaskUnschedulable);
    EXPECT_NE(outcomes_.errors[id].message.find("which is dead"), std::string::npos);
  }
}

}  // namespace
}  // namespace sunray
