// The cluster runtime's private records, shared by its source files
// (cluster_runtime.cc: objects and plumbing; task_submitter.cc: arguments,
// Call and Cancel; actor_submitter.cc: actors as a caller; task_execution.cc:
// execution in workers). Normal tasks' queues and leases are the
// NormalTaskSubmitter's (normal_task_submitter.h); actor calls' queues and
// streams the ActorTaskSubmitter's (actor_task_submitter.h); the records of
// submitted tasks and their settlement the TaskManager's (task_manager.h);
// the queues and threads of the tasks a worker runs the TaskReceiver's
// (task_receiver.h).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/time/time.h"
#include "src/worker/cluster_runtime.h"

namespace sunray {

// Shared by the runtime's files.
inline constexpr int kControlTimeoutMs = 30000;
inline constexpr int kShortCallTimeoutMs = 10000;

// A runtime env's env_vars as environment entries, NAME=value.
inline std::vector<std::string> EnvEntries(const std::map<std::string, std::string> &vars) {
  std::vector<std::string> entries;
  for (const auto &[name, value] : vars) entries.push_back(name + "=" + value);
  return entries;
}

// A unary call finished later, with an optional action once the reply is
// on its way (used to exit a worker after its last reply).
class DeferredReactor : public grpc::ServerUnaryReactor {
 public:
  void OnDone() override {
    if (after_reply_) after_reply_();
    delete this;
  }
  void OnCancel() override {}
  void set_after_reply(std::function<void()> action) { after_reply_ = std::move(action); }

 private:
  std::function<void()> after_reply_;
};

// While a worker running a normal task waits in Get/Wait, its node does not
// count it against the CPU limit (so nested tasks can run).
class ClusterRuntime::BlockedScope {
 public:
  explicit BlockedScope(ClusterRuntime *runtime);
  ~BlockedScope();
  BlockedScope(const BlockedScope &) = delete;
  BlockedScope &operator=(const BlockedScope &) = delete;

 private:
  void Notify(bool blocked);
  ClusterRuntime *runtime_;
  bool active_ = false;
};

template <typename Reply, typename Request, typename Start, typename Done>
void ClusterRuntime::CallAsync(Request request, int timeout_ms, Start start, Done done) {
  struct Call {
    grpc::ClientContext context;
    Request request;
    Reply reply;
  };
  auto call = std::make_shared<Call>();
  call->context.AddMetadata(rpc::kTokenHeader, options_.token);
  if (timeout_ms >= 0) {
    call->context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::milliseconds(timeout_ms));
  }
  call->request = std::move(request);
  bool closed;
  {
    absl::MutexLock lock(&calls_mu_);
    closed = calls_closed_;
    if (!closed) calls_.insert(&call->context);
  }
  if (closed) {
    done(grpc::Status(grpc::StatusCode::CANCELLED, "Sunray is shutting down"), call->reply);
    return;
  }
  start(&call->context, &call->request, &call->reply,
        [this, call, done = std::move(done)](grpc::Status status) mutable {
          done(status, call->reply);
          absl::MutexLock lock(&calls_mu_);
          calls_.erase(&call->context);
          if (calls_.empty()) calls_idle_.SignalAll();
        });
}

}  // namespace sunray
