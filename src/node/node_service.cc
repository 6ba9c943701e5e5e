#include "src/node/node_service.h"
#include "src/common/log.h"

#include "src/common/environment.h"
#include "src/rpc/refused_stream.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("node.service"));
  return **logger;
}

constexpr std::chrono::milliseconds kControlTimeout{10000};

}  // namespace

NodeService::NodeService(Options options, ObjectStore &store, WorkerPool &workers,
                         LeaseManager &leases, ObjectPuller &puller)
    : options_(std::move(options)),
      store_(store),
      workers_(workers),
      leases_(leases),
      puller_(puller),
      control_calls_(options_.token),
      drivers_({options_.driver_poll_interval},
               [this](const JobID &job_id) { FinishJob(job_id); }) {}

NodeService::~NodeService() { Stop(); }

void NodeService::SetAddress(std::string address) {
  absl::MutexLock lock(&mu_);
  address_ = std::move(address);
}

std::string NodeService::address() {
  absl::MutexLock lock(&mu_);
  return address_;
}

void NodeService::Stop() {
  drivers_.Stop();
  control_calls_.Stop();
}

void NodeService::OnWorkerExit(const WorkerInfo &worker, const std::string &how) {
  leases_.OnWorkerExit(worker.startup_token);
  store_.DeleteOwnedBy(worker.address);  // nobody can free them any more
  proto::ReportWorkerDeathRequest request;
  request.set_node_id(options_.node_id.Binary());
  request.set_startup_token(worker.startup_token);
  request.set_pid(worker.pid);
  request.set_reason(how);
  control_calls_.Call<proto::ControlService>(
      options_.control_address, &proto::ControlService::Stub::async::ReportWorkerDeath, request,
      kControlTimeout,
      [token = worker.startup_token](const grpc::Status &status,
                                     const proto::ReportWorkerDeathReply &) {
        if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
          Logger().warn("could not report the exit of worker {} to the control service: {}", token,
                        status.error_message());
        }
      });
}

void NodeService::JobsFinished(const std::vector<JobID> &jobs) {
  const absl::Time now = absl::Now();
  for (const JobID &job_id : jobs) {
    {
      absl::MutexLock lock(&mu_);
      if (finished_jobs_.contains(job_id)) continue;
      // A grace first: a worker of the job may own objects whose borrowers
      // let go as the driver exited; it frees them (and their copies on
      // other nodes) if it lives a moment longer.
      auto [heard, added] = finished_heard_.try_emplace(job_id, now);
      if (now - heard->second < kFinishedJobGrace) continue;
      finished_heard_.erase(heard);
      finished_jobs_.insert(job_id);
    }
    // (Where its driver ran, FinishJob did this already: both are idempotent.)
    const int cancelled = leases_.CancelJob(job_id);
    const int killed = workers_.KillJobWorkers(job_id);
    if (cancelled + killed > 0) {
      Logger().info("job {} finished elsewhere: stopping {} worker(s), dropped {} lease request(s)",
                    job_id.Hex(), killed, cancelled);
    }
  }
}

void NodeService::FinishJob(const JobID &job_id) {
  std::string driver;
  {
    absl::MutexLock lock(&mu_);
    auto it = driver_addresses_.find(job_id);
    if (it != driver_addresses_.end()) {
      driver = std::move(it->second);
      driver_addresses_.erase(it);
    }
  }
  store_.DeleteOwnedBy(driver);
  const int cancelled = leases_.CancelJob(job_id);
  const int killed = workers_.KillJobWorkers(job_id);
  Logger().info("job {} finished: stopping {} worker(s), dropped {} lease request(s)", job_id.Hex(),
                killed, cancelled);
  proto::MarkJobFinishedRequest request;
  request.set_job_id(job_id.Binary());
  control_calls_.Call<proto::ControlService>(
      options_.control_address, &proto::ControlService::Stub::async::MarkJobFinished, request,
      kControlTimeout, [job_id](const grpc::Status &status, const proto::MarkJobFinishedReply &) {
        const grpc::StatusCode code = status.error_code();
        if (code != grpc::StatusCode::OK && code != grpc::StatusCode::CANCELLED) {
          Logger().warn("could not mark job {} finished with the control service: {}", job_id.Hex(),
                        status.error_message());
        }
      });
}

grpc::ServerUnaryReactor *NodeService::CheckHealth(grpc::CallbackServerContext *context,
                                                   const proto::CheckHealthRequest *request,
                                                   proto::CheckHealthReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    if (request->node_id() != options_.node_id.Binary()) {
      return absl::FailedPreconditionError("CheckHealth: this is node " + options_.node_id.Hex() +
                                           ", not " + BinaryToHex(request->node_id()));
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *NodeService::GetNodeStats(grpc::CallbackServerContext *context,
                                                    const proto::GetNodeStatsRequest *,
                                                    proto::GetNodeStatsReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    reply->set_node_id(options_.node_id.Binary());
    FillResourceMap(leases_.Total(), reply->mutable_total());
    FillResourceMap(leases_.Available(), reply->mutable_available());
    reply->set_pending_leases(leases_.NumPending());
    reply->set_infeasible_leases(leases_.NumInfeasible());
    const ObjectStore::Stats stats = store_.GetStats();
    reply->set_object_store_capacity_bytes(static_cast<int64_t>(stats.capacity_bytes));
    reply->set_object_store_used_bytes(static_cast<int64_t>(stats.used_bytes));
    reply->set_num_objects(static_cast<int64_t>(stats.num_objects));
    reply->set_store_socket(options_.store_socket);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *NodeService::RegisterWorker(grpc::CallbackServerContext *context,
                                                      const proto::RegisterWorkerRequest *request,
                                                      proto::RegisterWorkerReply *) {
  grpc::ServerUnaryReactor *reactor = context->DefaultReactor();
  if (!rpc::Authenticate(*context, reactor, options_.token)) return reactor;
  // Owners reach a worker at both: without them its leases would be
  // handed out and fail.
  if (request->address().empty() || request->task_address().empty()) {
    reactor->Finish(rpc::ToGrpcStatus(absl::InvalidArgumentError(
        "RegisterWorker needs the worker's RPC address and its task address")));
    return reactor;
  }
  // Answered now, or by the pool's thread (never waited for here).
  workers_.RegisterWorker(
      request->startup_token(), request->pid(), request->address(), request->task_address(),
      [reactor](absl::Status status) { reactor->Finish(rpc::ToGrpcStatus(status)); });
  return reactor;
}

// A lease request's call: finished once the lease manager answers it. If the
// caller goes away first (its deadline passed, or it cancelled), the request
// stops waiting, and a lease granted meanwhile goes back at once: nobody
// would ever return it.
class NodeService::LeaseReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit LeaseReactor(LeaseManager &leases) : leases_(leases) {}

  void Wait(LeaseManager::RequestId id) {
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      request_ = id;
      cancelled = cancelled_;
    }
    if (cancelled) leases_.CancelRequest(id);
  }

  void Granted(absl::StatusOr<LeaseManager::Answer> answer, proto::RequestWorkerLeaseReply *reply) {
    bool cancelled;
    {
      absl::MutexLock lock(&mu_);
      cancelled = cancelled_;
    }
    if (!answer.ok()) {
      Finish(rpc::ToGrpcStatus(answer.status()));
      return;
    }
    if (const auto *spillback = std::get_if<Spillback>(&*answer)) {
      reply->set_spillback_node_id(spillback->node_id.Binary());
      reply->set_spillback_address(spillback->address);
      Finish(grpc::Status::OK);
      return;
    }
    const Lease *lease = &std::get<Lease>(*answer);
    if (cancelled) {
      (void)leases_.ReturnLease(lease->lease_id);  // ours alone: cannot be NotFound
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the caller stopped waiting"));
      return;
    }
    reply->set_lease_id(lease->lease_id);
    reply->set_worker_address(lease->worker.address);
    reply->set_worker_task_address(lease->worker.task_address);
    reply->set_worker_pid(lease->worker.pid);
    Finish(grpc::Status::OK);
  }

  void OnCancel() override {
    LeaseManager::RequestId request;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      request = request_;
    }
    if (request != 0) leases_.CancelRequest(request);  // runs Granted if still waiting
  }

  void OnDone() override { delete this; }

 private:
  LeaseManager &leases_;
  absl::Mutex mu_;
  LeaseManager::RequestId request_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerUnaryReactor *NodeService::RequestWorkerLease(
    grpc::CallbackServerContext *context, const proto::RequestWorkerLeaseRequest *request,
    proto::RequestWorkerLeaseReply *reply) {
  auto *waiting = new LeaseReactor(leases_);
  if (!rpc::Authenticate(*context, waiting, options_.token)) return waiting;
  if (request->argv().empty()) {
    waiting->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "RequestWorkerLease: argv names no worker program"));
    return waiting;
  }
  absl::StatusOr<JobID> job = IdFromWire<JobID>("RequestWorkerLease: job_id", request->job_id());
  if (!job.ok()) {
    waiting->Finish(rpc::ToGrpcStatus(job.status()));
    return waiting;
  }
  ResourceSet resources;
  for (const auto &[name, amount] : request->resources().amounts()) {
    if (amount < 0) {
      waiting->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "RequestWorkerLease: negative amount of " + name));
      return waiting;
    }
    resources[name] = amount;
  }
  if (request->strategy().kind() == proto::SchedulingStrategy::NODE_AFFINITY) {
    if (absl::Status id = IdFromWire<NodeID>("RequestWorkerLease: strategy.node_id",
                                             request->strategy().node_id())
                              .status();
        !id.ok()) {
      waiting->Finish(rpc::ToGrpcStatus(id));
      return waiting;
    }
  }
  WorkerPool::Launch launch{{request->argv().begin(), request->argv().end()}, {}};
  // Workers talk to the node that started them, whoever asked for them.
  const std::string own_address = std::string(env::kNodeAddress) + "=" + address();
  for (const std::string &entry : request->env()) {
    if (entry.rfind(std::string(env::kNodeAddress) + "=", 0) != 0) launch.env.push_back(entry);
  }
  launch.env.push_back(own_address);
  // Answered when granted (or sent on); the reply object lives until Finish.
  waiting->Wait(leases_.RequestLease(*job, resources, launch, request->detached(),
                                     {request->strategy(), request->spillback_count()},
                                     [waiting, reply](absl::StatusOr<LeaseManager::Answer> answer) {
                                       waiting->Granted(std::move(answer), reply);
                                     }));
  return waiting;
}

grpc::ServerUnaryReactor *NodeService::ReturnWorker(grpc::CallbackServerContext *context,
                                                    const proto::ReturnWorkerRequest *request,
                                                    proto::ReturnWorkerReply *) {
  return rpc::HandleUnary(context, options_.token, [&] {
    return leases_.ReturnLease(request->lease_id(), request->worker_dead());
  });
}

grpc::ServerUnaryReactor *NodeService::PrepareBundles(grpc::CallbackServerContext *context,
                                                      const proto::PrepareBundlesRequest *request,
                                                      proto::PrepareBundlesReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::StatusOr<PlacementGroupID> group =
        IdFromWire<PlacementGroupID>("placement_group_id", request->placement_group_id());
    if (!group.ok()) return group.status();
    std::map<int, ResourceSet> bundles;
    for (const proto::BundleReservation &bundle : request->bundles()) {
      ResourceSet resources = ResourceSetOf(bundle.resources());
      for (const auto &[name, amount] : resources) {
        if (amount < 0 || name.empty()) {
          return absl::InvalidArgumentError("bundle " + std::to_string(bundle.index()) +
                                            " asks for " + std::to_string(amount) + " of '" + name +
                                            "'");
        }
      }
      if (bundle.index() < 0 || !bundles.emplace(bundle.index(), std::move(resources)).second) {
        return absl::InvalidArgumentError("bundle index " + std::to_string(bundle.index()) +
                                          " is negative or given twice");
      }
    }
    if (bundles.empty()) return absl::InvalidArgumentError("no bundles to prepare");
    return leases_.PrepareBundles(*group, bundles);
  });
}

grpc::ServerUnaryReactor *NodeService::CommitBundles(grpc::CallbackServerContext *context,
                                                     const proto::CommitBundlesRequest *request,
                                                     proto::CommitBundlesReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::StatusOr<PlacementGroupID> group =
        IdFromWire<PlacementGroupID>("placement_group_id", request->placement_group_id());
    if (!group.ok()) return group.status();
    return leases_.CommitBundles(*group);
  });
}

grpc::ServerUnaryReactor *NodeService::ReturnBundles(grpc::CallbackServerContext *context,
                                                     const proto::ReturnBundlesRequest *request,
                                                     proto::ReturnBundlesReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::StatusOr<PlacementGroupID> group =
        IdFromWire<PlacementGroupID>("placement_group_id", request->placement_group_id());
    if (!group.ok()) return group.status();
    leases_.ReturnBundles(*group, request->removed());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *NodeService::NotifyBlocked(grpc::CallbackServerContext *context,
                                                     const proto::NotifyBlockedRequest *request,
                                                     proto::NotifyBlockedReply *) {
  return rpc::HandleUnary(context, options_.token, [&] {
    workers_.SetBlocked(request->startup_token(), request->blocked());
    leases_.SetBlocked(request->startup_token(), request->blocked());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *NodeService::KillWorker(grpc::CallbackServerContext *context,
                                                  const proto::KillWorkerRequest *request,
                                                  proto::KillWorkerReply *) {
  return rpc::HandleUnary(context, options_.token, [&] {
    return workers_.KillWorker(request->startup_token(), request->force());
  });
}

grpc::ServerUnaryReactor *NodeService::RegisterDriver(grpc::CallbackServerContext *context,
                                                      const proto::RegisterDriverRequest *request,
                                                      proto::RegisterDriverReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::StatusOr<JobID> job = IdFromWire<JobID>("RegisterDriver: job_id", request->job_id());
    if (!job.ok()) return job.status();
    if (request->pid() <= 0) {
      return absl::InvalidArgumentError("RegisterDriver: needs a driver pid, got " +
                                        std::to_string(request->pid()));
    }
    {
      absl::MutexLock lock(&mu_);
      driver_addresses_[*job] = request->address();
    }
    drivers_.Watch(*job, request->pid());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *NodeService::UnregisterDriver(
    grpc::CallbackServerContext *context, const proto::UnregisterDriverRequest *request,
    proto::UnregisterDriverReply *) {
  return rpc::HandleUnary(context, options_.token, [&] {
    absl::StatusOr<JobID> job = IdFromWire<JobID>("UnregisterDriver: job_id", request->job_id());
    if (!job.ok()) return job.status();
    drivers_.Forget(*job);
    FinishJob(*job);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *NodeService::PullObject(grpc::CallbackServerContext *context,
                                                  const proto::PullObjectRequest *request,
                                                  proto::PullObjectReply *) {
  grpc::ServerUnaryReactor *reactor = context->DefaultReactor();
  if (!rpc::Authenticate(*context, reactor, options_.token)) return reactor;
  absl::StatusOr<ObjectID> id = IdFromWire<ObjectID>("PullObject: object_id", request->object_id());
  if (!id.ok()) {
    reactor->Finish(rpc::ToGrpcStatus(id.status()));
    return reactor;
  }
  if (request->from_address().empty()) {
    reactor->Finish(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "PullObject: from_address is empty"));
    return reactor;
  }
  // Answered when the copy is here; the reactor lives until Finish.
  puller_.Pull(
      *id, request->from_address(), request->owner_address(),
      [reactor](const absl::Status &pulled) { reactor->Finish(rpc::ToGrpcStatus(pulled)); });
  return reactor;
}

grpc::ServerWriteReactor<proto::ObjectChunk> *NodeService::FetchObject(
    grpc::CallbackServerContext *context, const proto::FetchObjectRequest *request) {
  if (!rpc::HasToken(*context, options_.token)) {
    return new rpc::RefusedStream<proto::ObjectChunk>(rpc::UnauthenticatedStatus());
  }
  absl::StatusOr<ObjectID> id =
      IdFromWire<ObjectID>("FetchObject: object_id", request->object_id());
  if (!id.ok()) return new rpc::RefusedStream<proto::ObjectChunk>(rpc::ToGrpcStatus(id.status()));
  return ServeObject(store_, *id, request->chunk_bytes(), request->offset(), request->length());
}

}  // namespace sunray
