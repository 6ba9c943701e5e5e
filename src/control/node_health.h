// The control service's health checks of the nodes (Ray: the GCS health
// check manager): every `period`, each live node is asked whether it is
// alive (a probe, answered within `timeout`); after `failure_threshold`
// failed probes in a row the node is declared dead.
//
//   NodeHealthChecker health(options, [&] { return AliveNodes(); },
//                            [&](const NodeHealthChecker::Node &node, auto done) {
//                              ProbeWithRpc(node, std::move(done));
//                            },
//                            [&](const std::string &node_id, const std::string &reason) {
//                              MarkNodeDead(node_id, reason);
//                            });
//
// At most one probe per node is in flight; a round skips a node whose last
// probe has not answered. With the defaults (1 s, 1 s, 3) a node that stops
// answering is declared dead within about four seconds.
//
// Threads: one checker thread starts the probes and calls `on_dead`, without
// the checker's lock held, so `on_dead` may take its time and call back into
// the caller's own locks; probes answer from any thread (gRPC's) and only
// record the result. `list` and `probe` run on the checker thread. A node
// that leaves the list (dead or gone) is forgotten. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace sunray {

class NodeHealthChecker {
 public:
  struct Options {
    std::chrono::milliseconds period{1000};
    std::chrono::milliseconds timeout{1000};  // for one probe
    int failure_threshold = 3;
  };
  struct Node {
    std::string node_id;  // the id's bytes
    std::string address;  // host:port of its daemon
  };
  using ListNodes = std::function<std::vector<Node>()>;
  // Must call `done` exactly once, from any thread, also when stopping.
  using Probe = std::function<void(const Node &node, std::chrono::milliseconds timeout,
                                   std::function<void(absl::Status)> done)>;
  using DeadCallback = std::function<void(const std::string &node_id, const std::string &reason)>;

  // Starts the checker thread.
  NodeHealthChecker(Options options, ListNodes list, Probe probe, DeadCallback on_dead);
  ~NodeHealthChecker();  // Stop()
  NodeHealthChecker(const NodeHealthChecker &) = delete;
  NodeHealthChecker &operator=(const NodeHealthChecker &) = delete;

  // Stops the thread; no probe starts and no `on_dead` runs after it
  // returns (probes in flight may still answer: their results are dropped).
  // Idempotent.
  void Stop();

 private:
  struct Health {
    int failures = 0;  // in a row
    bool in_flight = false;
    std::string last_error;
  };
  void Loop();
  void OnProbeDone(const std::string &node_id, const absl::Status &status);

  const Options options_;
  const ListNodes list_;
  const Probe probe_;
  const DeadCallback on_dead_;
  absl::Mutex mu_;
  std::map<std::string, Health> health_ ABSL_GUARDED_BY(mu_);  // by node id
  // Nodes past the threshold, for the thread to declare dead.
  std::vector<std::pair<std::string, std::string>> dead_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sunray
