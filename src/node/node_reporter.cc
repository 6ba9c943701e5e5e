#include "src/node/node_reporter.h"

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
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::FromChrono(options_.period))) {
      return;
    }
  }
}

}  // namespace sunray
