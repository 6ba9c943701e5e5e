#include "src/worker/node_client.h"
#include "src/common/log.h"

#include "node.grpc.pb.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.node"));
  return **logger;
}

}  // namespace

void GrpcNodeClient::RequestWorkerLease(
    const proto::RequestWorkerLeaseRequest &request,
    std::function<void(absl::StatusOr<proto::RequestWorkerLeaseReply>)> done) {
  calls_.Call<proto::NodeService>(
      address_, &proto::NodeService::Stub::async::RequestWorkerLease, request,
      rpc::AsyncCaller::kNoDeadline,
      [done = std::move(done)](const grpc::Status &status, proto::RequestWorkerLeaseReply &reply) {
        if (!status.ok()) {
          done(rpc::FromGrpcStatus(status));
          return;
        }
        done(std::move(reply));
      });
}

void GrpcNodeClient::ReturnWorker(const proto::ReturnWorkerRequest &request,
                                  std::chrono::milliseconds timeout,
                                  std::function<void(absl::Status)> done) {
  calls_.Call<proto::NodeService>(
      address_, &proto::NodeService::Stub::async::ReturnWorker, request, timeout,
      [done = std::move(done)](const grpc::Status &status, const proto::ReturnWorkerReply &) {
        done(rpc::FromGrpcStatus(status));
      });
}

void GrpcNodeClient::NotifyBlocked(const proto::NotifyBlockedRequest &request,
                                   std::chrono::milliseconds timeout,
                                   std::function<void(absl::Status)> done) {
  calls_.Call<proto::NodeService>(
      address_, &proto::NodeService::Stub::async::NotifyBlocked, request, timeout,
      [done = std::move(done)](const grpc::Status &status, const proto::NotifyBlockedReply &) {
        done(rpc::FromGrpcStatus(status));
      });
}

GrpcNodeClients::GrpcNodeClients(std::string token, std::string local_address)
    : token_(std::move(token)), local_address_(std::move(local_address)) {
  local_ = static_cast<GrpcNodeClient *>(At(local_address_).client);
}

NodeClients::Node GrpcNodeClients::At(const std::string &address) {
  absl::MutexLock lock(&mu_);
  Entry &entry = nodes_[address];
  if (entry.client == nullptr) {
    entry.client = std::make_unique<GrpcNodeClient>(token_, address);
    entry.returner = std::make_unique<LeaseReturner>(entry.client.get());
    if (stopped_) entry.client->Stop();
  }
  return Node{entry.client.get(), entry.returner.get()};
}

void GrpcNodeClients::Stop() {
  std::vector<GrpcNodeClient *> clients;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    for (auto &[address, entry] : nodes_) clients.push_back(entry.client.get());
  }
  // Each waits for its callbacks, which may call At: without the lock.
  for (GrpcNodeClient *client : clients) client->Stop();
}

absl::Status GrpcNodeClient::PullObject(const proto::PullObjectRequest &request,
                                        std::chrono::milliseconds timeout) {
  proto::PullObjectReply reply;
  return rpc::FromGrpcStatus(
      Stub()->PullObject(rpc::MakeClientContext(token_, timeout).get(), request, &reply));
}

namespace {

proto::DeleteObjectsRequest DeleteRequest(const std::vector<std::string> &ids) {
  proto::DeleteObjectsRequest request;
  for (const auto &id : ids) request.add_object_ids(id);
  return request;
}

}  // namespace

void GrpcNodeClient::DeleteObjects(const std::vector<std::string> &ids,
                                   std::chrono::milliseconds timeout,
                                   std::function<void(absl::Status)> done) {
  calls_.Call<proto::ObjectStoreService>(
      address_, &proto::ObjectStoreService::Stub::async::DeleteObjects, DeleteRequest(ids), timeout,
      [done = std::move(done)](const grpc::Status &status, const proto::DeleteObjectsReply &) {
        done(rpc::FromGrpcStatus(status));
      });
}

absl::Status GrpcNodeClient::DeleteObjectsNow(const std::vector<std::string> &ids,
                                              std::chrono::milliseconds timeout) {
  proto::DeleteObjectsReply reply;
  return rpc::FromGrpcStatus(proto::ObjectStoreService::NewStub(calls_.Channel(address_))
                                 ->DeleteObjects(rpc::MakeClientContext(token_, timeout).get(),
                                                 DeleteRequest(ids), &reply));
}

std::unique_ptr<proto::NodeService::Stub> GrpcNodeClient::Stub() {
  return proto::NodeService::NewStub(calls_.Channel(address_));
}

absl::StatusOr<proto::GetNodeStatsReply> GrpcNodeClient::GetNodeStats(
    std::chrono::milliseconds timeout) {
  proto::GetNodeStatsReply reply;
  const grpc::Status status =
      Stub()->GetNodeStats(rpc::MakeClientContext(token_, timeout).get(), {}, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  absl::StatusOr<NodeID> id = IdFromWire<NodeID>("GetNodeStats' node_id", reply.node_id());
  if (!id.ok()) {
    return absl::InternalError("the node daemon gave a malformed answer: " +
                               std::string(id.status().message()));
  }
  return reply;
}

absl::Status GrpcNodeClient::RegisterWorker(const proto::RegisterWorkerRequest &request,
                                            std::chrono::milliseconds timeout) {
  proto::RegisterWorkerReply reply;
  return rpc::FromGrpcStatus(
      Stub()->RegisterWorker(rpc::MakeClientContext(token_, timeout).get(), request, &reply));
}

absl::Status GrpcNodeClient::RegisterDriver(const proto::RegisterDriverRequest &request,
                                            std::chrono::milliseconds timeout) {
  proto::RegisterDriverReply reply;
  return rpc::FromGrpcStatus(
      Stub()->RegisterDriver(rpc::MakeClientContext(token_, timeout).get(), request, &reply));
}

absl::Status GrpcNodeClient::UnregisterDriver(const JobID &job, std::chrono::milliseconds timeout) {
  proto::UnregisterDriverRequest request;
  request.set_job_id(job.Binary());
  proto::UnregisterDriverReply reply;
  return rpc::FromGrpcStatus(
      Stub()->UnregisterDriver(rpc::MakeClientContext(token_, timeout).get(), request, &reply));
}

void BlockedNotifier::Set(bool blocked) {
  {
    absl::MutexLock lock(&mu_);
    wanted_ = blocked;
    if (in_flight_ || node_has_ == blocked) return;
    in_flight_ = true;
  }
  Send(blocked);
}

void BlockedNotifier::Send(bool blocked) {
  proto::NotifyBlockedRequest request;
  request.set_startup_token(startup_token_);
  request.set_blocked(blocked);
  node_->NotifyBlocked(request, kTimeout, [this, blocked](absl::Status status) {
    if (!status.ok() && !absl::IsCancelled(status)) {
      Logger().warn("could not tell the node that this worker's task {}: {}",
                    blocked ? "blocks" : "goes on", status.message());
    }
    bool next;
    {
      absl::MutexLock lock(&mu_);
      // (A failed call is not repeated: the node may be gone.)
      node_has_ = blocked;
      if (absl::IsCancelled(status) || wanted_ == node_has_) {
        in_flight_ = false;
        return;
      }
      next = wanted_;
    }
    Send(next);
  });
}

void LeaseReturner::Return(int64_t lease_id, bool worker_dead, int pid,
                           std::function<void(absl::Status)> done) {
  proto::ReturnWorkerRequest request;
  request.set_lease_id(lease_id);
  request.set_worker_dead(worker_dead);
  Attempt(std::move(request), pid, 1, std::move(done));
}

void LeaseReturner::Attempt(proto::ReturnWorkerRequest request, int pid, int attempt,
                            std::function<void(absl::Status)> done) {
  proto::ReturnWorkerRequest sent = request;
  node_->ReturnWorker(
      sent, kFirstTimeout * attempt,
      [this, request = std::move(request), pid, attempt,
       done = std::move(done)](absl::Status status) mutable {
        const bool settled = status.ok() || absl::IsCancelled(status) || absl::IsNotFound(status);
        if (!settled && attempt < kAttempts) {
          Attempt(std::move(request), pid, attempt + 1, std::move(done));
          return;
        }
        if (!settled) {
          Logger().warn("could not return the lease of worker {} to the node after {} attempts: {}",
                        pid, attempt, status.message());
        }
        if (done) done(status);
      });
}

}  // namespace sunray
