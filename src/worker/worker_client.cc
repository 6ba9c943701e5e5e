#include "src/worker/worker_client.h"

#include "src/worker/timeouts.h"
#include "worker.grpc.pb.h"

namespace sunray {

absl::Status WorkerClient::AddBorrower(const std::string &owner, const std::string &id,
                                       const std::string &borrower) {
  proto::AddBorrowerRequest request;
  request.set_object_id(id);
  request.set_borrower_address(borrower);
  proto::AddBorrowerReply reply;
  auto stub = proto::WorkerService::NewStub(calls_.Channel(owner));
  const grpc::Status status =
      stub->AddBorrower(rpc::MakeClientContext(token_, kShortCallTimeout).get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (!reply.found()) return absl::NotFoundError("the owner no longer has the object");
  return absl::OkStatus();
}

void WorkerClient::RemoveBorrower(const std::string &owner, const std::string &id,
                                  const std::string &borrower, int64_t count) {
  proto::RemoveBorrowerRequest request;
  request.set_object_id(id);
  request.set_borrower_address(borrower);
  request.set_count(count);
  // Nothing to do on failure: an owner that cannot be reached is gone, and
  // its count with it.
  calls_.Call<proto::WorkerService>(
      owner, &proto::WorkerService::Stub::async::RemoveBorrower, request, kShortCallTimeout,
      [](const grpc::Status &, const proto::RemoveBorrowerReply &) {});
}

void WorkerClient::WatchExit(const std::string &address, std::function<void(absl::Status)> done) {
  calls_.Call<proto::WorkerService>(
      address, &proto::WorkerService::Stub::async::WatchExit, proto::WatchExitRequest(),
      rpc::AsyncCaller::kNoDeadline,
      [done = std::move(done)](const grpc::Status &status, const proto::WatchExitReply &) {
        done(rpc::FromGrpcStatus(status));
      });
}

void WorkerClient::GetOwnedObject(const std::string &owner, const std::string &id,
                                  std::function<void(absl::StatusOr<proto::ObjectValue>)> done) {
  proto::GetOwnedObjectRequest request;
  request.set_object_id(id);
  calls_.Call<proto::WorkerService>(
      owner, &proto::WorkerService::Stub::async::GetOwnedObject, request,
      rpc::AsyncCaller::kNoDeadline,
      [done = std::move(done)](const grpc::Status &status, proto::GetOwnedObjectReply &reply) {
        if (!status.ok()) {
          done(rpc::FromGrpcStatus(status));
          return;
        }
        done(std::move(*reply.mutable_value()));
      });
}

absl::Status WorkerClient::CancelTask(const std::string &worker, const std::string &return_id,
                                      bool force) {
  proto::CancelTaskRequest request;
  request.set_return_id(return_id);
  request.set_force(force);
  proto::CancelTaskReply reply;
  auto stub = proto::WorkerService::NewStub(calls_.Channel(worker));
  return rpc::FromGrpcStatus(
      stub->CancelTask(rpc::MakeClientContext(token_, kShortCallTimeout).get(), request, &reply));
}

}  // namespace sunray
