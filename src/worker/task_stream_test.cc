#include "src/worker/task_stream.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/synchronization/mutex.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

constexpr char kToken[] = "stream-test-token";

// A worker's end of task streams on a frame loop of its own (as in a
// worker process); the test decides when each task is answered.
class StreamOnlyWorker {
 public:
  explicit StreamOnlyWorker(rpc::FrameLoop::Options options = {}) : loop_(options) {}

  // Listens on 127.0.0.1; returns the task address.
  std::string Start() {
    EXPECT_TRUE(loop_.Start().ok());
    auto port = loop_.Listen("127.0.0.1", [this](auto connection) {
      return TaskStreamServer::Serve(std::move(connection), kToken,
                                     [this](TaskStreamServer *stream, proto::TaskSpec task) {
                                       absl::MutexLock lock(&mu_);
                                       received_.push_back(task.function_name());
                                       streams_[task.return_id()] = stream;
                                     });
    });
    EXPECT_TRUE(port.ok()) << port.status();
    return "127.0.0.1:" + std::to_string(port.value_or(0));
  }
  void Stop() { loop_.Stop(); }

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
  rpc::FrameLoop loop_;
  absl::Mutex mu_;
  std::vector<std::string> received_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, TaskStreamServer *> streams_ ABSL_GUARDED_BY(mu_);
};

// What the owner's end saw.
struct Outcome {
  absl::Mutex mu;
  std::vector<std::string> answered ABSL_GUARDED_BY(mu);  // return ids, in arrival order
  int messages ABSL_GUARDED_BY(mu) = 0;
  std::promise<absl::Status> ended;
};

class TaskStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    address_ = worker_.Start();
    ASSERT_TRUE(owner_loop_.Start().ok());
  }
  void TearDown() override {
    worker_.Stop();
    owner_loop_.Stop();
  }

  std::shared_ptr<TaskStreamClient> Open(Outcome *outcome, const std::string &token = kToken) {
    return TaskStreamClient::Open(
        &owner_loop_, address_, token,
        [outcome](proto::TaskResults &results) {
          absl::MutexLock lock(&outcome->mu);
          ++outcome->messages;
          for (const auto &result : results.results()) {
            EXPECT_EQ(result.reply().result().data().rfind("done " + result.return_id(), 0), 0u);
            outcome->answered.push_back(result.return_id());
          }
        },
        [outcome](const absl::Status &status) { outcome->ended.set_value(status); });
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

  static absl::Status WaitForEnd(Outcome *outcome) {
    auto ended = outcome->ended.get_future();
    if (ended.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      return absl::DeadlineExceededError("the stream did not end");
    }
    return ended.get();
  }

  StreamOnlyWorker worker_;
  std::string address_;
  rpc::FrameLoop owner_loop_{{}};
};

TEST_F(TaskStreamTest, AnswersComeBackByReturnIdInTheOrderTasksFinish) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1", "2"})));
  ASSERT_TRUE(stream->Send(Tasks({"3"})));
  EXPECT_EQ(worker_.WaitForTasks(3), (std::vector<std::string>{"f1", "f2", "f3"}));
  worker_.Answer("3");
  ASSERT_TRUE(WaitForAnswers(&outcome, 1));
  worker_.Answer("1");
  worker_.Answer("2");
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
  worker_.WaitForTasks(1);
  stream->Close();
  EXPECT_FALSE(stream->Send(Tasks({"after-close"})));
  auto ended = outcome.ended.get_future();
  EXPECT_EQ(ended.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  worker_.Answer("late");
  ASSERT_EQ(ended.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(ended.get().ok());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.answered, std::vector<std::string>{"late"});
}

TEST_F(TaskStreamTest, ManyTasksAllArriveInOrder) {
  Outcome outcome;
  auto stream = Open(&outcome);
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(std::to_string(i));
    ASSERT_TRUE(stream->Send(Tasks({ids.back()})));
  }
  ASSERT_EQ(worker_.WaitForTasks(200).size(), 200u);
  for (const auto &id : ids) worker_.Answer(id);
  ASSERT_TRUE(WaitForAnswers(&outcome, 200));
  stream->Close();
  EXPECT_TRUE(WaitForEnd(&outcome).ok());
  absl::MutexLock lock(&outcome.mu);
  EXPECT_EQ(outcome.answered, ids);
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
  ASSERT_EQ(worker_.WaitForTasks(12).size(), 12u);
  for (const auto &id : ids) worker_.Answer(id, nullptr, mib);
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
  worker_.WaitForTasks(2);
  std::promise<void> written;
  worker_.Answer("1", [&] { written.set_value(); });
  ASSERT_EQ(written.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(WaitForAnswers(&outcome, 1));
  // After the owner has gone the answer is dropped, and the action runs.
  stream->Cancel();
  EXPECT_EQ(WaitForEnd(&outcome).code(), absl::StatusCode::kCancelled);
  std::promise<void> dropped;
  worker_.Answer("2", [&] { dropped.set_value(); });
  EXPECT_EQ(dropped.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
}

TEST_F(TaskStreamTest, AStreamWithoutTheTokenIsRefused) {
  for (const std::string token : {"", "wrong-token"}) {
    Outcome outcome;
    auto stream = Open(&outcome, token);
    (void)stream->Send(Tasks({"1"}));
    EXPECT_EQ(WaitForEnd(&outcome).code(), absl::StatusCode::kUnauthenticated) << token;
    EXPECT_EQ(worker_.WaitForTasks(0).size(), 0u);
  }
}

TEST_F(TaskStreamTest, TheOwnersEndLearnsWhenTheWorkerGoesAway) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1"})));
  worker_.WaitForTasks(1);
  // The worker's loop stops with the task unanswered (as when it dies).
  std::thread stopper([&] { worker_.Stop(); });
  const absl::Status status = WaitForEnd(&outcome);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_FALSE(stream->Send(Tasks({"2"})));
  // The answer that comes after is dropped, and the worker's end goes.
  worker_.Answer("1");
  stopper.join();
}

// Regression: a refused connection's handlers can run on the loop thread
// before Open has stored the connection; they read it unset and crashed the
// process (seen once in the cluster suite under load, in
// FrameConnection::CloseWrite with this == null).
TEST_F(TaskStreamTest, StreamsToNobodyEndUnavailableAndNeverCrash) {
  worker_.Stop();                   // nothing listens at address_ any more
  for (int i = 0; i < 1000; ++i) {  // the window is narrow: about 1 run in 5 at 300
    Outcome outcome;
    auto stream = Open(&outcome);
    if (stream == nullptr) continue;  // refused at once: nothing to end
    const absl::Status status = WaitForEnd(&outcome);
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  }
}

TEST_F(TaskStreamTest, TheWorkersEndFinishesAfterTheOwnerCancels) {
  Outcome outcome;
  auto stream = Open(&outcome);
  ASSERT_TRUE(stream->Send(Tasks({"1", "2"})));
  worker_.WaitForTasks(2);
  stream->Cancel();
  EXPECT_EQ(WaitForEnd(&outcome).code(), absl::StatusCode::kCancelled);
  // Answers after the owner left are dropped; the worker's end then
  // goes (ASan reports it otherwise).
  worker_.Answer("1");
  worker_.Answer("2");
}

// A peer that speaks raw frames (or not): what a stranger on the network
// can send to a worker's task address.
class RawPeer {
 public:
  explicit RawPeer(const std::string &address) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    connected_ = connect(fd_, reinterpret_cast<sockaddr *>(&to), sizeof(to)) == 0;
  }
  ~RawPeer() { close(fd_); }
  bool connected() const { return connected_; }

  void SendFrame(uint8_t type, const std::string &payload, uint32_t claimed_length = 0) {
    const uint32_t length = claimed_length != 0 ? claimed_length : payload.size();
    std::string bytes;
    for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((length >> (8 * i)) & 0xff));
    bytes.push_back(static_cast<char>(type));
    bytes += payload;
    (void)!send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }

  // Everything the worker sends until it closes the connection, or nullopt
  // if it is still open after `timeout`.
  std::optional<std::string> ReadUntilClosed(std::chrono::milliseconds timeout) {
    std::string got;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd watch{fd_, POLLIN, 0};
      if (poll(&watch, 1, static_cast<int>(left.count())) <= 0) continue;
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) return got;  // closed (or reset)
      got.append(buffer, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// The kEnd frame's status among the bytes a worker sent.
std::optional<proto::StreamEnd> EndIn(const std::string &bytes) {
  size_t position = 0;
  while (bytes.size() - position >= 5) {
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) {
      length |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[position + i])) << (8 * i);
    }
    if (bytes.size() - position - 5 < length) break;
    proto::StreamEnd end;
    if (bytes[position + 4] == 4 && end.ParseFromString(bytes.substr(position + 5, length))) {
      return end;
    }
    position += 5 + length;
  }
  return std::nullopt;
}

TEST_F(TaskStreamTest, AFrameWithoutTheTokenIsRefusedFromItsHeader) {
  RawPeer peer(address_);
  ASSERT_TRUE(peer.connected());
  // Claims 256 MiB before any token: refused at the header, never read.
  peer.SendFrame(1, "", 256u << 20);
  EXPECT_TRUE(peer.ReadUntilClosed(std::chrono::seconds(10)).has_value());
  EXPECT_EQ(worker_.WaitForTasks(0).size(), 0u);
}

TEST_F(TaskStreamTest, TasksBeforeTheTokenAreRefusedUnread) {
  RawPeer peer(address_);
  ASSERT_TRUE(peer.connected());
  proto::TaskBatch batch;
  batch.add_tasks()->set_function_name("sneaky");
  peer.SendFrame(2, batch.SerializeAsString());
  auto got = peer.ReadUntilClosed(std::chrono::seconds(10));
  ASSERT_TRUE(got.has_value());
  auto end = EndIn(*got);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code(), static_cast<int>(absl::StatusCode::kUnauthenticated));
  EXPECT_EQ(worker_.WaitForTasks(0).size(), 0u);
}

TEST_F(TaskStreamTest, AMalformedTaskBatchEndsTheStreamNamingIt) {
  RawPeer peer(address_);
  ASSERT_TRUE(peer.connected());
  peer.SendFrame(1, kToken);
  peer.SendFrame(2, std::string("\xff\xff\xff\xff not a task batch", 22));
  auto got = peer.ReadUntilClosed(std::chrono::seconds(10));
  ASSERT_TRUE(got.has_value());
  auto end = EndIn(*got);
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_NE(end->message().find("malformed task batch"), std::string::npos) << end->message();
}

TEST(TaskStreamHandshakeTest, AConnectionThatSaysNothingIsClosedAtTheHandshakeDeadline) {
  StreamOnlyWorker worker({.handshake_timeout = absl::Milliseconds(200)});
  const std::string address = worker.Start();
  RawPeer silent(address);
  ASSERT_TRUE(silent.connected());
  EXPECT_TRUE(silent.ReadUntilClosed(std::chrono::seconds(10)).has_value());
  worker.Stop();
}

}  // namespace
}  // namespace sunray
