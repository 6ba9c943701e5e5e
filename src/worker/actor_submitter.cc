// The cluster runtime as a caller of actors: creation through the control
// service, watching each actor's state, calls sent straight to the actor in
// per-caller order, resends after a death, kill, named lookup.
#include <algorithm>
#include <limits>

#include "ray/api/logging.h"
#include "ray/api/ray_exception.h"
#include "src/core/runtime_env_check.h"
#include "src/core/schedulable.h"
#include "src/worker/runtime_state.h"
#include "src/worker/task_stream.h"

namespace sunray {

using ray::internal::RayException;

ErrorInfo ClusterRuntime::ActorDeathError(const ActorState &actor,
                                          const std::string &function) const {
  ErrorInfo error;
  error.type = ErrorType::kActorDied;
  error.function_name = function;
  std::string cause = actor.info.death_cause().message();
  if (actor.info.death_cause().type() == proto::TASK_EXECUTION_EXCEPTION) {
    cause = "its constructor failed: " + cause;
  }
  if (cause.empty()) cause = "it is dead.";
  error.message =
      "The actor " + BinaryToHex(actor.id) + " (" + actor.class_name + ") died: " + cause;
  return error;
}

std::string ClusterRuntime::CreateActor(const ray::internal::RemoteFunctionHolder &factory,
                                        std::vector<ray::internal::TaskArg> &args,
                                        const ray::internal::ActorCreationOptions &options) {
  if (auto error = CheckSchedulable(options.scheduling_strategy, options.group,
                                    options.serialized_runtime_env_info, node_id_,
                                    placement_groups_, " (its node: " + node_id_.Hex() + ").")) {
    throw ray::internal::RayActorException("The actor " + factory.class_name +
                                           " cannot be created: " + error->message);
  }
  if (auto error = CheckActorOptions(options)) {
    throw ray::internal::RayActorException("The actor " + factory.class_name +
                                           " cannot be created: " + *error);
  }
  const ActorID actor_id = ActorID::FromRandom();
  auto task = std::make_shared<PendingTask>();
  proto::TaskSpec &spec = task->spec;
  spec.set_type(proto::TaskSpec::ACTOR_CREATION);
  spec.set_task_id(TaskID::FromRandom().Binary());
  spec.set_job_id(job_id_.Binary());
  spec.set_function_name(factory.function_name);
  spec.set_class_name(factory.class_name);
  spec.set_owner_address(my_address_);
  spec.set_actor_id(actor_id.Binary());
  spec.set_max_concurrency(std::max(1, options.max_concurrency));
  const std::string ray_namespace =
      options.ray_namespace.empty() ? namespace_ : options.ray_namespace;
  spec.set_ray_namespace(ray_namespace);
  PrepareArgs(args, task.get());

  auto request = std::make_shared<proto::CreateActorRequest>();
  FillResourceMap(ResourceSetFromUnits(options.resources), request->mutable_resources());
  for (const auto &arg : options_.worker_argv) request->add_argv(arg);
  for (const auto &entry : worker_env_) request->add_env(entry);
  for (const auto &entry : RuntimeEnvEntries(options.serialized_runtime_env_info)) {
    request->add_env(entry);
  }
  request->set_name(options.name);
  request->set_ray_namespace(ray_namespace);
  request->set_max_restarts(options.max_restarts);
  request->set_max_task_retries(options.max_task_retries);
  request->set_detached(options_.detached_actors);

  // Calls queue here until the control service knows the actor.
  auto actor = std::make_shared<ActorState>();
  actor->id = actor_id.Binary();
  actor->class_name = factory.class_name;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) throw RayException("Sunray is shutting down.");
    actors_[actor->id] = actor;
    actor->watching = true;  // once registered
  }

  // The arguments must be values before the control service gets the task.
  // When they are already, registration happens here and its errors (a
  // name taken) are thrown; otherwise it happens once they are, and its
  // errors end the actor (every call fails with them).
  struct Resolution {
    absl::Mutex mu;
    bool done = false;      // the arguments resolved
    bool deferred = false;  // CreateActor returned before they did
    std::optional<ErrorInfo> error;
  };
  auto resolution = std::make_shared<Resolution>();
  ResolveArgs(task, [this, resolution, task, actor, request](std::optional<ErrorInfo> error) {
    {
      absl::MutexLock lock(&resolution->mu);
      resolution->done = true;
      resolution->error = std::move(error);
      if (!resolution->deferred) return;
    }
    // Off this (possibly gRPC) thread: registering blocks on an RPC.
    RunDeferred([this, resolution, task, actor, request] {
      RegisterActor(task, actor, request, resolution->error, /*throw_errors=*/false);
    });
  });
  {
    absl::MutexLock lock(&resolution->mu);
    if (!resolution->done) {
      resolution->deferred = true;
      return actor->id;
    }
  }
  RegisterActor(task, actor, request, resolution->error, /*throw_errors=*/true);
  return actor->id;
}

void ClusterRuntime::RegisterActor(std::shared_ptr<PendingTask> task,
                                   std::shared_ptr<ActorState> actor,
                                   std::shared_ptr<proto::CreateActorRequest> request,
                                   std::optional<ErrorInfo> arg_error, bool throw_errors) {
  const std::string class_name = actor->class_name;
  // Ends the actor before it existed: throws, or fails every call.
  auto fail = [&](const std::string &message, bool name_taken) {
    ReleaseTask(task.get());
    if (throw_errors) {
      {
        absl::MutexLock lock(&mu_);
        actors_.erase(actor->id);
      }
      if (name_taken) throw RayException(message);
      throw ray::internal::RayActorException(message);
    }
    RAYLOG(WARNING) << message;
    proto::ActorInfo dead;
    dead.set_actor_id(actor->id);
    dead.set_state(proto::ActorInfo::DEAD);
    dead.set_version(std::numeric_limits<int64_t>::max());
    dead.mutable_death_cause()->set_type(proto::ACTOR_DIED);
    dead.mutable_death_cause()->set_message(message);
    OnActorInfo(actor, dead);
  };
  if (arg_error) {
    fail(
        "The actor " + class_name + " cannot be created: an argument failed: " + arg_error->message,
        false);
    return;
  }
  *request->mutable_creation_task() = task->spec;
  proto::CreateActorReply reply;
  grpc::Status status = control_->CreateActor(Context(kControlTimeoutMs).get(), *request, &reply);
  if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) {
    fail("An actor named '" + request->name() + "' already exists in namespace '" +
             request->ray_namespace() + "'.",
         true);
    return;
  }
  if (!status.ok()) {
    fail("The actor " + class_name + " cannot be created: " + status.error_message(), false);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    actor->creation_held = std::move(task->held);
  }
  WatchActor(actor, -1);
}

std::shared_ptr<ClusterRuntime::ActorState> ClusterRuntime::GetOrWatchActor(
    const std::string &actor_id) {
  std::shared_ptr<ActorState> actor;
  {
    absl::MutexLock lock(&mu_);
    auto &slot = actors_[actor_id];
    if (slot == nullptr) {
      slot = std::make_shared<ActorState>();
      slot->id = actor_id;
    }
    actor = slot;
    if (actor->watching) return actor;
    actor->watching = true;
  }
  WatchActor(actor, -1);
  return actor;
}

void ClusterRuntime::WatchActor(std::shared_ptr<ActorState> actor, int64_t after_version) {
  proto::GetActorInfoRequest request;
  request.set_actor_id(actor->id);
  request.set_after_version(after_version);
  CallAsync<proto::GetActorInfoReply>(
      std::move(request), 60000,
      [this](auto *context, auto *req, auto *reply, auto callback) {
        control_->async()->GetActorInfo(context, req, reply, std::move(callback));
      },
      [this, actor, after_version](const grpc::Status &status, proto::GetActorInfoReply &reply) {
        if (status.ok()) {
          OnActorInfo(actor, reply.actor());
          if (reply.actor().state() != proto::ActorInfo::DEAD) {
            WatchActor(actor, reply.actor().version());
          }
          return;
        }
        if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
          WatchActor(actor, after_version);  // the long poll ran out; ask again
          return;
        }
        if (status.error_code() == grpc::StatusCode::CANCELLED) return;  // shutting down
        proto::ActorInfo dead;
        dead.set_actor_id(actor->id);
        dead.set_state(proto::ActorInfo::DEAD);
        dead.set_version(std::numeric_limits<int64_t>::max());
        dead.mutable_death_cause()->set_type(proto::ACTOR_DIED);
        dead.mutable_death_cause()->set_message(
            status.error_code() == grpc::StatusCode::NOT_FOUND
                ? "no such actor in this cluster."
                : "its state cannot be read from the control service (" + status.error_message() +
                      ").");
        OnActorInfo(actor, dead);
      });
}

void ClusterRuntime::OnActorInfo(const std::shared_ptr<ActorState> &actor,
                                 const proto::ActorInfo &info) {
  std::vector<std::function<void()>> work;
  std::vector<std::string> release;
  std::shared_ptr<TaskSender> close;
  {
    absl::MutexLock lock(&mu_);
    if (actor->known && info.version() <= actor->info.version()) return;
    const bool moved = info.state() == proto::ActorInfo::ALIVE &&
                       (!actor->known || info.address() != actor->info.address());
    actor->known = true;
    actor->info = info;
    if (actor->class_name.empty()) actor->class_name = info.class_name();
    actor->suspect = false;
    if (moved) {
      // The old incarnation's stream ends once it has answered (answers
      // from it count as lost); calls go on a new one.
      if (actor->channel != nullptr && actor->channel->stream != nullptr) {
        close = actor->channel->stream;
      }
      actor->channel = nullptr;
      actor->next_seq = 0;
    }
    if (info.state() == proto::ActorInfo::DEAD) release.swap(actor->creation_held);
    SendActorTasksLocked(actor, &work);
  }
  if (close != nullptr) close->Close();
  for (auto &item : work) item();
  for (const auto &id : release) RemoveLocalReference(id);
}

void ClusterRuntime::SendActorTasksLocked(const std::shared_ptr<ActorState> &actor,
                                          std::vector<std::function<void()>> *work) {
  if (!actor->known) return;
  if (actor->info.state() == proto::ActorInfo::DEAD) {
    for (auto &task : actor->queue) {
      ErrorInfo error = ActorDeathError(*actor, task->spec.function_name());
      work->push_back([this, task, error] { FailTask(task.get(), error); });
    }
    actor->queue.clear();
    return;
  }
  if (actor->info.state() != proto::ActorInfo::ALIVE || actor->suspect) return;
  std::vector<proto::TaskSpec> specs;
  while (!actor->queue.empty() && actor->queue.front()->resolved) {
    std::shared_ptr<PendingTask> task = std::move(actor->queue.front());
    actor->queue.pop_front();
    if (task->failed) {
      work->push_back([this, task] { FailTask(task.get(), *task->failed); });
      continue;
    }
    if (actor->channel == nullptr) {
      auto channel = std::make_shared<ActorChannel>();
      channel->address = actor->info.address();
      channel->stream = task_streams_.Open(
          actor->info.task_address(),
          [this, actor, channel](proto::TaskResults &results) {
            std::vector<std::pair<std::shared_ptr<PendingTask>, const proto::PushTaskReply *>>
                answered;
            {
              absl::MutexLock lock(&mu_);
              for (const auto &result : results.results()) {
                auto it = channel->calls.find(result.return_id());
                if (it == channel->calls.end()) continue;  // settled already
                answered.emplace_back(std::move(it->second), &result.reply());
                channel->calls.erase(it);
              }
            }
            for (const auto &[task, reply] : answered) {
              SettleActorCall(actor, channel->address, task, grpc::Status::OK, reply);
            }
          },
          [this, actor, channel](const grpc::Status &status) {
            OnActorChannelEnd(actor, channel, status);
          });
      if (channel->stream == nullptr) {  // shutting down
        work->push_back([this, task] {
          FailTask(task.get(), ErrorInfo{ErrorType::kActorDied,
                                         "Sunray is shutting down: the call " +
                                             task->spec.function_name() + " was not sent.",
                                         "", "", ""});
        });
        continue;
      }
      actor->channel = channel;
    }
    task->spec.set_sequence_number(actor->next_seq++);
    task->pushed_to = actor->channel->address;
    actor->channel->calls[task->spec.return_id()] = task;
    specs.push_back(task->spec);
  }
  if (!specs.empty()) {
    // Not sent when the stream has broken: its end settles these calls.
    work->push_back([stream = actor->channel->stream, specs = std::move(specs)]() mutable {
      (void)stream->Send(std::move(specs));
    });
  }
}

void ClusterRuntime::OnActorChannelEnd(const std::shared_ptr<ActorState> &actor,
                                       const std::shared_ptr<ActorChannel> &channel,
                                       const grpc::Status &status) {
  std::vector<std::shared_ptr<PendingTask>> lost;
  {
    absl::MutexLock lock(&mu_);
    channel->stream = nullptr;
    for (auto &[return_id, task] : channel->calls) lost.push_back(std::move(task));
    channel->calls.clear();
    if (actor->channel == channel) actor->channel = nullptr;
  }
  // In their submission order, so that resent calls keep it.
  std::sort(lost.begin(), lost.end(),
            [](const auto &a, const auto &b) { return a->order < b->order; });
  const grpc::Status why = status.ok()
                               ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                              "the actor's stream ended with calls unanswered")
                               : status;
  for (const auto &task : lost) SettleActorCall(actor, channel->address, task, why, nullptr);
}

void ClusterRuntime::SettleActorCall(const std::shared_ptr<ActorState> &actor,
                                     const std::string &address,
                                     const std::shared_ptr<PendingTask> &task,
                                     const grpc::Status &status,
                                     const proto::PushTaskReply *reply) {
  if (reply != nullptr && reply->actor_exiting()) {
    // ray::ExitActor(): this call and every later one fail; the actor
    // is dead for good (its worker told the control service so).
    proto::ActorInfo dead;
    {
      absl::MutexLock lock(&mu_);
      dead = actor->info;
    }
    dead.set_state(proto::ActorInfo::DEAD);
    dead.clear_address();
    dead.set_version(std::numeric_limits<int64_t>::max());
    dead.mutable_death_cause()->set_type(proto::ACTOR_DIED);
    dead.mutable_death_cause()->set_message("it exited through ray::ExitActor in " +
                                            task->spec.function_name() + ".");
    OnActorInfo(actor, dead);
    ErrorInfo error;
    {
      absl::MutexLock lock(&mu_);
      error = ActorDeathError(*actor, task->spec.function_name());
    }
    FailTask(task.get(), std::move(error));
    return;
  }
  bool stale = false;
  if (reply != nullptr) {
    // An answer from an incarnation already known dead (killed while
    // the call ran) counts as lost, as if the process had gone first.
    absl::MutexLock lock(&mu_);
    stale = actor->info.address() != address;
  }
  if (reply != nullptr && !stale) {
    CompleteTask(task.get(), reply->result());
    return;
  }
  ErrorInfo error;
  bool resend = false;
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    if (actor->info.address() == address) actor->suspect = true;
    const int retries = actor->info.max_task_retries();
    if (!shut_down_ && !task->cancelled && actor->info.state() != proto::ActorInfo::DEAD &&
        (retries == -1 || task->lost < retries)) {
      // Sent again, in its place among the waiting calls, once the
      // control service tells where the actor lives now.
      resend = true;
      ++task->lost;
      task->pushed_to.clear();
      auto place = std::find_if(
          actor->queue.begin(), actor->queue.end(),
          [&](const std::shared_ptr<PendingTask> &queued) { return queued->order > task->order; });
      actor->queue.insert(place, task);
      SendActorTasksLocked(actor, &work);
    } else {
      error = ActorDeathError(*actor, task->spec.function_name());
    }
  }
  if (resend) {
    for (auto &item : work) item();
    return;
  }
  error.message = "The actor " + BinaryToHex(actor->id) + " (" + actor->class_name +
                  ") died while the call " + task->spec.function_name() + " was in flight: " +
                  (stale ? std::string("it was killed") : status.error_message());
  FailTask(task.get(), std::move(error));
}

std::string ClusterRuntime::CallActor(const ray::internal::RemoteFunctionHolder &method,
                                      const std::string &actor_id,
                                      std::vector<ray::internal::TaskArg> &args,
                                      const ray::internal::CallOptions & /*options*/) {
  std::shared_ptr<ActorState> actor = GetOrWatchActor(actor_id);
  auto task = std::make_shared<PendingTask>();
  const TaskID task_id = TaskID::FromRandom();
  proto::TaskSpec &spec = task->spec;
  spec.set_type(proto::TaskSpec::ACTOR_TASK);
  spec.set_task_id(task_id.Binary());
  spec.set_job_id(job_id_.Binary());
  spec.set_function_name(method.function_name);
  spec.set_class_name(method.class_name);
  spec.set_return_id(ObjectID::ForTask(task_id, 1).Binary());
  spec.set_owner_address(my_address_);
  spec.set_actor_id(actor_id);
  spec.set_caller_id(worker_id_);
  const std::string return_id = spec.return_id();
  owned_.CreatePending(return_id);
  PrepareArgs(args, task.get());
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) throw RayException("Sunray is shutting down.");
    submitted_[return_id] = task;
    task->order = actor->next_order++;
    actor->queue.push_back(task);
  }
  ResolveArgs(task, [this, task, actor](std::optional<ErrorInfo> error) {
    std::vector<std::function<void()>> work;
    {
      absl::MutexLock lock(&mu_);
      task->resolved = true;
      task->failed = std::move(error);
      SendActorTasksLocked(actor, &work);
    }
    for (auto &item : work) item();
  });
  return return_id;
}

std::string ClusterRuntime::GetActorId(const std::string &name, const std::string &ray_namespace) {
  proto::GetNamedActorRequest request;
  request.set_name(name);
  request.set_ray_namespace(ray_namespace.empty() ? namespace_ : ray_namespace);
  proto::GetNamedActorReply reply;
  grpc::Status status = control_->GetNamedActor(Context(kControlTimeoutMs).get(), request, &reply);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return {};
  if (!status.ok()) {
    throw RayException("Sunray could not look up the actor '" + name +
                       "': " + status.error_message());
  }
  return reply.actor().actor_id();
}

void ClusterRuntime::KillActor(const std::string &actor_id, bool no_restart) {
  proto::KillActorRequest request;
  request.set_actor_id(actor_id);
  request.set_no_restart(no_restart);
  proto::KillActorReply reply;
  grpc::Status status = control_->KillActor(Context(kControlTimeoutMs).get(), request, &reply);
  if (!status.ok()) {
    throw RayException("Cannot kill actor " + BinaryToHex(actor_id) + ": " +
                       status.error_message());
  }
  // Calls made from now on see the restart (or the death) at once.
  std::shared_ptr<ActorState> actor;
  {
    absl::MutexLock lock(&mu_);
    auto it = actors_.find(actor_id);
    if (it != actors_.end()) actor = it->second;
  }
  if (actor != nullptr && reply.has_actor()) OnActorInfo(actor, reply.actor());
}

std::string ClusterRuntime::SerializeActorHandle(const std::string &actor_id) { return actor_id; }

std::string ClusterRuntime::DeserializeAndRegisterActorHandle(const std::string &serialized) {
  if (serialized.size() != ActorID::kSize) {
    throw RayException("Not a serialized actor handle (" + std::to_string(serialized.size()) +
                       " bytes).");
  }
  return serialized;
}

}  // namespace sunray
