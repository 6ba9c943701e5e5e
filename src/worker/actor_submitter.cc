// The cluster runtime as a caller of actors: creation through the control
// service, watching each actor's state for the ActorTaskSubmitter (which
// queues, sends and resends the calls), kill, named lookup.
#include <algorithm>
#include <limits>

#include "ray/api/ray_exception.h"
#include "src/common/log.h"
#include "src/core/runtime_env_check.h"
#include "src/core/schedulable.h"
#include "src/worker/runtime_state.h"
#include "src/worker/task_stream.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.actors"));
  return **logger;
}

}  // namespace

using ray::internal::RayException;

std::string ClusterRuntime::CreateActor(const ray::internal::RemoteFunctionHolder &factory,
                                        std::vector<ray::internal::TaskArg> &args,
                                        const ray::internal::ActorCreationOptions &options) {
  // Where it may go is control's to check (it knows the nodes); the form is
  // checked here.
  if (auto error = CheckSchedulable(options.scheduling_strategy, options.label_selector,
                                    options.group, options.serialized_runtime_env_info,
                                    /*only_node=*/nullptr, /*groups=*/nullptr, "")) {
    throw ray::internal::RayActorException("The actor " + factory.class_name +
                                           " cannot be created: " + error->message);
  }
  if (auto error = CheckActorOptions(options)) {
    throw ray::internal::RayActorException("The actor " + factory.class_name +
                                           " cannot be created: " + *error);
  }
  ResourceSet resources = ResourceSetFromUnits(options.resources);
  if (!options.group.Empty()) {
    absl::StatusOr<InGroup> placed = PlaceInGroup(options.group, options.bundle_index, resources);
    if (!placed.ok()) {
      throw ray::internal::RayActorException(
          "The actor " + factory.class_name +
          " cannot be created: " + std::string(placed.status().message()));
    }
    resources = std::move(placed->resources);
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
  // Its form was checked above.
  if (options.group.Empty()) {
    *request->mutable_strategy() =
        *SchedulingStrategyToProto(options.scheduling_strategy, options.label_selector);
  } else {
    // Control places it on the bundle's node.
    request->set_placement_group_id(options.group.GetID());
    request->set_bundle_index(options.bundle_index);
  }
  FillResourceMap(resources, request->mutable_resources());
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

  // Calls queue in the submitter until the control service knows the actor.
  const std::string id = actor_id.Binary();
  const std::string class_name = factory.class_name;
  if (!actor_calls_.AddCreating(id, class_name)) {
    tasks_.Release(*task);
    throw RayException("Sunray is shutting down.");
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
  resolver_.Resolve(
      task, [this, resolution, task, id, class_name, request](std::optional<ErrorInfo> error) {
        {
          absl::MutexLock lock(&resolution->mu);
          resolution->done = true;
          resolution->error = std::move(error);
          if (!resolution->deferred) return;
        }
        // Off this (possibly gRPC) thread: registering blocks on an RPC.
        RunDeferred([this, resolution, task, id, class_name, request] {
          RegisterActor(task, id, class_name, request, resolution->error, /*throw_errors=*/false);
        });
      });
  {
    absl::MutexLock lock(&resolution->mu);
    if (!resolution->done) {
      resolution->deferred = true;
      return id;
    }
  }
  RegisterActor(task, id, class_name, request, resolution->error, /*throw_errors=*/true);
  return id;
}

void ClusterRuntime::RegisterActor(std::shared_ptr<PendingTask> task, const std::string &actor_id,
                                   const std::string &class_name,
                                   std::shared_ptr<proto::CreateActorRequest> request,
                                   std::optional<ErrorInfo> arg_error, bool throw_errors) {
  // Ends the actor before it existed: throws, or fails every call.
  auto fail = [&](const std::string &message, bool name_taken) {
    tasks_.Release(*task);
    if (throw_errors) {
      actor_calls_.Forget(actor_id);
      if (name_taken) throw RayException(message);
      throw ray::internal::RayActorException(message);
    }
    Logger().warn("{}", message);
    actor_calls_.OnActorInfo(actor_id, DeadActorInfo(actor_id, message));
  };
  if (arg_error) {
    fail(
        "The actor " + class_name + " cannot be created: an argument failed: " + arg_error->message,
        false);
    return;
  }
  *request->mutable_creation_task() = task->spec;
  const absl::Status status = control_.CreateActor(*request, kControlTimeout);
  if (absl::IsAlreadyExists(status)) {
    fail("An actor named '" + request->name() + "' already exists in namespace '" +
             request->ray_namespace() + "'.",
         true);
    return;
  }
  if (!status.ok()) {
    fail("The actor " + class_name + " cannot be created: " + std::string(status.message()), false);
    return;
  }
  actor_calls_.Created(actor_id, std::move(task->held));
  task->held.clear();
}

void ClusterRuntime::WatchActor(const std::string &actor_id, int64_t after_version) {
  control_.WatchActor(
      actor_id, after_version,
      [this, actor_id, after_version](absl::StatusOr<proto::ActorInfo> info) {
        if (info.ok()) {
          actor_calls_.OnActorInfo(actor_id, *info);
          if (info->state() != proto::ActorInfo::DEAD) WatchActor(actor_id, info->version());
          return;
        }
        if (absl::IsDeadlineExceeded(info.status())) {
          WatchActor(actor_id, after_version);  // the long poll ran out; ask again
          return;
        }
        if (absl::IsCancelled(info.status())) return;  // shutting down
        actor_calls_.OnActorInfo(
            actor_id,
            DeadActorInfo(actor_id, absl::IsNotFound(info.status())
                                        ? "no such actor in this cluster."
                                        : "its state cannot be read from the control "
                                          "service (" +
                                              std::string(info.status().message()) + ")."));
      });
}

std::string ClusterRuntime::CallActor(const ray::internal::RemoteFunctionHolder &method,
                                      const std::string &actor_id,
                                      std::vector<ray::internal::TaskArg> &args,
                                      const ray::internal::CallOptions & /*options*/) {
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
  if (!tasks_.Add(task) || !actor_calls_.Add(task)) {
    tasks_.Failed(*task, ErrorInfo{ErrorType::kActorDied, "Sunray is shutting down.", "", "", ""});
    throw RayException("Sunray is shutting down.");
  }
  resolver_.Resolve(task, [this, task](std::optional<ErrorInfo> error) {
    actor_calls_.ArgumentsResolved(task, std::move(error));
  });
  return return_id;
}

std::string ClusterRuntime::GetActorId(const std::string &name, const std::string &ray_namespace) {
  absl::StatusOr<proto::ActorInfo> actor = control_.GetNamedActor(
      name, ray_namespace.empty() ? namespace_ : ray_namespace, kControlTimeout);
  if (absl::IsNotFound(actor.status())) return {};
  if (!actor.ok()) {
    throw RayException("Sunray could not look up the actor '" + name +
                       "': " + std::string(actor.status().message()));
  }
  return actor->actor_id();
}

void ClusterRuntime::KillActor(const std::string &actor_id, bool no_restart) {
  absl::StatusOr<proto::ActorInfo> actor =
      control_.KillActor(actor_id, no_restart, kControlTimeout);
  if (!actor.ok()) {
    throw RayException("Cannot kill actor " + BinaryToHex(actor_id) + ": " +
                       std::string(actor.status().message()));
  }
  // Calls made from now on see the restart (or the death) at once.
  if (!actor->actor_id().empty()) actor_calls_.OnActorInfo(actor_id, *actor);
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
