#include "src/worker/node_client.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <vector>

namespace sunray {
namespace {

// A node that answers each ReturnWorker at once with the next scripted
// status (OK once the script runs out), and records what it was sent.
class ScriptedNode : public NodeClient {
 public:
  explicit ScriptedNode(std::deque<absl::Status> answers) : answers_(std::move(answers)) {}

  void RequestWorkerLease(
      const proto::RequestWorkerLeaseRequest &,
      std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> done) override {
    done(absl::UnimplementedError("not used here"));
  }
  void ReturnWorker(const proto::ReturnWorkerRequest &request, std::chrono::milliseconds timeout,
                    std::function<void(absl::Status)> done) override {
    returns.push_back(request);
    timeouts.push_back(timeout);
    absl::Status answer;
    if (!answers_.empty()) {
      answer = answers_.front();
      answers_.pop_front();
    }
    done(answer);
  }

  void NotifyBlocked(const proto::NotifyBlockedRequest &request, std::chrono::milliseconds,
                     std::function<void(absl::Status)> done) override {
    notices.push_back(request.blocked());
    if (hold_notices) {
      held.push_back(std::move(done));
      return;
    }
    done(absl::OkStatus());
  }
  // Ends the oldest held NotifyBlocked call with `status`.
  void EndNotice(absl::Status status = absl::OkStatus()) {
    auto done = std::move(held.front());
    held.pop_front();
    done(status);
  }

  std::vector<bool> notices;
  bool hold_notices = false;
  std::deque<std::function<void(absl::Status)>> held;
  std::vector<proto::ReturnWorkerRequest> returns;
  std::vector<std::chrono::milliseconds> timeouts;

 private:
  std::deque<absl::Status> answers_;
};

std::optional<absl::Status> ReturnThrough(ScriptedNode *node, bool worker_dead = false) {
  LeaseReturner returner(node);
  std::optional<absl::Status> last;
  returner.Return(/*lease_id=*/42, worker_dead, /*pid=*/7, [&](absl::Status status) {
    EXPECT_FALSE(last.has_value()) << "done ran twice";
    last = status;
  });
  return last;
}

// A return the node did not confirm used to leave the lease held there
// (with its CPU) until the process exited.
TEST(LeaseReturnerTest, AReturnTheNodeDidNotConfirmIsRetried) {
  ScriptedNode node({absl::UnavailableError("connection reset"),
                     absl::DeadlineExceededError("deadline"), absl::OkStatus()});
  const auto last = ReturnThrough(&node, /*worker_dead=*/true);
  ASSERT_TRUE(last.has_value());
  EXPECT_TRUE(last->ok());
  ASSERT_EQ(node.returns.size(), 3u);
  for (const auto &request : node.returns) {
    EXPECT_EQ(request.lease_id(), 42);
    EXPECT_TRUE(request.worker_dead());
  }
  // Each attempt waits longer for a slow node.
  EXPECT_EQ(node.timeouts[0], LeaseReturner::kFirstTimeout);
  EXPECT_EQ(node.timeouts[2], 3 * LeaseReturner::kFirstTimeout);
}

TEST(LeaseReturnerTest, RetriesEndAfterTheLastAttemptWithItsError) {
  std::deque<absl::Status> failures(10, absl::UnavailableError("the node is gone"));
  ScriptedNode node(failures);
  const auto last = ReturnThrough(&node);
  ASSERT_TRUE(last.has_value());
  EXPECT_TRUE(absl::IsUnavailable(*last));
  EXPECT_EQ(node.returns.size(), static_cast<size_t>(LeaseReturner::kAttempts));
}

TEST(LeaseReturnerTest, AnEndedLeaseOrAStoppingClientIsNotRetried) {
  for (const absl::Status &answer :
       {absl::NotFoundError("no such lease"), absl::CancelledError("stopping"), absl::OkStatus()}) {
    ScriptedNode node({answer});
    const auto last = ReturnThrough(&node);
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(last->code(), answer.code());
    EXPECT_EQ(node.returns.size(), 1u) << answer;
  }
}

TEST(BlockedNotifierTest, EachChangeIsSentAndARepeatIsNot) {
  ScriptedNode node({});
  BlockedNotifier notifier(&node, /*startup_token=*/3);
  notifier.Set(true);
  notifier.Set(true);
  notifier.Set(false);
  notifier.Set(false);
  EXPECT_EQ(node.notices, (std::vector<bool>{true, false}));
}

TEST(BlockedNotifierTest, OneCallAtATimeThenTheStateWantedByThen) {
  ScriptedNode node({});
  node.hold_notices = true;
  BlockedNotifier notifier(&node, 3);
  notifier.Set(true);
  notifier.Set(false);  // while the first is in flight: nothing sent yet
  notifier.Set(true);
  notifier.Set(false);
  EXPECT_EQ(node.notices, (std::vector<bool>{true}));
  node.EndNotice();
  EXPECT_EQ(node.notices, (std::vector<bool>{true, false})) << "the state wanted now";
  notifier.Set(true);
  notifier.Set(false);
  node.EndNotice();
  EXPECT_EQ(node.notices, (std::vector<bool>{true, false})) << "the node has it already";
  EXPECT_TRUE(node.held.empty());
}

TEST(BlockedNotifierTest, AFailedCallIsNotRepeatedAndAStoppedClientEndsTheChain) {
  ScriptedNode node({});
  node.hold_notices = true;
  BlockedNotifier notifier(&node, 3);
  notifier.Set(true);
  node.EndNotice(absl::UnavailableError("the node is gone"));
  EXPECT_EQ(node.notices, (std::vector<bool>{true}));
  notifier.Set(false);
  notifier.Set(true);
  node.EndNotice(absl::CancelledError("stopping"));
  EXPECT_EQ(node.notices, (std::vector<bool>{true, false})) << "nothing after Cancelled";
  EXPECT_TRUE(node.held.empty());
}

}  // namespace
}  // namespace sunray
