#include "src/node/node_reporter.h"

#include <algorithm>
#include <utility>

#include "absl/time/time.h"
#include "src/common/log.h"

namespace sunray {

NodeReporter::NodeReporter(Options options, Report report, DeclaredDead on_declared_dead)
    : options_(options),
      report_(std::move(report)),
      on_declared_dead_(std::move(on_declared_dead)) {
  thread_ = std::thread([this] { Loop(); });
}

NodeReporter::~NodeReporter() { Stop(); }

void NodeReporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void NodeReporter::Loop() {
  bool failing = false;
  while (true) {
    const absl::Status reported = report_();
    if (absl::IsFailedPrecondition(reported)) {
      on_declared_dead_(std::string(reported.message()));
      return;
    }
    if (!reported.ok() && !failing) {
      log::Get("node")->warn("cannot report to the control service (will keep trying): {}",
                             reported.message());
    }
    failing = !reported.ok();
    absl::MutexLock lock(&mu_);
    // Changes wait out the shortest interval (so a burst of them is one
    // report), then go at once; otherwise the period.
    soon_ = false;
    const auto first = std::min(options_.min_interval, options_.period);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(first))) return;
    auto due = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || soon_; };
    mu_.AwaitWithTimeout(absl::Condition(&due), absl::FromChrono(options_.period - first));
    if (stopping_) return;
  }
}

void NodeReporter::ReportSoon() {
  absl::MutexLock lock(&mu_);
  soon_ = true;
}

}  // namespace sunray
