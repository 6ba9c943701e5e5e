#include "src/worker/task_stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

constexpr char kToken[] = "stream-test-token";

// A WorkerService that only serves RunTasks; the test decides when each
// task is answered.
class StreamOnlyService final : public proto::WorkerService::CallbackService {
 public:
  grpc::ServerBidiReactor<proto::TaskBatch, proto::TaskResults> *RunTasks(
      grpc::CallbackServerContext *context) override {
    if (!rpc::HasToken(*context, kToken)) {
      return new TaskStreamServer(nullptr, rpc::UnauthenticatedStatus());
    }
    return new TaskStreamServer([this](TaskStreamServer *stream, proto::TaskSpec task) {
      absl::MutexLock lock(&mu_);
      received_.push_back(task.function_name());
      streams_[task.return_id()] = stream;
    });
  }

  // Answers the task with `return_id`, its result the task's id;
  // `after_written` runs once the answer is written (or dropped).
  void Answer(const std::string &return_id, std::function<void()> after_written = nullptr,
              const std::string &payload = "") {
    TaskStreamServer *stream;
    {
      absl::MutexLock lock(&mu_);
      stream = streams_.at(return_id);
      streams_.erase(return_id);
    }
    proto::PushTaskReply reply;
    reply.mutable_result()->set_data("done " + return_id + payload);
    stream->Answer(return_id, std::move(reply), std::move(after_written));
  }

  // Waits until `count` tasks have arrived in all; returns their names.
  std::vector<std::string> WaitForTasks(size_t count) {
    absl::MutexLock lock(&mu_);
    const auto arrived = [&] {
      mu_.AssertHeld();
      return received_.size() >= count;
    };
    mu_.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(10));
    return received_;
  }

 private:
  absl::Mutex mu_;
  std::vector<std::string> received_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TaskStreamServer *> streams_ ABSL_GUARDED_BY(mu_);
};

// What the owner's end saw.
struct Outcome {
  absl::Mutex mu;
  std::vector<std::string> answered ABSL_GUARDED_BY(mu);  // return ids, in arrival order
  int messages ABSL_GUARDED_BY(mu) = 0;
  std::promise<grpc::Status> ended;
};

class TaskStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto port = server_.Start("127.0.0.1:0", {&service_});
    ASSERT_TRUE(port.ok()) << port.status();
    stub_ = proto::WorkerService::NewStub(rpc::MakeChannel("127.0.0.1:" + std::to_string(*port)));
  }
  void TearDown() override { server_.Stop(); }

  std::shared_ptr<TaskStreamClient> Open(Outcome *outcome, const std::string &token = kToken) {
    auto context = std::make_unique<grpc::ClientContext>();
    if (!token.empty()) context->AddMetadata(rpc::kTokenHeader, token);
    return TaskStreamClient::Open(
        stub_.get(), std::move(context),
        [outcome](proto::TaskResults &results) {
          absl::MutexLock lock(&outcome->mu);
          ++outcome->messages;
          for (const auto &result : results.results()) {
            EXPECT_EQ(result.reply().result().data().rfind("done " + result.return_id(), 0), 0u);
            outcome->answered.push_back(result.return_id());
          }
        },
        [outcome](const grpc::Status &status) { outcome->ended.set_value(status); });
  }

  static std::vector<proto::TaskSpec> Tasks(const std::vector<std::string> &ids) {
    std::vector<proto::TaskSpec> tasks;
    for (const auto &id : ids) {
      tasks.emplace_back();
      tasks.back().set_return_id(id);
      tasks.back().set_function_name("f" + id);
    }
    return tasks;
  }

  static bool WaitForAnswers(Outcome *outcome, size_t count) {
    absl::MutexLock lock(&outcome->mu);
    const auto arrived = [&] {
      outcome->mu.AssertHeld();
      return outcome->answered.size() >= count;
    };
    return outcome->mu.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(10));
  }

  static grpc::Status WaitForEnd(Outcome *outcome) {
    auto ended = outcome->ended.get_future();
    if (ended.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "the stream did not end");
    }
    return ended.get();
  }

  StreamOnlyService service_;
  rpc::RpcServer server_;
  std::unique_ptr<proto::WorkerService::Stub> stub_;
};

TEST_F(TaskStreamTest, AnswersComeBackByReturnIdInTheOrderTasksFinish) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1", "2"})));
  ASSERT_TRUE(stream->Send(Tasks({"3"})));
  EXPECT_EQ(service_.WaitForTasks(3), (std::vector<std::string>{"f1", "f2", "f3"}));
  service_.Answer("3");
  ASSERT_TRUE(WaitForAnswers(&outcome, 1));
  service_.Answer("1");
  service_.Answer("2");
  ASSERT_TRUE(WaitForAnswers(&outcome, 3));
  {
    absl::MutexLock lock(&outcome.mu);
    EXPECT_EQ(outcome.answered, (std::vector<std::string>{"3", "1", "2"}));
  }
  stream->Close();
  EXPECT_TRUE(WaitForEnd(&outcome).ok());
}

TEST_F(TaskStreamTest, CloseEndsTheStreamOnlyOnceEveryTaskIsAnswered) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"late"})));
  service_.WaitForTasks(1);
  stream->Close();
  EXPECT_FALSE(stream->Send(Tasks({"after-close"})));
  auto ended = outcome.ended.get_future();
  EXPECT_EQ(ended.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  service_.Answer("late");
  ASSERT_EQ(ended.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(ended.get().ok());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.answered, std::vector<std::string>{"late"});
}

TEST_F(TaskStreamTest, ManyTasksAllArriveAndAnswersShareMessages) {
  Outcome outcome;
  auto stream = Open(&outcome);
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(std::to_string(i));
    ASSERT_TRUE(stream->Send(Tasks({ids.back()})));
  }
  ASSERT_EQ(service_.WaitForTasks(200).size(), 200u);
  for (const auto &id : ids) service_.Answer(id);
  ASSERT_TRUE(WaitForAnswers(&outcome, 200));
  stream->Close();
  EXPECT_TRUE(WaitForEnd(&outcome).ok());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.answered, ids);
  // Answers given while a write was in flight went out together.
  EXPECT_LT(outcome.messages, 200);
}

// Regression: whatever was queued went out as one message, however large,
// and a message over the receiver's limit broke the stream.
TEST_F(TaskStreamTest, LargeBatchesAreSplitUnderTheMessageCap) {
  Outcome outcome;
  auto stream = Open(&outcome);
  const std::string mib(1 << 20, 'x');
  std::vector<std::string> ids;
  for (int i = 0; i < 12; ++i) ids.push_back(std::to_string(i));
  std::vector<proto::TaskSpec> tasks = Tasks(ids);
  for (auto &task : tasks) task.add_args()->mutable_value()->set_data(mib);
  ASSERT_TRUE(stream->Send(std::move(tasks)));  // 12 MiB; the server takes 4 MiB a message
  ASSERT_EQ(service_.WaitForTasks(12).size(), 12u);
  for (const auto &id : ids) service_.Answer(id, nullptr, mib);
  ASSERT_TRUE(WaitForAnswers(&outcome, 12));
  stream->Close();
  EXPECT_TRUE(WaitForEnd(&outcome).ok());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_GE(outcome.messages, 3);  // 12 MiB of answers, at most 4 MiB a message
}

TEST_F(TaskStreamTest, AnAnswersAfterWrittenActionRunsOnceItIsWrittenOrDropped) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1", "2"})));
  service_.WaitForTasks(2);
  std::promise<void> written;
  service_.Answer("1", [&] { written.set_value(); });
  ASSERT_EQ(written.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(WaitForAnswers(&outcome, 1));
  // After the owner has gone the answer is dropped, and the action runs.
  stream->context()->TryCancel();
  EXPECT_EQ(WaitForEnd(&outcome).error_code(), grpc::StatusCode::CANCELLED);
  std::promise<void> dropped;
  service_.Answer("2", [&] { dropped.set_value(); });
  EXPECT_EQ(dropped.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST_F(TaskStreamTest, AStreamWithoutTheTokenIsRefused) {
  for (const std::string token : {"", "wrong-token"}) {
    Outcome outcome;
    auto stream = Open(&outcome, token);
    (void)stream->Send(Tasks({"1"}));
    EXPECT_EQ(WaitForEnd(&outcome).error_code(), grpc::StatusCode::UNAUTHENTICATED) << token;
    EXPECT_EQ(service_.WaitForTasks(0).size(), 0u);
  }
}

TEST_F(TaskStreamTest, TheOwnersEndLearnsWhenTheWorkerGoesAway) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1"})));
  service_.WaitForTasks(1);
  // The worker's server stops with the task unanswered (as when it dies).
  std::thread stopper([&] { server_.Stop(); });
  const grpc::Status status = WaitForEnd(&outcome);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << status.error_message();
  EXPECT_FALSE(stream->Send(Tasks({"2"})));
  // The worker's end finishes once its last task is answered, so the
  // server's shutdown can complete.
  service_.Answer("1");
  stopper.join();
}

TEST_F(TaskStreamTest, TheWorkersEndFinishesAfterTheOwnerCancels) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1", "2"})));
  service_.WaitForTasks(2);
  stream->context()->TryCancel();
  EXPECT_EQ(WaitForEnd(&outcome).error_code(), grpc::StatusCode::CANCELLED);
  // Answers after the owner left are dropped; the worker's end then
  // finishes (TearDown's Stop would hang on a stream never finished).
  service_.Answer("1");
  service_.Answer("2");
}

}  // namespace
}  // namespace sunray
