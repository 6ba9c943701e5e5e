#include "src/worker/node_client.h"

#include "node.grpc.pb.h"
#include "ray/api/logging.h"

namespace sunray {

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
          RAYLOG(WARNING) << "Could not return the lease of worker " << pid << " to the node after "
                          << attempt << " attempts: " << status.message();
        }
        if (done) done(status);
      });
}

}  // namespace sunray
