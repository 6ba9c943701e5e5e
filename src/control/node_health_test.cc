#include "src/control/node_health.h"

#include <gtest/gtest.h>

#include <atomic>

#include "src/testing/eventually.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

// Nodes and their answers, as the test sets them; probes are counted and
// answered at once, or held (a node that does not answer) until Release.
class FakeCluster {
 public:
  void Add(const std::string &id, bool healthy) {
    absl::MutexLock lock(&mu_);
    nodes_[id] = healthy;
  }
  void SetHealthy(const std::string &id, bool healthy) { Add(id, healthy); }
  void Remove(const std::string &id) {
    absl::MutexLock lock(&mu_);
    nodes_.erase(id);
  }
  void Hold(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  // Answers the held probes (by default as a timeout would).
  void ReleaseHeld(absl::Status status = absl::DeadlineExceededError("no answer within 1000 ms")) {
    std::vector<std::function<void(absl::Status)>> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto &done : held) done(status);
  }
  int Held() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }
  int Probes(const std::string &id) {
    absl::MutexLock lock(&mu_);
    return probes_[id];
  }
  void Died(const std::string &id, const std::string &reason) {
    absl::MutexLock lock(&mu_);
    dead_[id] = reason;
    nodes_.erase(id);  // as the control service does: no longer listed
  }
  std::map<std::string, std::string> Dead() {
    absl::MutexLock lock(&mu_);
    return dead_;
  }

  int Rounds() {
    absl::MutexLock lock(&mu_);
    return rounds_;
  }

  std::vector<NodeHealthChecker::Node> List() {
    absl::MutexLock lock(&mu_);
    ++rounds_;
    std::vector<NodeHealthChecker::Node> nodes;
    for (const auto &[id, healthy] : nodes_) nodes.push_back({id, id + ":1"});
    return nodes;
  }
  void Probe(const NodeHealthChecker::Node &node, std::function<void(absl::Status)> done) {
    bool healthy = false;
    {
      absl::MutexLock lock(&mu_);
      ++probes_[node.node_id];
      if (hold_) {
        held_.push_back(std::move(done));
        return;
      }
      healthy = nodes_.count(node.node_id) != 0 && nodes_[node.node_id];
    }
    done(healthy ? absl::OkStatus() : absl::UnavailableError("connection refused"));
  }

 private:
  absl::Mutex mu_;
  std::map<std::string, bool> nodes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> probes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> dead_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void(absl::Status)>> held_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  int rounds_ ABSL_GUARDED_BY(mu_) = 0;
};

NodeHealthChecker::Options Fast() {
  return {.period = milliseconds(10), .timeout = milliseconds(10), .failure_threshold = 3};
}

std::unique_ptr<NodeHealthChecker> Check(FakeCluster &cluster,
                                         NodeHealthChecker::Options options = Fast()) {
  return std::make_unique<NodeHealthChecker>(
      options, [&cluster] { return cluster.List(); },
      [&cluster](const NodeHealthChecker::Node &node, milliseconds,
                 std::function<void(absl::Status)> done) { cluster.Probe(node, std::move(done)); },
      [&cluster](const std::string &id, const std::string &reason) { cluster.Died(id, reason); });
}

TEST(NodeHealthCheckerTest, ANodeThatStopsAnsweringIsDeclaredDeadAfterTheThreshold) {
  FakeCluster cluster;
  cluster.Add("a", true);
  cluster.Add("b", true);
  auto checker = Check(cluster);
  ASSERT_TRUE(Eventually([&] { return cluster.Probes("b") >= 5; }));
  EXPECT_TRUE(cluster.Dead().empty());
  cluster.SetHealthy("b", false);
  ASSERT_TRUE(Eventually([&] { return cluster.Dead().count("b") == 1; }));
  const std::string reason = cluster.Dead().at("b");
  EXPECT_NE(reason.find("failed 3 health checks in a row"), std::string::npos) << reason;
  EXPECT_NE(reason.find("connection refused"), std::string::npos) << reason;
  // The dead node is probed no more; the healthy one goes on.
  const int probes_of_b = cluster.Probes("b");
  const int probes_of_a = cluster.Probes("a");
  ASSERT_TRUE(Eventually([&] { return cluster.Probes("a") >= probes_of_a + 5; }));
  EXPECT_EQ(cluster.Probes("b"), probes_of_b);
  EXPECT_EQ(cluster.Dead().count("a"), 0u);
}

TEST(NodeHealthCheckerTest, AnAnswerBetweenFailuresStartsTheCountAgain) {
  FakeCluster cluster;
  cluster.Add("a", true);
  cluster.Hold(true);  // the test answers each probe
  auto checker = Check(cluster);
  auto answer_next = [&](absl::Status status) {
    ASSERT_TRUE(Eventually([&] { return cluster.Held() == 1; }));
    cluster.ReleaseHeld(status);
  };
  // Two failures at most between answers, ten times over: never dead.
  for (int i = 0; i < 10; ++i) {
    answer_next(absl::UnavailableError("connection refused"));
    answer_next(absl::UnavailableError("connection refused"));
    answer_next(absl::OkStatus());
  }
  EXPECT_TRUE(cluster.Dead().empty());
  // Three in a row: dead.
  for (int i = 0; i < 3; ++i) answer_next(absl::UnavailableError("connection refused"));
  ASSERT_TRUE(Eventually([&] { return cluster.Dead().count("a") == 1; }));
}

TEST(NodeHealthCheckerTest, AProbeThatDoesNotAnswerIsNotRepeatedAndItsTimeoutCounts) {
  FakeCluster cluster;
  cluster.Add("a", true);
  cluster.Hold(true);
  auto checker = Check(cluster);
  ASSERT_TRUE(Eventually([&] { return cluster.Probes("a") == 1; }));
  // Rounds go on every 10 ms; none probes a node whose probe is in flight.
  for (int failure = 1; failure < 3; ++failure) {
    const int rounds = cluster.Rounds();
    ASSERT_TRUE(Eventually([&] { return cluster.Rounds() >= rounds + 3; }));
    EXPECT_EQ(cluster.Probes("a"), failure);
    cluster.ReleaseHeld();  // a timeout: one failure
    ASSERT_TRUE(Eventually([&] { return cluster.Probes("a") == failure + 1; }));
  }
  EXPECT_TRUE(cluster.Dead().empty());
  cluster.ReleaseHeld();
  ASSERT_TRUE(Eventually([&] { return cluster.Dead().count("a") == 1; }));
  EXPECT_NE(cluster.Dead().at("a").find("no answer within"), std::string::npos);
}

TEST(NodeHealthCheckerTest, NothingIsDeclaredAfterStopAndLateAnswersAreDropped) {
  FakeCluster cluster;
  cluster.Add("a", true);
  cluster.Hold(true);
  auto checker = Check(cluster);
  ASSERT_TRUE(Eventually([&] { return cluster.Probes("a") == 1; }));
  checker->Stop();
  cluster.Hold(false);
  cluster.ReleaseHeld();  // after Stop: dropped
  checker.reset();
  EXPECT_TRUE(cluster.Dead().empty());
  EXPECT_EQ(cluster.Probes("a"), 1);
}

TEST(NodeHealthCheckerTest, ANodeThatLeavesTheListIsForgotten) {
  FakeCluster cluster;
  cluster.Add("a", false);
  NodeHealthChecker::Options options = Fast();
  options.failure_threshold = 1000;
  auto checker = Check(cluster, options);
  ASSERT_TRUE(Eventually([&] { return cluster.Probes("a") >= 3; }));
  cluster.Remove("a");
  const int probes = cluster.Probes("a");
  // A few rounds later: no more probes of it.
  cluster.Add("z", true);
  ASSERT_TRUE(Eventually([&] { return cluster.Probes("z") >= 3; }));
  EXPECT_LE(cluster.Probes("a"), probes + 1);  // one round may have listed it already
}

}  // namespace
}  // namespace sunray
