#include "src/control/control_service.h"

#include <chrono>
#include <cstring>

#include "node.grpc.pb.h"

#include "src/common/id.h"
#include "src/common/log.h"
#include "src/common/resources.h"
#include "src/rpc/refused_stream.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Keys of namespace `ray_namespace` starting with `prefix`, in order:
// `visit(kv, it)` returns the iterator to go on from.
template <typename Map, typename Visit>
void ForEachWithPrefix(Map &kv, const std::string &ray_namespace, const std::string &prefix,
                       Visit &&visit) {
  for (auto it = kv.lower_bound({ray_namespace, prefix});
       it != kv.end() && it->first.first == ray_namespace &&
       it->first.second.compare(0, prefix.size(), prefix) == 0;) {
    it = visit(kv, it);
  }
}

// A GetActorInfo long poll: answered by the actor directory, or cancelled
// when the client gives up (deadline or cancellation). Deletes itself.
class ActorInfoPoll final : public grpc::ServerUnaryReactor {
 public:
  ActorInfoPoll(ActorDirectory &actors, proto::GetActorInfoReply *reply)
      : actors_(actors), reply_(reply) {}

  void Start(const std::string &actor_id, int64_t after_version) {
    // OnCancel cannot run before the handler returns, so wait_id_ is set.
    wait_id_ = actors_.WaitForVersion(actor_id, after_version,
                                      [this](absl::StatusOr<proto::ActorInfo> actor) {
                                        if (actor.ok()) *reply_->mutable_actor() = *actor;
                                        Finish(rpc::ToGrpcStatus(actor.status()));
                                      });
  }

  void OnCancel() override { actors_.CancelWait(wait_id_); }
  void OnDone() override { delete this; }

 private:
  ActorDirectory &actors_;
  proto::GetActorInfoReply *const reply_;
  int64_t wait_id_ = 0;
};

class PlacementGroupPoll final : public grpc::ServerUnaryReactor {
 public:
  PlacementGroupPoll(PlacementGroupDirectory &groups, proto::WaitPlacementGroupReadyReply *reply)
      : groups_(groups), reply_(reply) {}

  void Start(const std::string &group_id, absl::Duration timeout) {
    // OnCancel cannot run before the handler returns, so wait_id_ is set.
    wait_id_ = groups_.WaitReady(
        group_id, timeout, [this](absl::StatusOr<proto::PlacementGroupInfo> group) {
          if (group.ok()) {
            reply_->set_ready(group->state() == proto::PlacementGroupInfo::CREATED);
            *reply_->mutable_group() = *group;
          }
          Finish(rpc::ToGrpcStatus(group.status()));
        });
  }

  void OnCancel() override { groups_.CancelWait(wait_id_); }
  void OnDone() override { delete this; }

 private:
  PlacementGroupDirectory &groups_;
  proto::WaitPlacementGroupReadyReply *const reply_;
  int64_t wait_id_ = 0;
};

}  // namespace

// Finished jobs go out with every view this long (ms).
constexpr int64_t kFinishedJobsSent = 60'000;

ControlService::ControlService(Options options)
    : options_(std::move(options)),
      groups_({options_.token}, [this] { return AllNodes(); }),
      actors_(
          {.token = options_.token,
           .lease_retry_delay = options_.actor_lease_retry_delay,
           .locate_bundle = [this](const std::string &group_id,
                                   int index) { return groups_.BundleNodes(group_id, index); }},
          // Dead ones too: hard affinity tells them apart.
          [this] { return AllNodes(); }, publisher_),
      health_calls_(options_.token),
      health_(
          options_.health, [this] { return AliveNodes(); },
          [this](const NodeHealthChecker::Node &node, std::chrono::milliseconds timeout,
                 std::function<void(absl::Status)> done) {
            proto::CheckHealthRequest request;
            request.set_node_id(node.node_id);
            health_calls_.Call<proto::NodeService>(
                node.address, &proto::NodeService::Stub::async::CheckHealth, request, timeout,
                [done = std::move(done)](const grpc::Status &status,
                                         const proto::CheckHealthReply &) {
                  done(rpc::FromGrpcStatus(status));
                });
          },
          [this](const std::string &node_id, const std::string &reason) {
            (void)MarkNodeDead(node_id, "health check failed: " + reason);
          }) {}

ControlService::~ControlService() { Stop(); }

void ControlService::Stop() {
  health_.Stop();
  health_calls_.Stop();
  actors_.Stop();
  groups_.Stop();
  publisher_.Stop();
}

std::vector<proto::NodeInfo> ControlService::AllNodes() {
  absl::MutexLock lock(&mu_);
  std::vector<proto::NodeInfo> all;
  all.reserve(nodes_.size());
  for (const auto &[id, node] : nodes_) all.push_back(node);
  return all;
}

std::vector<NodeHealthChecker::Node> ControlService::AliveNodes() {
  absl::MutexLock lock(&mu_);
  std::vector<NodeHealthChecker::Node> alive;
  for (const auto &[id, node] : nodes_) {
    if (node.state() != proto::NodeInfo::ALIVE) continue;
    alive.push_back({id, node.address().ip() + ":" + std::to_string(node.address().port())});
  }
  return alive;
}

absl::Status ControlService::MarkNodeDead(const std::string &node_id, const std::string &reason) {
  proto::Notification notification;
  {
    absl::MutexLock lock(&mu_);
    auto it = nodes_.find(node_id);
    if (it == nodes_.end()) return absl::NotFoundError("no node " + BinaryToHex(node_id));
    if (it->second.state() == proto::NodeInfo::DEAD) return absl::OkStatus();
    it->second.set_state(proto::NodeInfo::DEAD);
    it->second.set_death_reason(reason);
    it->second.set_end_time_ms(NowMs());
    *notification.mutable_node() = it->second;
  }
  log::Get("control")->warn("node {} at {}:{} is dead: {}", BinaryToHex(node_id),
                            notification.node().address().ip(),
                            notification.node().address().port(), reason);
  publisher_.Publish(notification);
  actors_.OnNodeDead(node_id, reason);
  groups_.OnNodeDead(node_id);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor *ControlService::RegisterNode(grpc::CallbackServerContext *context,
                                                       const proto::RegisterNodeRequest *request,
                                                       proto::RegisterNodeReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    const proto::NodeInfo &node = request->node();
    const absl::StatusOr<NodeID> id = IdFromWire<NodeID>("RegisterNode: node_id", node.node_id());
    if (!id.ok()) return id.status();
    if (node.address().ip().empty() || node.address().port() <= 0 ||
        node.address().port() > 65535) {
      return absl::InvalidArgumentError("RegisterNode: the node's address needs an ip and a port");
    }
    proto::Notification notification;
    {
      absl::MutexLock lock(&mu_);
      proto::NodeInfo &stored = nodes_[node.node_id()];
      stored = node;
      stored.set_state(proto::NodeInfo::ALIVE);
      stored.set_start_time_ms(NowMs());
      (*stored.mutable_labels())[std::string(kNodeIdLabel)] = id->Hex();
      *notification.mutable_node() = stored;
    }
    publisher_.Publish(notification);
    actors_.OnNodeAdded();
    groups_.OnNodesChanged();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::UnregisterNode(
    grpc::CallbackServerContext *context, const proto::UnregisterNodeRequest *request,
    proto::UnregisterNodeReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    const absl::StatusOr<NodeID> id =
        IdFromWire<NodeID>("UnregisterNode: node_id", request->node_id());
    if (!id.ok()) return id.status();
    absl::Status marked = MarkNodeDead(request->node_id(), request->reason());
    if (!marked.ok())
      return absl::Status(marked.code(), "UnregisterNode: " + std::string(marked.message()));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::ReportNodeState(
    grpc::CallbackServerContext *context, const proto::ReportNodeStateRequest *request,
    proto::ReportNodeStateReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    const absl::StatusOr<NodeID> id =
        IdFromWire<NodeID>("ReportNodeState: node_id", request->node_id());
    if (!id.ok()) return id.status();
    absl::MutexLock lock(&mu_);
    auto it = nodes_.find(request->node_id());
    if (it == nodes_.end()) {
      return absl::NotFoundError("ReportNodeState: no node " + id->Hex() + " is registered");
    }
    proto::NodeInfo &node = it->second;
    if (node.state() == proto::NodeInfo::DEAD) {
      return absl::FailedPreconditionError("node " + id->Hex() + " was declared dead (" +
                                           node.death_reason() +
                                           "); its work was failed, so it must exit");
    }
    *node.mutable_available() = request->available();
    if (request->has_total()) *node.mutable_total() = request->total();
    node.set_pending_leases(request->pending_leases());
    node.set_infeasible_leases(request->infeasible_leases());
    // The cluster view every node schedules with.
    for (const auto &[other_id, other] : nodes_) *reply->add_nodes() = other;
    for (std::string &id : groups_.RecentlyRemoved()) {
      reply->add_removed_placement_groups(std::move(id));
    }
    const int64_t lately = NowMs() - kFinishedJobsSent;
    for (const auto &[job_id, job] : jobs_) {
      if (job.finished() && job.end_time_ms() >= lately) reply->add_finished_jobs(job_id);
    }
    // Pending placement groups may fit now (their directory has its own
    // lock, never held while it takes ours).
    groups_.OnNodesChanged(request->node_id());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::GetAllNodes(grpc::CallbackServerContext *context,
                                                      const proto::GetAllNodesRequest *,
                                                      proto::GetAllNodesReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    for (const auto &[id, node] : nodes_) *reply->add_nodes() = node;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::AddJob(grpc::CallbackServerContext *context,
                                                 const proto::AddJobRequest *request,
                                                 proto::AddJobReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    const JobID id = JobIdFromNumber(next_job_++);
    proto::JobInfo &job = jobs_[id.Binary()];
    job.set_job_id(id.Binary());
    job.set_driver_address(request->driver_address());
    job.set_driver_pid(request->driver_pid());
    job.set_ray_namespace(request->ray_namespace());
    job.set_start_time_ms(NowMs());
    *reply->mutable_job() = job;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::MarkJobFinished(
    grpc::CallbackServerContext *context, const proto::MarkJobFinishedRequest *request,
    proto::MarkJobFinishedReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    const absl::StatusOr<JobID> id =
        IdFromWire<JobID>("MarkJobFinished: job_id", request->job_id());
    if (!id.ok()) return id.status();
    // The job's actors die and its placement groups go even if the job was
    // never added (they name it).
    actors_.OnJobFinished(request->job_id());
    for (const std::string &group : groups_.OnJobFinished(request->job_id())) {
      actors_.OnPlacementGroupRemoved(group);
    }
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) {
      return absl::NotFoundError("MarkJobFinished: no job " + BinaryToHex(request->job_id()));
    }
    if (!it->second.finished()) {
      it->second.set_finished(true);
      it->second.set_end_time_ms(NowMs());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::GetAllJobs(grpc::CallbackServerContext *context,
                                                     const proto::GetAllJobsRequest *,
                                                     proto::GetAllJobsReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    for (const auto &[id, job] : jobs_) *reply->add_jobs() = job;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvPut(grpc::CallbackServerContext *context,
                                                const proto::KvPutRequest *request,
                                                proto::KvPutReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    if (request->key().empty()) return absl::InvalidArgumentError("KvPut: the key is empty");
    absl::MutexLock lock(&mu_);
    auto [it, inserted] =
        kv_.try_emplace({request->ray_namespace(), request->key()}, request->value());
    if (!inserted && request->overwrite()) it->second = request->value();
    reply->set_added(inserted);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvGet(grpc::CallbackServerContext *context,
                                                const proto::KvGetRequest *request,
                                                proto::KvGetReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    auto it = kv_.find({request->ray_namespace(), request->key()});
    reply->set_found(it != kv_.end());
    if (it != kv_.end()) reply->set_value(it->second);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvDel(grpc::CallbackServerContext *context,
                                                const proto::KvDelRequest *request,
                                                proto::KvDelReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    int64_t deleted = 0;
    if (request->by_prefix()) {
      ForEachWithPrefix(kv_, request->ray_namespace(), request->key(), [&](auto &kv, auto it) {
        ++deleted;
        return kv.erase(it);
      });
    } else {
      deleted = static_cast<int64_t>(kv_.erase({request->ray_namespace(), request->key()}));
    }
    reply->set_deleted(deleted);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvKeys(grpc::CallbackServerContext *context,
                                                 const proto::KvKeysRequest *request,
                                                 proto::KvKeysReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    ForEachWithPrefix(kv_, request->ray_namespace(), request->prefix(), [&](auto &, auto it) {
      reply->add_keys(it->first.second);
      return std::next(it);
    });
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::CreateActor(grpc::CallbackServerContext *context,
                                                      const proto::CreateActorRequest *request,
                                                      proto::CreateActorReply *) {
  return rpc::HandleUnary(context, options_.token, [&] { return actors_.Create(*request); });
}

grpc::ServerUnaryReactor *ControlService::GetActorInfo(grpc::CallbackServerContext *context,
                                                       const proto::GetActorInfoRequest *request,
                                                       proto::GetActorInfoReply *reply) {
  if (!rpc::HasToken(*context, options_.token)) {
    grpc::ServerUnaryReactor *refused = context->DefaultReactor();
    refused->Finish(rpc::UnauthenticatedStatus());
    return refused;
  }
  auto *poll = new ActorInfoPoll(actors_, reply);
  poll->Start(request->actor_id(), request->after_version());
  return poll;
}

grpc::ServerUnaryReactor *ControlService::GetNamedActor(grpc::CallbackServerContext *context,
                                                        const proto::GetNamedActorRequest *request,
                                                        proto::GetNamedActorReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    auto actor = actors_.GetNamed(request->name(), request->ray_namespace());
    if (!actor.ok()) return actor.status();
    *reply->mutable_actor() = *std::move(actor);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KillActor(grpc::CallbackServerContext *context,
                                                    const proto::KillActorRequest *request,
                                                    proto::KillActorReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    auto info = actors_.Kill(request->actor_id(), request->no_restart());
    if (!info.ok()) return info.status();
    *reply->mutable_actor() = *std::move(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::ReportWorkerDeath(
    grpc::CallbackServerContext *context, const proto::ReportWorkerDeathRequest *request,
    proto::ReportWorkerDeathReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    const absl::StatusOr<NodeID> id =
        IdFromWire<NodeID>("ReportWorkerDeath: node_id", request->node_id());
    if (!id.ok()) return id.status();
    actors_.OnWorkerDeath(request->node_id(), request->startup_token(), request->pid(),
                          request->reason());
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<proto::Notification> *ControlService::Subscribe(
    grpc::CallbackServerContext *context, const proto::SubscribeRequest *request) {
  if (!rpc::HasToken(*context, options_.token)) {
    return new rpc::RefusedStream<proto::Notification>(rpc::UnauthenticatedStatus());
  }
  return publisher_.Subscribe(*request);
}

// --- Placement groups (PlacementGroupDirectory) ---------------------------

grpc::ServerUnaryReactor *ControlService::CreatePlacementGroup(
    grpc::CallbackServerContext *context, const proto::CreatePlacementGroupRequest *request,
    proto::CreatePlacementGroupReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::Status created = groups_.Create(request->group());
    if (!created.ok()) {
      return absl::Status(created.code(),
                          "CreatePlacementGroup: " + std::string(created.message()));
    }
    reply->set_placement_group_id(request->group().placement_group_id());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::RemovePlacementGroup(
    grpc::CallbackServerContext *context, const proto::RemovePlacementGroupRequest *request,
    proto::RemovePlacementGroupReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::Status removed = groups_.Remove(request->placement_group_id());
    if (!removed.ok()) {
      return absl::Status(removed.code(),
                          "RemovePlacementGroup: " + std::string(removed.message()));
    }
    actors_.OnPlacementGroupRemoved(request->placement_group_id());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::GetPlacementGroup(
    grpc::CallbackServerContext *context, const proto::GetPlacementGroupRequest *request,
    proto::GetPlacementGroupReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    std::optional<proto::PlacementGroupInfo> group =
        request->placement_group_id().empty()
            ? groups_.GetNamed(request->name(), request->ray_namespace())
            : groups_.Get(request->placement_group_id());
    reply->set_found(group.has_value());
    if (group) *reply->mutable_group() = *std::move(group);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::GetAllPlacementGroups(
    grpc::CallbackServerContext *context, const proto::GetAllPlacementGroupsRequest *,
    proto::GetAllPlacementGroupsReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    for (auto &group : groups_.All()) *reply->add_groups() = std::move(group);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::WaitPlacementGroupReady(
    grpc::CallbackServerContext *context, const proto::WaitPlacementGroupReadyRequest *request,
    proto::WaitPlacementGroupReadyReply *reply) {
  if (!rpc::HasToken(*context, options_.token)) {
    grpc::ServerUnaryReactor *refused = context->DefaultReactor();
    refused->Finish(rpc::UnauthenticatedStatus());
    return refused;
  }
  auto *poll = new PlacementGroupPoll(groups_, reply);
  poll->Start(request->placement_group_id(), absl::Milliseconds(request->timeout_ms()));
  return poll;
}

}  // namespace sunray
