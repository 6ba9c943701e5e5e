#include "src/control/node_health.h"

#include <utility>

#include "absl/time/time.h"

namespace sunray {

NodeHealthChecker::NodeHealthChecker(Options options, ListNodes list, Probe probe,
                                     DeadCallback on_dead)
    : options_(options),
      list_(std::move(list)),
      probe_(std::move(probe)),
      on_dead_(std::move(on_dead)) {
  thread_ = std::thread([this] { Loop(); });
}

NodeHealthChecker::~NodeHealthChecker() { Stop(); }

void NodeHealthChecker::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void NodeHealthChecker::Loop() {
  auto next_round = std::chrono::system_clock::now();
  while (true) {
    std::vector<std::pair<std::string, std::string>> dead;
    {
      absl::MutexLock lock(&mu_);
      auto woken = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !dead_.empty(); };
      mu_.AwaitWithDeadline(absl::Condition(&woken), absl::FromChrono(next_round));
      if (stopping_) return;
      dead.swap(dead_);
    }
    for (const auto &[node_id, reason] : dead) on_dead_(node_id, reason);
    if (std::chrono::system_clock::now() < next_round) continue;
    next_round += options_.period;
    // A slow round (many nodes, a stalled list) does not make later rounds
    // come in a burst.
    if (next_round < std::chrono::system_clock::now()) {
      next_round = std::chrono::system_clock::now() + options_.period;
    }

    const std::vector<Node> nodes = list_();
    std::vector<Node> to_probe;
    {
      absl::MutexLock lock(&mu_);
      std::map<std::string, Health> kept;
      for (const Node &node : nodes) {
        auto it = health_.find(node.node_id);
        Health &health = kept[node.node_id];
        if (it != health_.end()) health = it->second;
        // One declared dead stays out of rounds until the list drops it.
        if (health.in_flight || health.failures >= options_.failure_threshold) continue;
        health.in_flight = true;
        to_probe.push_back(node);
      }
      health_.swap(kept);
    }
    for (const Node &node : to_probe) {
      probe_(node, options_.timeout,
             [this, node_id = node.node_id](absl::Status status) { OnProbeDone(node_id, status); });
    }
  }
}

void NodeHealthChecker::OnProbeDone(const std::string &node_id, const absl::Status &status) {
  absl::MutexLock lock(&mu_);
  auto it = health_.find(node_id);
  if (stopping_ || it == health_.end()) return;
  Health &health = it->second;
  health.in_flight = false;
  if (status.ok()) {
    health.failures = 0;
    return;
  }
  health.last_error = std::string(status.message());
  if (++health.failures == options_.failure_threshold) {
    dead_.emplace_back(node_id, "failed " + std::to_string(health.failures) +
                                    " health checks in a row (every " +
                                    std::to_string(options_.period.count()) +
                                    " ms); the last: " + health.last_error);
  }
}

}  // namespace sunray
