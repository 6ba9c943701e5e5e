// The cluster runtime's private records, shared by its source files
// (cluster_runtime.cc: objects and plumbing; task_submitter.cc: tasks and
// actors as a caller; task_receiver.cc: execution in workers).
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

// Where an object's release action goes: the runtime's deferred queue while
// it runs, nowhere after Shutdown.
struct FreeTarget {
  absl::Mutex mu;
  ClusterRuntime *runtime ABSL_GUARDED_BY(mu) = nullptr;
};

// A runtime env's env_vars as environment entries, NAME=value.
inline std::vector<std::string> EnvEntries(const std::map<std::string, std::string> &vars) {
  std::vector<std::string> entries;
  for (const auto &[name, value] : vars) entries.push_back(name + "=" + value);
  return entries;
}

// A task this process submitted, from Call/CallActor until its result is in.
struct ClusterRuntime::PendingTask {
  proto::TaskSpec spec;
  // Ids this process holds references on until the task is done (by-ref
  // arguments, refs inside by-value arguments, arguments put in the store).
  std::vector<std::string> held;
  std::string class_key;  // normal tasks: the scheduling class
  // Normal tasks: attempts left after this one (-1: unlimited), spent on a
  // dead worker, or on an exception with retry_exceptions.
  int retries_left = 0;
  bool retry_exceptions = false;
  // Actor calls: place in the caller's submission order, and sends lost to
  // the actor's death so far (resent while the actor's max_task_retries allow).
  uint64_t order = 0;
  int lost = 0;
  // Guarded by the runtime's mu_:
  bool resolved = false;
  std::optional<ErrorInfo> failed;  // a dependency failed
  bool cancelled = false;
  std::string pushed_to;  // the worker's address once pushed
  // Guarded by `mu` (filled from several threads while resolving):
  absl::Mutex mu;
  std::optional<ErrorInfo> dependency_error;
  std::atomic<int> unresolved{0};
};

// Leases live on this long without work before they go back to the node:
// long enough for a driver's next synchronous call to reuse them.
inline constexpr absl::Duration kLeaseLinger = absl::Milliseconds(100);

// Leased workers and queued tasks of one scheduling class (resources).
struct ClusterRuntime::LeasedWorker {
  int64_t lease_id = 0;
  std::string address;       // its WorkerService
  std::string task_address;  // its task streams
  int pid = 0;
  std::shared_ptr<TaskStreamClient> stream;  // until it ends
  // Tasks pushed and not answered, by return id.
  absl::flat_hash_map<std::string, std::shared_ptr<PendingTask>> tasks;
  // It sent a task back (its running task waits in Get): no more tasks queue
  // behind it until one of its tasks finishes.
  bool bounced = false;
  bool dead = false;      // its stream broke: leaving the class
  bool returned = false;  // the lease went back to the node
  absl::Time idle_since;
};

struct ClusterRuntime::SchedulingClass {
  std::string key;
  proto::ResourceMap resources;
  std::vector<std::string> env;  // the runtime env's env_vars, NAME=value
  std::deque<std::shared_ptr<PendingTask>> queue;
  std::vector<std::shared_ptr<LeasedWorker>> workers;
  int pending_leases = 0;
};

// A caller's view of an actor.
struct ClusterRuntime::ActorState {
  std::string id;
  std::string class_name;
  bool known = false;  // `info` has arrived from the control service
  proto::ActorInfo info;
  bool watching = false;
  // A call to the current address failed: hold calls until the control
  // service reports the next state.
  bool suspect = false;
  std::shared_ptr<ActorChannel> channel;  // to the current incarnation, once used
  int64_t next_seq = 0;
  uint64_t next_order = 0;
  // Calls in submission order, sent from the front once resolved.
  std::deque<std::shared_ptr<PendingTask>> queue;
  // References held for the creation task's arguments (this process
  // created the actor), released when it is dead for good.
  std::vector<std::string> creation_held;
};

// The stream that carries this caller's calls to one incarnation of an
// actor, and the calls on it not answered yet.
struct ClusterRuntime::ActorChannel {
  std::string address;
  std::shared_ptr<TaskStreamClient> stream;  // until it ends
  absl::flat_hash_map<std::string, std::shared_ptr<PendingTask>> calls;
};

// The actor this worker process hosts.
struct ClusterRuntime::HostedActor {
  void *instance = nullptr;
  ray::internal::ActorDeleter deleter = nullptr;
  ActorID id;
  int restarts = 0;
  std::string class_name;
  // Per caller: the next call number to start, and calls that came early.
  struct Caller {
    int64_t next = 0;
    std::map<int64_t, std::function<void()>> parked;
  };
  absl::flat_hash_map<std::string, Caller> callers;
};

// An object value held in a std::string (a value that arrived inline).
class StringBuffer : public ray::internal::ObjectBuffer {
 public:
  explicit StringBuffer(std::string data) : data_(std::move(data)) {}
  const char *Data() const override { return data_.data(); }
  size_t Size() const override { return data_.size(); }

 private:
  std::string data_;
};

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

ErrorInfo ErrorFromProto(const proto::ErrorInfo &error);
void ErrorToProto(const ErrorInfo &error, proto::ErrorInfo *out);

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
