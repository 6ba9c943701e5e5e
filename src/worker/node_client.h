// The calls the worker library makes to its node daemon for leases, behind
// an interface so the components that lease workers are tested without one.
//
// NodeClient: asynchronous; `done` runs exactly once, on any thread (also
// before the call returns, e.g. with Cancelled once the client is stopped).
// GrpcNodeClient: over rpc::AsyncCaller; Stop cancels what is in flight and
// waits for the callbacks. It also makes the facade's blocking calls of
// connecting and shutting down (GetNodeStats, RegisterWorker, the driver's
// registration), which no component needs; they wait at most `timeout` and
// must not run on a gRPC callback thread. Thread-safe.
//
// LeaseReturner gives a lease back to the node without blocking, retrying a
// return the node did not confirm: a lease the node never hears back about
// stays held there, with its resources, until this process exits.
//
// BlockedNotifier tells the node whether this worker's running task is
// blocked in Get, without blocking that task.
//
// NodeClients: the node daemons a process leases from — its own, and those
// a spillback names — each with its client and returner.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "node.grpc.pb.h"
#include "objstore.grpc.pb.h"
#include "src/common/id.h"
#include "src/rpc/async_caller.h"

namespace sunray {

class NodeClient {
 public:
  virtual ~NodeClient() = default;
  // Waits (no deadline) until the node grants a worker or refuses.
  virtual void RequestWorkerLease(
      const proto::RequestWorkerLeaseRequest &request,
      std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> done) = 0;
  virtual void ReturnWorker(const proto::ReturnWorkerRequest &request,
                            std::chrono::milliseconds timeout,
                            std::function<void(absl::Status)> done) = 0;
  virtual void NotifyBlocked(const proto::NotifyBlockedRequest &request,
                             std::chrono::milliseconds timeout,
                             std::function<void(absl::Status)> done) = 0;
};

class GrpcNodeClient : public NodeClient {
 public:
  GrpcNodeClient(std::string token, std::string node_address)
      : token_(token), address_(std::move(node_address)), calls_(std::move(token)) {}

  void RequestWorkerLease(
      const proto::RequestWorkerLeaseRequest &request,
      std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> done) override;
  void ReturnWorker(const proto::ReturnWorkerRequest &request, std::chrono::milliseconds timeout,
                    std::function<void(absl::Status)> done) override;
  void NotifyBlocked(const proto::NotifyBlockedRequest &request, std::chrono::milliseconds timeout,
                     std::function<void(absl::Status)> done) override;
  // The node's id checked (InternalError naming it when malformed).
  [[nodiscard]] absl::StatusOr<proto::GetNodeStatsReply> GetNodeStats(
      std::chrono::milliseconds timeout);
  [[nodiscard]] absl::Status RegisterWorker(const proto::RegisterWorkerRequest &request,
                                            std::chrono::milliseconds timeout);
  [[nodiscard]] absl::Status RegisterDriver(const proto::RegisterDriverRequest &request,
                                            std::chrono::milliseconds timeout);
  [[nodiscard]] absl::Status UnregisterDriver(const JobID &job, std::chrono::milliseconds timeout);
  // Blocks until the node has a copy of the object (PullObject).
  [[nodiscard]] absl::Status PullObject(const proto::PullObjectRequest &request,
                                        std::chrono::milliseconds timeout);
  // The node's store deletes these objects (ObjectStoreService.DeleteObjects).
  void DeleteObjects(const std::vector<std::string> &ids, std::chrono::milliseconds timeout,
                     std::function<void(absl::Status)> done);
  // The same, waiting for the answer.
  [[nodiscard]] absl::Status DeleteObjectsNow(const std::vector<std::string> &ids,
                                              std::chrono::milliseconds timeout);

  // Cancels the calls in flight and waits for their callbacks; later calls
  // end Cancelled at once. Idempotent.
  void Stop() { calls_.Stop(); }

 private:
  std::unique_ptr<proto::NodeService::Stub> Stub();

  const std::string token_;
  const std::string address_;
  rpc::AsyncCaller calls_;
};

class LeaseReturner {
 public:
  static constexpr int kAttempts = 4;
  // The first attempt's timeout; attempt n waits n times as long.
  static constexpr std::chrono::milliseconds kFirstTimeout{5000};

  // `node` must outlive this object and every return in flight.
  explicit LeaseReturner(NodeClient *node) : node_(node) {}

  // Returns lease `lease_id` (of worker process `pid`, for the log) to the
  // node; `worker_dead` tells the node the worker must not be reused.
  // Retried up to kAttempts times unless the node answers OK, NotFound (the
  // lease ended already: its worker exited) or the client is stopping
  // (Cancelled: the node ends this process's leases itself). `done`, if
  // set, runs once with the last answer.
  void Return(int64_t lease_id, bool worker_dead, int pid,
              std::function<void(absl::Status)> done = nullptr);

 private:
  void Attempt(proto::ReturnWorkerRequest request, int pid, int attempt,
               std::function<void(absl::Status)> done);

  NodeClient *const node_;
};

// The node daemons this process leases workers from: its own node's, and
// the others' that spillbacks name, by NodeService address. What Local and
// At return lives as long as this object. Thread-safe.
class NodeClients {
 public:
  struct Node {
    NodeClient *client = nullptr;
    LeaseReturner *returner = nullptr;
  };
  virtual ~NodeClients() = default;
  virtual Node Local() = 0;
  // Made on first use.
  virtual Node At(const std::string &address) = 0;
};

// Over gRPC: the local node's client made at construction, the others' on
// first use (each over its own channel). Stop stops them all (idempotent);
// a client made after Stop is stopped at once.
class GrpcNodeClients : public NodeClients {
 public:
  GrpcNodeClients(std::string token, std::string local_address);
  ~GrpcNodeClients() override { Stop(); }

  Node Local() override { return At(local_address_); }
  Node At(const std::string &address) override;
  // The local node's client, for the calls of connecting and shutting down.
  GrpcNodeClient &local() { return *local_; }
  // The client of the node at `address`, for calls beyond leases.
  GrpcNodeClient &at(const std::string &address) {
    return *static_cast<GrpcNodeClient *>(At(address).client);
  }
  void Stop();

 private:
  struct Entry {
    std::unique_ptr<GrpcNodeClient> client;
    std::unique_ptr<LeaseReturner> returner;
  };

  const std::string token_;
  const std::string local_address_;
  GrpcNodeClient *local_ = nullptr;  // in nodes_
  absl::Mutex mu_;
  std::map<std::string, Entry> nodes_ ABSL_GUARDED_BY(mu_);
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

// While a worker's running task waits in Get or Wait, its node does not
// count it against the CPU limit (so the tasks it waits for can run). The
// task tells it with Set, which never blocks: one call is in flight at a
// time, and when it ends the state wanted by then is sent if the node does
// not have it yet (a block and an unblock both within one call send
// nothing more). A call that fails is logged and not repeated. Thread-safe.
class BlockedNotifier {
 public:
  static constexpr std::chrono::milliseconds kTimeout{5000};

  // `node` must outlive this object and every call in flight.
  BlockedNotifier(NodeClient *node, int64_t startup_token)
      : node_(node), startup_token_(startup_token) {}

  void Set(bool blocked);

 private:
  // Sends `blocked`; then what was wanted meanwhile.
  void Send(bool blocked);

  NodeClient *const node_;
  const int64_t startup_token_;
  absl::Mutex mu_;
  bool wanted_ ABSL_GUARDED_BY(mu_) = false;
  bool node_has_ ABSL_GUARDED_BY(mu_) = false;  // what the last call told it
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sunray
