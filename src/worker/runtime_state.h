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

}  // namespace sunray
