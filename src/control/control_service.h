// The control service (Ray's GCS): cluster metadata — the node table, the
// job table, a namespaced KV store, the actor directory (ActorDirectory) and
// pub/sub of actor and node changes (Publisher) and the nodes' health checks
// (NodeHealthChecker: a node that stops answering is declared dead, as one
// that unregisters) and placement groups (PlacementGroupDirectory).
//
// Tables live in memory. The node, job and KV tables are guarded by one
// mutex; the directory and the publisher have their own (never taken while
// holding this one). Handlers run on gRPC's callback threads, are short and
// never block on another service: GetActorInfo long polls and Subscribe
// streams are answered later by the directory and the publisher. Every call
// needs the cluster token (rpc::HandleUnary, or the same check by hand).
//
// Teardown: Stop() (also run by the destructor) stops the actor directory's
// scheduler and calls, answers every long poll and ends every stream, so the
// server's Shutdown does not wait for them. Stop the service, then the
// server; destroy the server before the service.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "control.grpc.pb.h"
#include "src/control/actor_directory.h"
#include "src/control/node_health.h"
#include "src/control/placement_groups.h"
#include "src/control/publisher.h"
#include "src/rpc/async_caller.h"

namespace sunray {

class ControlService final : public proto::ControlService::CallbackService {
 public:
  struct Options {
    std::string token;  // the cluster token every caller must present
    // Wait before leasing a worker again for an actor whose lease failed.
    std::chrono::milliseconds actor_lease_retry_delay{500};
    NodeHealthChecker::Options health;
  };

  explicit ControlService(Options options);
  ~ControlService() override;

  // Stops actor scheduling, answers long polls, ends streams. Idempotent.
  void Stop();

  grpc::ServerUnaryReactor *RegisterNode(grpc::CallbackServerContext *context,
                                         const proto::RegisterNodeRequest *request,
                                         proto::RegisterNodeReply *reply) override;
  grpc::ServerUnaryReactor *UnregisterNode(grpc::CallbackServerContext *context,
                                           const proto::UnregisterNodeRequest *request,
                                           proto::UnregisterNodeReply *reply) override;
  // FAILED_PRECONDITION for a node declared dead: it must exit.
  grpc::ServerUnaryReactor *ReportNodeState(grpc::CallbackServerContext *context,
                                            const proto::ReportNodeStateRequest *request,
                                            proto::ReportNodeStateReply *reply) override;
  grpc::ServerUnaryReactor *GetAllNodes(grpc::CallbackServerContext *context,
                                        const proto::GetAllNodesRequest *request,
                                        proto::GetAllNodesReply *reply) override;
  grpc::ServerUnaryReactor *AddJob(grpc::CallbackServerContext *context,
                                   const proto::AddJobRequest *request,
                                   proto::AddJobReply *reply) override;
  grpc::ServerUnaryReactor *MarkJobFinished(grpc::CallbackServerContext *context,
                                            const proto::MarkJobFinishedRequest *request,
                                            proto::MarkJobFinishedReply *reply) override;
  grpc::ServerUnaryReactor *GetAllJobs(grpc::CallbackServerContext *context,
                                       const proto::GetAllJobsRequest *request,
                                       proto::GetAllJobsReply *reply) override;
  grpc::ServerUnaryReactor *KvPut(grpc::CallbackServerContext *context,
                                  const proto::KvPutRequest *request,
                                  proto::KvPutReply *reply) override;
  grpc::ServerUnaryReactor *KvGet(grpc::CallbackServerContext *context,
                                  const proto::KvGetRequest *request,
                                  proto::KvGetReply *reply) override;
  grpc::ServerUnaryReactor *KvDel(grpc::CallbackServerContext *context,
                                  const proto::KvDelRequest *request,
                                  proto::KvDelReply *reply) override;
  grpc::ServerUnaryReactor *KvKeys(grpc::CallbackServerContext *context,
                                   const proto::KvKeysRequest *request,
                                   proto::KvKeysReply *reply) override;
  grpc::ServerUnaryReactor *CreateActor(grpc::CallbackServerContext *context,
                                        const proto::CreateActorRequest *request,
                                        proto::CreateActorReply *reply) override;
  grpc::ServerUnaryReactor *GetActorInfo(grpc::CallbackServerContext *context,
                                         const proto::GetActorInfoRequest *request,
                                         proto::GetActorInfoReply *reply) override;
  grpc::ServerUnaryReactor *GetNamedActor(grpc::CallbackServerContext *context,
                                          const proto::GetNamedActorRequest *request,
                                          proto::GetNamedActorReply *reply) override;
  grpc::ServerUnaryReactor *KillActor(grpc::CallbackServerContext *context,
                                      const proto::KillActorRequest *request,
                                      proto::KillActorReply *reply) override;
  grpc::ServerUnaryReactor *ReportWorkerDeath(grpc::CallbackServerContext *context,
                                              const proto::ReportWorkerDeathRequest *request,
                                              proto::ReportWorkerDeathReply *reply) override;
  grpc::ServerWriteReactor<proto::Notification> *Subscribe(
      grpc::CallbackServerContext *context, const proto::SubscribeRequest *request) override;
  grpc::ServerUnaryReactor *CreatePlacementGroup(grpc::CallbackServerContext *context,
                                                 const proto::CreatePlacementGroupRequest *request,
                                                 proto::CreatePlacementGroupReply *reply) override;
  grpc::ServerUnaryReactor *RemovePlacementGroup(grpc::CallbackServerContext *context,
                                                 const proto::RemovePlacementGroupRequest *request,
                                                 proto::RemovePlacementGroupReply *reply) override;
  grpc::ServerUnaryReactor *GetPlacementGroup(grpc::CallbackServerContext *context,
                                              const proto::GetPlacementGroupRequest *request,
                                              proto::GetPlacementGroupReply *reply) override;
  grpc::ServerUnaryReactor *GetAllPlacementGroups(
      grpc::CallbackServerContext *context, const proto::GetAllPlacementGroupsRequest *request,
      proto::GetAllPlacementGroupsReply *reply) override;
  grpc::ServerUnaryReactor *WaitPlacementGroupReady(
      grpc::CallbackServerContext *context, const proto::WaitPlacementGroupReadyRequest *request,
      proto::WaitPlacementGroupReadyReply *reply) override;

 private:
  using KvKey = std::pair<std::string, std::string>;  // (namespace, key)

  // Marks a live node DEAD (from its unregistering or its failed health
  // checks), publishes it, and lets the actor directory act on it. NotFound
  // for an unknown node; a node already dead stays as it was.
  absl::Status MarkNodeDead(const std::string &node_id, const std::string &reason)
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<NodeHealthChecker::Node> AliveNodes() ABSL_LOCKS_EXCLUDED(mu_);

  const Options options_;
  absl::Mutex mu_;
  // By the id's bytes (NodeID::Binary, JobID::Binary), as on the wire.
  std::map<std::string, proto::NodeInfo> nodes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, proto::JobInfo> jobs_ ABSL_GUARDED_BY(mu_);
  uint32_t next_job_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<KvKey, std::string> kv_ ABSL_GUARDED_BY(mu_);
  std::vector<proto::NodeInfo> AllNodes() ABSL_LOCKS_EXCLUDED(mu_);

  Publisher publisher_;
  // Before actors_, which asks it where bundles are.
  PlacementGroupDirectory groups_;  // its scheduler thread lists nodes_ until it stops
  ActorDirectory actors_;           // its scheduler thread lists nodes_ until it stops
  rpc::AsyncCaller health_calls_;
  // Last: its thread lists nodes_ and marks nodes dead until it stops.
  NodeHealthChecker health_;
};

}  // namespace sunray
