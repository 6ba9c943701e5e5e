// What a node tells the control service about itself while it runs: its
// available resources and its demand, every `period` (ReportNodeState),
// and sooner — `min_interval` after the last report — when told something
// changed (ReportSoon). The answer carries the cluster view (the caller's
// `report` hands it on).
// The answer is how a node learns that control declared it dead — after it
// stopped answering health checks, e.g. while paused or cut off — and must
// exit: its work was failed, and a new start joins as a new node.
//
//   NodeReporter reporter({}, [&] { return control.ReportNodeState(...); },
//                         [&](const std::string &why) { ExitAsDeclaredDead(why); });
//
// One thread makes the calls (`report`, blocking, bounded by its own
// deadline) and calls `on_declared_dead` once, when a report is answered
// FAILED_PRECONDITION; it reports no more after that. Other failures
// (control unreachable) are logged once until a report succeeds again.
// Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace sunray {

class NodeReporter {
 public:
  struct Options {
    std::chrono::milliseconds period{1000};
    std::chrono::milliseconds min_interval{100};  // at most one report per this
  };
  using Report = std::function<absl::Status()>;
  using DeclaredDead = std::function<void(const std::string &why)>;

  // Starts the thread; the first report goes out at once.
  NodeReporter(Options options, Report report, DeclaredDead on_declared_dead);
  ~NodeReporter();  // Stop()
  NodeReporter(const NodeReporter &) = delete;
  NodeReporter &operator=(const NodeReporter &) = delete;

  // Stops the thread (after the report in flight, if any). Idempotent.
  void Stop();
  // Something changed: the next report goes `min_interval` after the last
  // one instead of a period after it. Never blocks on the report.
  void ReportSoon();

 private:
  void Loop();

  const Options options_;
  const Report report_;
  const DeclaredDead on_declared_dead_;
  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool soon_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace sunray
