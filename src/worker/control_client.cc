#include "src/worker/control_client.h"

namespace sunray {

GrpcControlClient::GrpcControlClient(std::string token, std::string control_address)
    : token_(token),
      address_(std::move(control_address)),
      calls_(std::move(token)),
      stub_(proto::ControlService::NewStub(calls_.Channel(address_))) {}

std::unique_ptr<grpc::ClientContext> GrpcControlClient::Context(
    std::chrono::milliseconds timeout) const {
  return rpc::MakeClientContext(token_, timeout);
}

absl::StatusOr<std::vector<proto::NodeInfo>> GrpcControlClient::GetAllNodes(
    std::chrono::milliseconds timeout) {
  proto::GetAllNodesReply reply;
  const grpc::Status status = stub_->GetAllNodes(Context(timeout).get(), {}, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return std::vector<proto::NodeInfo>(reply.nodes().begin(), reply.nodes().end());
}

absl::StatusOr<proto::JobInfo> GrpcControlClient::AddJob(const proto::AddJobRequest &request,
                                                         std::chrono::milliseconds timeout) {
  proto::AddJobReply reply;
  const grpc::Status status = stub_->AddJob(Context(timeout).get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  absl::StatusOr<JobID> id = IdFromWire<JobID>("AddJob's job_id", reply.job().job_id());
  if (!id.ok()) {
    return absl::InternalError("the control service gave a malformed answer: " +
                               std::string(id.status().message()));
  }
  return std::move(*reply.mutable_job());
}

absl::Status GrpcControlClient::MarkJobFinished(const JobID &job,
                                                std::chrono::milliseconds timeout) {
  proto::MarkJobFinishedRequest request;
  request.set_job_id(job.Binary());
  proto::MarkJobFinishedReply reply;
  return rpc::FromGrpcStatus(stub_->MarkJobFinished(Context(timeout).get(), request, &reply));
}

absl::Status GrpcControlClient::CreateActor(const proto::CreateActorRequest &request,
                                            std::chrono::milliseconds timeout) {
  proto::CreateActorReply reply;
  return rpc::FromGrpcStatus(stub_->CreateActor(Context(timeout).get(), request, &reply));
}

absl::StatusOr<proto::ActorInfo> GrpcControlClient::GetNamedActor(
    const std::string &name, const std::string &ray_namespace, std::chrono::milliseconds timeout) {
  proto::GetNamedActorRequest request;
  request.set_name(name);
  request.set_ray_namespace(ray_namespace);
  proto::GetNamedActorReply reply;
  const grpc::Status status = stub_->GetNamedActor(Context(timeout).get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return std::move(*reply.mutable_actor());
}

absl::StatusOr<proto::ActorInfo> GrpcControlClient::KillActor(const std::string &actor_id,
                                                              bool no_restart,
                                                              std::chrono::milliseconds timeout) {
  proto::KillActorRequest request;
  request.set_actor_id(actor_id);
  request.set_no_restart(no_restart);
  proto::KillActorReply reply;
  const grpc::Status status = stub_->KillActor(Context(timeout).get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return std::move(*reply.mutable_actor());
}

void GrpcControlClient::WatchActor(const std::string &actor_id, int64_t after_version,
                                   std::function<void(absl::StatusOr<proto::ActorInfo>)> done) {
  proto::GetActorInfoRequest request;
  request.set_actor_id(actor_id);
  request.set_after_version(after_version);
  calls_.Call<proto::ControlService>(
      address_, &proto::ControlService::Stub::async::GetActorInfo, request, kActorPollTimeout,
      [done = std::move(done)](const grpc::Status &status, proto::GetActorInfoReply &reply) {
        if (!status.ok()) {
          done(rpc::FromGrpcStatus(status));
          return;
        }
        done(std::move(*reply.mutable_actor()));
      });
}

absl::Status GrpcControlClient::CreatePlacementGroup(const proto::PlacementGroupInfo &group,
                                                     std::chrono::milliseconds timeout) {
  proto::CreatePlacementGroupRequest request;
  *request.mutable_group() = group;
  proto::CreatePlacementGroupReply reply;
  return rpc::FromGrpcStatus(stub_->CreatePlacementGroup(Context(timeout).get(), request, &reply));
}

absl::Status GrpcControlClient::RemovePlacementGroup(const std::string &group_id,
                                                     std::chrono::milliseconds timeout) {
  proto::RemovePlacementGroupRequest request;
  request.set_placement_group_id(group_id);
  proto::RemovePlacementGroupReply reply;
  return rpc::FromGrpcStatus(stub_->RemovePlacementGroup(Context(timeout).get(), request, &reply));
}

absl::StatusOr<std::optional<proto::PlacementGroupInfo>> GrpcControlClient::GetPlacementGroup(
    const proto::GetPlacementGroupRequest &request, std::chrono::milliseconds timeout) {
  proto::GetPlacementGroupReply reply;
  const grpc::Status status = stub_->GetPlacementGroup(Context(timeout).get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (!reply.found()) return std::optional<proto::PlacementGroupInfo>();
  return std::optional<proto::PlacementGroupInfo>(std::move(*reply.mutable_group()));
}

absl::StatusOr<std::vector<proto::PlacementGroupInfo>> GrpcControlClient::GetAllPlacementGroups(
    std::chrono::milliseconds timeout) {
  proto::GetAllPlacementGroupsReply reply;
  const grpc::Status status = stub_->GetAllPlacementGroups(Context(timeout).get(), {}, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return std::vector<proto::PlacementGroupInfo>(reply.groups().begin(), reply.groups().end());
}

absl::StatusOr<proto::PlacementGroupInfo> GrpcControlClient::WaitPlacementGroupReady(
    const std::string &group_id, std::chrono::milliseconds wait) {
  proto::WaitPlacementGroupReadyRequest request;
  request.set_placement_group_id(group_id);
  request.set_timeout_ms(wait.count());
  proto::WaitPlacementGroupReadyReply reply;
  // The service answers by `wait`; the call's own deadline leaves it room.
  const grpc::Status status =
      stub_->WaitPlacementGroupReady(Context(wait + kShortCallTimeout).get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return std::move(*reply.mutable_group());
}

}  // namespace sunray
