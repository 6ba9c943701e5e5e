// The cluster runtime: connection, objects and references, and the
// WorkerService every process serves. Tasks: task_submitter.cc; execution
// in workers: task_receiver.cc.
#include "src/worker/cluster_runtime.h"
#include "src/common/environment.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>

#include "ray/api/ray_exception.h"
#include "src/common/log.h"
#include "src/core/execution_context.h"
#include "src/worker/runtime_state.h"
#include "src/worker/task_stream.h"

namespace sunray {

using ray::internal::RayException;

namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker"));
  return **logger;
}

// Where the runtime meets the API: a failed call to connect is thrown.
void Check(const absl::Status &status, const std::string &what) {
  if (status.ok()) return;
  throw RayException("Sunray could not " + what + ": " + std::string(status.message()) + " (" +
                     absl::StatusCodeToString(status.code()) + ").");
}

}  // namespace

// --- WorkerService ---------------------------------------------------------

// A WatchExit call held open until this process shuts down (or the owner
// cancels it).
class ClusterRuntime::ExitWatch : public grpc::ServerUnaryReactor {
 public:
  explicit ExitWatch(ClusterRuntime *runtime) : runtime_(runtime) {}

  // Registers the call; answers at once if the process is shutting down.
  void Hold() {
    {
      absl::MutexLock lock(&runtime_->watchers_mu_);
      if (!runtime_->exiting_) {
        runtime_->exit_watches_.push_back(this);
        return;
      }
    }
    Answer(grpc::Status(grpc::StatusCode::UNAVAILABLE, "this process is exiting"));
  }
  // Once only (cancel and shutdown may race).
  void Answer(const grpc::Status &status) {
    if (!answered_.exchange(true)) Finish(status);
  }
  void OnCancel() override {
    {
      absl::MutexLock lock(&runtime_->watchers_mu_);
      std::erase(runtime_->exit_watches_, this);
    }
    Answer(grpc::Status::CANCELLED);
  }
  void OnDone() override { delete this; }

 private:
  ClusterRuntime *runtime_;
  std::atomic<bool> answered_{false};
};

class ClusterRuntime::Service final : public proto::WorkerService::CallbackService {
 public:
  explicit Service(ClusterRuntime *runtime) : runtime_(runtime) {}

  grpc::ServerUnaryReactor *PushTask(grpc::CallbackServerContext *context,
                                     const proto::PushTaskRequest *request,
                                     proto::PushTaskReply *reply) override {
    auto *reactor = new DeferredReactor();
    if (!rpc::Authenticate(*context, reactor, runtime_->options_.token)) return reactor;
    runtime_->HandlePushTask(request, reply, reactor);
    return reactor;
  }

  grpc::ServerUnaryReactor *GetOwnedObject(grpc::CallbackServerContext *context,
                                           const proto::GetOwnedObjectRequest *request,
                                           proto::GetOwnedObjectReply *reply) override {
    auto *reactor = context->DefaultReactor();
    if (!rpc::Authenticate(*context, reactor, runtime_->options_.token)) return reactor;
    const std::string id = request->object_id();
    if (!runtime_->objects_->Owns(id)) {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   "object " + BinaryToHex(id) + " is not owned here (freed?)"));
      return reactor;
    }
    // Answered once the object is ready (or freed).
    runtime_->owned_.OnSealed({id}, [this, id, reply, reactor] {
      runtime_->objects_->OwnedValueToProto(id, reply->mutable_value());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  grpc::ServerUnaryReactor *AddBorrower(grpc::CallbackServerContext *context,
                                        const proto::AddBorrowerRequest *request,
                                        proto::AddBorrowerReply *reply) override {
    return rpc::HandleUnary(context, runtime_->options_.token, [&] {
      if (request->borrower_address().empty()) {
        return absl::InvalidArgumentError("AddBorrower needs the borrower's address");
      }
      reply->set_found(
          runtime_->refs_->RegisterBorrower(request->borrower_address(), request->object_id()));
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor *AddObjectLocation(grpc::CallbackServerContext *context,
                                              const proto::AddObjectLocationRequest *request,
                                              proto::AddObjectLocationReply *reply) override {
    return rpc::HandleUnary(context, runtime_->options_.token, [&] {
      if (request->node_address().empty()) {
        return absl::InvalidArgumentError("AddObjectLocation needs the node's address");
      }
      reply->set_kept(
          runtime_->objects_ != nullptr &&
          runtime_->objects_->AddLocation(request->object_id(), request->node_address()));
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor *RemoveBorrower(grpc::CallbackServerContext *context,
                                           const proto::RemoveBorrowerRequest *request,
                                           proto::RemoveBorrowerReply *) override {
    return rpc::HandleUnary(context, runtime_->options_.token, [&]() -> absl::Status {
      if (request->borrower_address().empty() || request->count() <= 0) {
        return absl::InvalidArgumentError(
            "RemoveBorrower needs the borrower's address and a positive count");
      }
      // Only what this borrower was registered for, and at most that much.
      const int64_t released = runtime_->refs_->ReleaseBorrower(
          request->borrower_address(), request->object_id(), request->count());
      if (released == 0) {
        return absl::FailedPreconditionError("borrower " + request->borrower_address() +
                                             " holds no registration of object " +
                                             BinaryToHex(request->object_id()));
      }
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor *WatchExit(grpc::CallbackServerContext *context,
                                      const proto::WatchExitRequest *,
                                      proto::WatchExitReply *) override {
    auto *watch = new ExitWatch(runtime_);
    if (!rpc::Authenticate(*context, watch, runtime_->options_.token)) return watch;
    watch->Hold();
    return watch;
  }

  grpc::ServerUnaryReactor *CancelTask(grpc::CallbackServerContext *context,
                                       const proto::CancelTaskRequest *request,
                                       proto::CancelTaskReply *reply) override {
    return rpc::HandleUnary(context, runtime_->options_.token, [&] {
      reply->set_found(runtime_->receiver_.Cancel(request->return_id(), request->force()));
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor *Exit(grpc::CallbackServerContext *context, const proto::ExitRequest *,
                                 proto::ExitReply *) override {
    auto *reactor = new DeferredReactor();
    if (!rpc::Authenticate(*context, reactor, runtime_->options_.token)) return reactor;
    if (!runtime_->options_.worker_mode) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "a driver does not exit on request"));
      return reactor;
    }
    reactor->set_after_reply([this] { runtime_->ExitProcess(0); });
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  ClusterRuntime *runtime_;
};

// --- Connecting and shutting down ------------------------------------------

ClusterRuntime::ClusterRuntime(ClusterRuntimeOptions options)
    : options_(std::move(options)),
      namespace_(options_.ray_namespace.empty() ? "anonymous-" + ActorID::FromRandom().Hex()
                                                : options_.ray_namespace),
      driver_task_id_(TaskID::FromRandom()),
      worker_id_(ActorID::FromRandom().Binary()),
      executor_(ray::internal::FunctionManager::Instance()) {
  if (!options_.code_search_description.empty()) {
    executor_.SetSearchDescription(options_.code_search_description);
  }
  std::string node_address = options_.node_address;
  absl::StatusOr<std::vector<proto::NodeInfo>> nodes = control_.GetAllNodes(kConnectTimeout);
  Check(nodes.status(), "reach the control service at " + options_.control_address);
  // Every live node's totals, at connect: a task none of them fits is warned of.
  std::vector<ResourceSet> node_totals;
  for (const auto &node : *nodes) {
    if (node.state() == proto::NodeInfo::ALIVE) node_totals.push_back(ResourceSetOf(node.total()));
  }
  if (node_address.empty()) {
    for (const auto &node : *nodes) {
      if (node.state() != proto::NodeInfo::ALIVE) continue;
      if (node_address.empty() || node.address().ip() == options_.host) {
        node_address = node.address().ip() + ":" + std::to_string(node.address().port());
      }
    }
    if (node_address.empty()) {
      throw RayException("The cluster at " + options_.control_address + " has no live node.");
    }
  }
  nodes_ = std::make_unique<GrpcNodeClients>(options_.token, node_address);
  blocked_notifier_ = std::make_unique<BlockedNotifier>(&nodes_->local(), options_.startup_token);
  absl::StatusOr<proto::GetNodeStatsReply> node_stats =
      nodes_->local().GetNodeStats(kConnectTimeout);
  Check(node_stats.status(), "reach the node daemon at " + node_address);
  const proto::GetNodeStatsReply &stats = *node_stats;
  node_id_ = NodeID::FromBinary(stats.node_id());
  if (node_totals.empty()) node_totals.push_back(ResourceSetOf(stats.total()));

  auto store = StoreClient::Connect({stats.store_socket(), node_address, options_.token});
  if (!store.ok()) {
    throw RayException("Sunray could not connect to the object store at " + stats.store_socket() +
                       ": " + std::string(store.status().message()));
  }
  store_ = std::move(*store);

  service_ = std::make_unique<Service>(this);
  auto port = server_.Start(options_.host + ":0", {service_.get()});
  if (!port.ok()) {
    Shutdown();
    throw RayException("Sunray could not serve on " + options_.host + ": " +
                       std::string(port.status().message()));
  }
  my_address_ = options_.host + ":" + std::to_string(*port);
  refs_ = std::make_unique<ReferenceCounter>(my_address_, &owned_, &peers_);
  node_store_ = NodeStoreOf(store_.get());
  objects_ = std::make_unique<ObjectProvider>(
      ObjectProvider::Options{
          .my_address = my_address_,
          .node_address = node_address,
          .driver_task_id = driver_task_id_,
          .defer = [this](std::function<void()> work) { RunDeferred(std::move(work)); },
          .blocking = [this]() -> std::shared_ptr<void> {
            return std::make_shared<BlockedScope>(this);
          },
          .result_freed = [this](const std::string &id) { tasks_.ReleaseLineage(id); }},
      &owned_, refs_.get(), node_store_.get(), static_cast<RemoteStores *>(this));
  if (auto started = frames_.Start(); !started.ok()) {
    Shutdown();
    throw RayException("Sunray could not start its task streams: " +
                       std::string(started.message()));
  }
  if (options_.worker_mode) {
    auto task_port = frames_.Listen(options_.host, [this](auto connection) {
      return TaskStreamServer::Serve(std::move(connection), options_.token,
                                     [this](TaskStreamServer *stream, proto::TaskSpec task) {
                                       receiver_.ReceiveFromStream(stream, std::move(task));
                                     });
    });
    if (!task_port.ok()) {
      Shutdown();
      throw RayException("Sunray could not take task streams on " + options_.host + ": " +
                         std::string(task_port.status().message()));
    }
    task_address_ = options_.host + ":" + std::to_string(*task_port);
  }

  // Normal tasks need the job and the workers' environment: made before
  // this worker registers (tasks come after) or a driver returns.
  auto start_submitting = [&] {
    auto entry = [](const char *name, const std::string &value) {
      return std::string(name) + "=" + value;
    };
    worker_env_ = {entry(env::kControlAddress, options_.control_address),
                   entry(env::kToken, options_.token),
                   entry(env::kNodeAddress, node_address),
                   entry(env::kJobId, job_id_.Hex()),
                   entry(env::kNamespace, namespace_),
                   entry(env::kDetachedActors, options_.detached_actors ? "1" : "0")};
    NormalTaskSubmitter::Options submitting;
    submitting.lease_template.set_job_id(job_id_.Binary());
    for (const auto &arg : options_.worker_argv) submitting.lease_template.add_argv(arg);
    for (const auto &entry : worker_env_) submitting.lease_template.add_env(entry);
    submitting.node_totals = std::move(node_totals);
    submitting.node_name = node_id_.Hex();
    submitting.lease_went_idle = [this](absl::Time idle_since) { LeaseWentIdle(idle_since); };
    normal_ = std::make_unique<NormalTaskSubmitter>(std::move(submitting), nodes_.get(),
                                                    &task_streams_, &tasks_);
    housekeeping_ = std::thread([this] { HousekeepingLoop(); });
  };
  // From here on threads run: a failure stops them before it is thrown (a
  // constructor that throws gets no destructor).
  try {
    if (options_.worker_mode) {
      job_id_ = JobID::FromBinary(HexToBinary(options_.job_id_hex));
      start_submitting();
      proto::RegisterWorkerRequest request;
      request.set_startup_token(options_.startup_token);
      request.set_pid(getpid());
      request.set_address(my_address_);
      request.set_task_address(task_address_);
      Check(nodes_->local().RegisterWorker(request, kConnectTimeout),
            "register this worker with the node daemon at " + node_address);
    } else {
      proto::AddJobRequest request;
      request.set_driver_address(my_address_);
      request.set_driver_pid(getpid());
      request.set_ray_namespace(namespace_);
      absl::StatusOr<proto::JobInfo> job = control_.AddJob(request, kConnectTimeout);
      Check(job.status(), "register the job with the control service");
      job_id_ = JobID::FromBinary(job->job_id());
      start_submitting();
      proto::RegisterDriverRequest driver;
      driver.set_job_id(job_id_.Binary());
      driver.set_pid(getpid());
      driver.set_address(my_address_);
      Check(nodes_->local().RegisterDriver(driver, kConnectTimeout),
            "register the driver with the node daemon");
    }
  } catch (...) {
    Shutdown();
    throw;
  }
}

ClusterRuntime::~ClusterRuntime() { Shutdown(); }

absl::Status ClusterRuntime::Pull(const std::string &id, const std::string &from,
                                  const std::string &owner) {
  proto::PullObjectRequest request;
  request.set_object_id(id);
  request.set_from_address(from);
  request.set_owner_address(owner);
  return nodes_->local().PullObject(request, kPullTimeout);
}

void ClusterRuntime::Delete(const std::string &node_address, const std::vector<std::string> &ids) {
  bool shutting_down;
  {
    absl::MutexLock lock(&mu_);
    shutting_down = shut_down_;
  }
  if (shutting_down) {
    // The last word: waited for (briefly), as the clients stop next.
    if (absl::Status deleted = nodes_->at(node_address).DeleteObjectsNow(ids, kShortCallTimeout);
        !deleted.ok()) {
      Logger().warn("could not delete {} object(s) of this process at node {}: {}", ids.size(),
                    node_address, deleted.message());
    }
    return;
  }
  nodes_->at(node_address)
      .DeleteObjects(ids, kShortCallTimeout,
                     [node_address, count = ids.size()](const absl::Status &deleted) {
                       if (!deleted.ok()) {
                         Logger().warn("could not delete {} freed object(s) at node {}: {}", count,
                                       node_address, deleted.message());
                       }
                     });
}

void ClusterRuntime::Shutdown() {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  tasks_.Shutdown();  // no new task from here on
  // Drivers give their leases back; a worker's go when it exits.
  if (normal_ != nullptr) normal_->Shutdown(/*return_leases=*/!options_.worker_mode);
  actor_calls_.Shutdown();
  if (!options_.worker_mode && !my_address_.empty()) {
    // The node also ends the job when it sees this process exit, and tells
    // the control service: a failure here is logged, not fatal.
    if (absl::Status status = nodes_->local().UnregisterDriver(job_id_, kShortCallTimeout);
        !status.ok()) {
      Logger().warn("could not unregister job {}'s driver with its node: {}", job_id_.Hex(),
                    status.message());
    }
    if (absl::Status status = control_.MarkJobFinished(job_id_, kShortCallTimeout); !status.ok()) {
      Logger().warn("could not mark job {} finished with the control service: {}", job_id_.Hex(),
                    status.message());
    }
  }
  // Cancel what is in flight and wait for the callbacks.
  control_.Stop();
  task_streams_.CancelAllAndWait();
  peers_.Stop();
  owned_.Shutdown();
  // Free actions stop; objects this process put in node stores go with it
  // (other nodes' copies deleted with blocking calls: before the node
  // clients stop).
  if (objects_ != nullptr) objects_->Shutdown();
  if (nodes_ != nullptr) nodes_->Stop();
  {
    absl::MutexLock lock(&deferred_mu_);
    stop_housekeeping_ = true;
  }
  if (housekeeping_.joinable()) housekeeping_.join();
  // Owners watching this process learn it is gone.
  std::vector<ExitWatch *> watches;
  {
    absl::MutexLock lock(&watchers_mu_);
    exiting_ = true;
    watches.swap(exit_watches_);
  }
  for (ExitWatch *watch : watches) {
    watch->Answer(grpc::Status(grpc::StatusCode::UNAVAILABLE, "this process is exiting"));
  }
  frames_.Stop();
  server_.Stop();
}

void ClusterRuntime::RunDeferred(std::function<void()> work) {
  absl::MutexLock lock(&deferred_mu_);
  deferred_.push_back(std::move(work));
}

void ClusterRuntime::HousekeepingLoop() {
  absl::Time leases_due = absl::InfiniteFuture();
  for (;;) {
    std::deque<std::function<void()>> work;
    {
      absl::MutexLock lock(&deferred_mu_);
      // Sleeps until there is work, a lease is due, or one went idle
      // earlier than what is planned: no polling. (housekeeping_next_ is
      // when it looks next; a lease going idle before then lowers it.)
      housekeeping_next_ = std::min(housekeeping_next_, leases_due);
      deferred_mu_.AwaitWithDeadline(
          absl::Condition(
              +[](ClusterRuntime *self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->deferred_mu_) {
                return self->stop_housekeeping_ || !self->deferred_.empty() || self->replan_;
              },
              this),
          housekeeping_next_);
      replan_ = false;
      // What the scan below finds replaces this; leases going idle from
      // now on lower it again.
      housekeeping_next_ = absl::InfiniteFuture();
      work.swap(deferred_);
      if (stop_housekeeping_ && work.empty()) return;
    }
    for (auto &item : work) item();
    leases_due = normal_->ReturnIdleLeases(/*all=*/false);
  }
}

void ClusterRuntime::LeaseWentIdle(absl::Time idle_since) {
  const absl::Time due = idle_since + kLeaseLinger;
  absl::MutexLock lock(&deferred_mu_);
  if (due < housekeeping_next_) {
    housekeeping_next_ = due;
    replan_ = true;
  }
}

// --- Context ---------------------------------------------------------------

ray::internal::RuntimeContextInfo ClusterRuntime::GetRuntimeContext() {
  ray::internal::RuntimeContextInfo info;
  info.job_id = job_id_.Hex();
  info.node_id = node_id_.Hex();
  info.ray_namespace = namespace_;
  const ExecutionContext *context = CurrentExecutionContext();
  info.task_id = context != nullptr ? context->task_id.Hex() : driver_task_id_.Hex();
  if (context != nullptr && context->in_actor) {
    info.actor_id = context->actor_id.Hex();
    info.was_current_actor_restarted = context->actor_restarts > 0;
  }
  return info;
}

bool ClusterRuntime::WasCurrentActorRestarted() {
  const ExecutionContext *context = CurrentExecutionContext();
  return context != nullptr && context->in_actor && context->actor_restarts > 0;
}

void ClusterRuntime::ExitActor() {
  const ExecutionContext *context = CurrentExecutionContext();
  if (context == nullptr || !context->in_actor) {
    throw std::logic_error("ray::ExitActor() can only be called inside an actor method.");
  }
  throw ray::internal::RayIntentionalSystemExitException("ray::ExitActor()");
}

}  // namespace sunray
