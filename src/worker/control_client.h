// The calls the worker library makes to the control service, behind an
// interface so the components that use them are tested without one.
//
// ControlClient: the blocking calls wait at most `timeout` and must not run
// on a gRPC callback thread (they run on the caller's thread: ray::Init,
// actor creation, lookup, kill, Shutdown). WatchActor is asynchronous:
// `done` runs exactly once, on any thread (also before it returns, with
// Cancelled once the client is stopped).
// GrpcControlClient: over a shared channel and an rpc::AsyncCaller; Stop
// cancels the watches in flight and waits for their callbacks. Thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control.grpc.pb.h"
#include "src/common/id.h"
#include "src/rpc/async_caller.h"
#include "src/worker/timeouts.h"

namespace sunray {

class ControlClient {
 public:
  virtual ~ControlClient() = default;

  [[nodiscard]] virtual absl::StatusOr<std::vector<proto::NodeInfo>> GetAllNodes(
      std::chrono::milliseconds timeout) = 0;
  // Registers this driver's job; its JobInfo (the id checked) on success.
  [[nodiscard]] virtual absl::StatusOr<proto::JobInfo> AddJob(
      const proto::AddJobRequest &request, std::chrono::milliseconds timeout) = 0;
  [[nodiscard]] virtual absl::Status MarkJobFinished(const JobID &job,
                                                     std::chrono::milliseconds timeout) = 0;
  // Answered once the actor is registered: AlreadyExists when its name is
  // taken in its namespace.
  [[nodiscard]] virtual absl::Status CreateActor(const proto::CreateActorRequest &request,
                                                 std::chrono::milliseconds timeout) = 0;
  // NotFound unless a live actor has `name` in `ray_namespace`.
  [[nodiscard]] virtual absl::StatusOr<proto::ActorInfo> GetNamedActor(
      const std::string &name, const std::string &ray_namespace,
      std::chrono::milliseconds timeout) = 0;
  // The actor's state right after the kill (an empty ActorInfo when the
  // service sent none).
  [[nodiscard]] virtual absl::StatusOr<proto::ActorInfo> KillActor(
      const std::string &actor_id, bool no_restart, std::chrono::milliseconds timeout) = 0;
  // Long poll: the actor's state once its version is above `after_version`
  // (at once for -1); DeadlineExceeded when nothing changed within
  // kActorPollTimeout, NotFound for an actor the service does not know.
  virtual void WatchActor(const std::string &actor_id, int64_t after_version,
                          std::function<void(absl::StatusOr<proto::ActorInfo>)> done) = 0;

  // Placement groups. Create is answered once the group is registered
  // (AlreadyExists: its name is taken); placing it goes on after.
  [[nodiscard]] virtual absl::Status CreatePlacementGroup(const proto::PlacementGroupInfo &group,
                                                          std::chrono::milliseconds timeout) = 0;
  // NotFound for an unknown group.
  [[nodiscard]] virtual absl::Status RemovePlacementGroup(const std::string &group_id,
                                                          std::chrono::milliseconds timeout) = 0;
  // By id, or by name in a namespace (id empty); nullopt: no such group.
  [[nodiscard]] virtual absl::StatusOr<std::optional<proto::PlacementGroupInfo>> GetPlacementGroup(
      const proto::GetPlacementGroupRequest &request, std::chrono::milliseconds timeout) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<proto::PlacementGroupInfo>>
  GetAllPlacementGroups(std::chrono::milliseconds timeout) = 0;
  // The group once it is CREATED or REMOVED, or as it is after `wait`.
  // NotFound for an unknown group.
  [[nodiscard]] virtual absl::StatusOr<proto::PlacementGroupInfo> WaitPlacementGroupReady(
      const std::string &group_id, std::chrono::milliseconds wait) = 0;
};

class GrpcControlClient : public ControlClient {
 public:
  GrpcControlClient(std::string token, std::string control_address);

  absl::StatusOr<std::vector<proto::NodeInfo>> GetAllNodes(
      std::chrono::milliseconds timeout) override;
  absl::StatusOr<proto::JobInfo> AddJob(const proto::AddJobRequest &request,
                                        std::chrono::milliseconds timeout) override;
  absl::Status MarkJobFinished(const JobID &job, std::chrono::milliseconds timeout) override;
  absl::Status CreateActor(const proto::CreateActorRequest &request,
                           std::chrono::milliseconds timeout) override;
  absl::StatusOr<proto::ActorInfo> GetNamedActor(const std::string &name,
                                                 const std::string &ray_namespace,
                                                 std::chrono::milliseconds timeout) override;
  absl::StatusOr<proto::ActorInfo> KillActor(const std::string &actor_id, bool no_restart,
                                             std::chrono::milliseconds timeout) override;
  void WatchActor(const std::string &actor_id, int64_t after_version,
                  std::function<void(absl::StatusOr<proto::ActorInfo>)> done) override;
  absl::Status CreatePlacementGroup(const proto::PlacementGroupInfo &group,
                                    std::chrono::milliseconds timeout) override;
  absl::Status RemovePlacementGroup(const std::string &group_id,
                                    std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::optional<proto::PlacementGroupInfo>> GetPlacementGroup(
      const proto::GetPlacementGroupRequest &request, std::chrono::milliseconds timeout) override;
  absl::StatusOr<std::vector<proto::PlacementGroupInfo>> GetAllPlacementGroups(
      std::chrono::milliseconds timeout) override;
  absl::StatusOr<proto::PlacementGroupInfo> WaitPlacementGroupReady(
      const std::string &group_id, std::chrono::milliseconds wait) override;

  // Cancels the watches in flight and waits for their callbacks; later
  // watches end Cancelled at once. Idempotent.
  void Stop() { calls_.Stop(); }

 private:
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) const;

  const std::string token_;
  const std::string address_;
  rpc::AsyncCaller calls_;
  const std::unique_ptr<proto::ControlService::Stub> stub_;
};

}  // namespace sunray
