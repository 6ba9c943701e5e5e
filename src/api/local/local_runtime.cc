#include "src/api/local/local_runtime.h"

#include <algorithm>
#include <thread>

#include "ray/api/ray_exception.h"
#include "src/core/retry_rule.h"
#include "src/core/runtime_env_check.h"
#include "src/core/schedulable.h"

namespace sunray {
namespace {

int DefaultTaskThreads() {
  return std::max(4, static_cast<int>(std::thread::hardware_concurrency()));
}

// Puts count their index from here so they never collide with returns.
constexpr uint32_t kFirstPutIndex = 1u << 31;

}  // namespace

LocalModeRuntime::LocalModeRuntime(Options options)
    : job_id_(JobID::FromRandom()),
      node_id_(NodeID::FromRandom()),
      driver_task_id_(TaskID::FromRandom()),
      namespace_(options.ray_namespace.empty() ? "anonymous-" + ActorID::FromRandom().Hex()
                                               : options.ray_namespace),
      pool_(options.num_task_threads > 0 ? options.num_task_threads : DefaultTaskThreads()),
      executor_(ray::internal::FunctionManager::Instance()),
      services_{store_, pool_, executor_},
      placement_groups_(namespace_) {}

LocalModeRuntime::~LocalModeRuntime() { Shutdown(); }

void LocalModeRuntime::Shutdown() {
  absl::flat_hash_map<std::string, std::shared_ptr<LocalActor>> actors;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
    actors.swap(actors_);
    named_actors_.clear();
  }
  // Wake everything blocked on objects first, so tasks and actor calls that
  // wait can finish; then stop the threads.
  store_.Shutdown();
  for (auto &[id, actor] : actors) actor->Stop();
  pool_.Stop();
  actors.clear();
}

TaskID LocalModeRuntime::CurrentTaskId() const {
  const ExecutionContext *context = CurrentExecutionContext();
  return context != nullptr ? context->task_id : driver_task_id_;
}

// --- Objects ---------------------------------------------------------------

std::string LocalModeRuntime::Put(std::shared_ptr<msgpack::sbuffer> data,
                                  const std::vector<std::string> &contained_ids) {
  const uint32_t index = kFirstPutIndex + put_index_.fetch_add(1);
  const std::string id = ObjectID::ForTask(CurrentTaskId(), index).Binary();
  store_.CreatePending(id);
  MemoryStore::Value value;
  value.data = std::make_shared<SharedSbufferObject>(std::move(data));
  if (!store_.Seal(id, std::move(value), contained_ids)) {
    throw ray::internal::RayException("Put failed: Sunray is shutting down.");
  }
  return id;
}

std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> LocalModeRuntime::Get(
    const std::vector<std::string> &ids, int timeout_ms) {
  absl::StatusOr<std::vector<MemoryStore::Value>> values;
  {
    TaskPool::BlockedScope blocked;
    values = store_.Get(ids, timeout_ms);
  }
  if (!values.ok()) ThrowStatus(values.status());
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> buffers;
  buffers.reserve(values->size());
  for (auto &value : *values) {
    if (value.error) ThrowObjectError(*value.error);
    buffers.push_back(std::move(value.data));
  }
  return buffers;
}

std::vector<bool> LocalModeRuntime::Wait(const std::vector<std::string> &ids, int num_objects,
                                         int timeout_ms) {
  absl::StatusOr<std::vector<bool>> ready;
  {
    TaskPool::BlockedScope blocked;
    ready = store_.Wait(ids, num_objects, timeout_ms);
  }
  if (!ready.ok()) ThrowStatus(ready.status());
  return *std::move(ready);
}

void LocalModeRuntime::AddLocalReference(const std::string &id) { store_.AddReference(id); }

void LocalModeRuntime::RemoveLocalReference(const std::string &id) { store_.RemoveReference(id); }

// --- Tasks -----------------------------------------------------------------

std::string LocalModeRuntime::LocalNodeNote() const {
  return ". Local mode has one node: " + node_id_.Hex() + ".";
}

std::string LocalModeRuntime::Call(const ray::internal::RemoteFunctionHolder &function,
                                   std::vector<ray::internal::TaskArg> &args,
                                   const ray::internal::CallOptions &options) {
  auto task = std::make_shared<NormalTask>();
  task->task_id = TaskID::FromRandom();
  task->function = function;
  task->args = std::move(args);
  task->options = options;
  task->return_id = ObjectID::ForTask(task->task_id, 1).Binary();

  store_.CreatePending(task->return_id);
  if (auto error = CheckSchedulable(options.scheduling_strategy, options.label_selector,
                                    options.group, options.serialized_runtime_env_info, &node_id_,
                                    &placement_groups_, LocalNodeNote())) {
    error->function_name = function.function_name;
    services_.StoreError(task->return_id, std::move(*error));
    return task->return_id;
  }
  services_.RetainArgs(task->args);
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) throw ray::internal::RayException("Sunray is shutting down.");
    tasks_.emplace(task->return_id, TaskState{});
  }
  std::vector<std::string> dependencies;
  for (const auto &arg : task->args) {
    if (!arg.buffer) dependencies.push_back(arg.object_id);
  }
  store_.OnSealed(dependencies,
                  [this, task] { pool_.Submit([this, task] { RunNormalTask(*task); }); });
  return task->return_id;
}

void LocalModeRuntime::RunNormalTask(const NormalTask &task) {
  bool cancelled = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(task.return_id);
    if (it != tasks_.end()) {
      it->second.started = true;
      cancelled = it->second.cancelled;
    }
  }
  if (!cancelled) {
    ExecutionContextScope context({task.task_id, ActorID(), 0, false});
    ResolvedArgs args;
    ExecutionResult result;
    if (auto error = services_.ResolveArgs(task.args, &args)) {
      result.error = std::move(error);
    } else {
      // A worker cannot die here: max_retries counts only the retries of
      // a function that throws, with retry_exceptions.
      RetryBudget retries(task.options.max_retries);
      for (;;) {
        result = executor_.Call(task.function.function_name, args.views);
        const bool threw = result.error && result.error->type == ErrorType::kTaskExecution;
        if (!RetriedFor(false, threw, task.options.retry_exceptions) || !retries.Spend()) break;
      }
    }
    services_.StoreResult(task.return_id, std::move(result));
  }
  services_.ReleaseArgs(task.args);
  absl::MutexLock lock(&mu_);
  tasks_.erase(task.return_id);
}

void LocalModeRuntime::Cancel(const std::string &object_id, bool /*force*/, bool /*recursive*/) {
  bool normal_task = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(object_id);
    if (it != tasks_.end()) {
      // A running task cannot be interrupted in one process: it completes.
      if (it->second.started || it->second.cancelled) return;
      it->second.cancelled = true;
      normal_task = true;
    }
  }
  if (normal_task) {
    services_.StoreError(object_id, ErrorInfo{ErrorType::kTaskCancelled,
                                              "The task was cancelled with ray::Cancel before "
                                              "it ran.",
                                              "", "", ""});
    return;
  }
  std::vector<std::shared_ptr<LocalActor>> actors;
  {
    absl::MutexLock lock(&mu_);
    for (auto &[id, actor] : actors_) actors.push_back(actor);
  }
  for (auto &actor : actors) {
    if (actor->Cancel(object_id)) return;
  }
}

// --- Actors ----------------------------------------------------------------

std::string LocalModeRuntime::CreateActor(const ray::internal::RemoteFunctionHolder &factory,
                                          std::vector<ray::internal::TaskArg> &args,
                                          const ray::internal::ActorCreationOptions &options) {
  if (auto error = CheckSchedulable(options.scheduling_strategy, options.label_selector,
                                    options.group, options.serialized_runtime_env_info, &node_id_,
                                    &placement_groups_, LocalNodeNote())) {
    throw ray::internal::RayActorException("The actor " + factory.class_name +
                                           " cannot be created: " + error->message);
  }
  if (auto error = CheckActorOptions(options)) {
    throw ray::internal::RayActorException("The actor " + factory.class_name +
                                           " cannot be created: " + *error);
  }
  const ActorID id = ActorID::FromRandom();
  const std::string binary_id = id.Binary();
  const std::string ray_namespace =
      options.ray_namespace.empty() ? namespace_ : options.ray_namespace;
  const bool named = !options.name.empty();
  auto on_death = [this, binary_id, ray_namespace, name = options.name] {
    absl::MutexLock lock(&mu_);
    auto it = named_actors_.find({ray_namespace, name});
    if (it != named_actors_.end() && it->second == binary_id) named_actors_.erase(it);
  };
  auto actor = std::make_shared<LocalActor>(services_, id, factory, std::move(args), options,
                                            named ? std::function<void()>(on_death) : nullptr);
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) throw ray::internal::RayException("Sunray is shutting down.");
    if (named) {
      auto [it, inserted] = named_actors_.try_emplace({ray_namespace, options.name}, binary_id);
      if (!inserted) {
        throw ray::internal::RayException("An actor named '" + options.name +
                                          "' already exists in namespace '" + ray_namespace + "'.");
      }
    }
    actors_.emplace(binary_id, actor);
  }
  actor->Start();
  return binary_id;
}

std::shared_ptr<LocalActor> LocalModeRuntime::FindActor(const std::string &actor_id) {
  absl::MutexLock lock(&mu_);
  auto it = actors_.find(actor_id);
  return it == actors_.end() ? nullptr : it->second;
}

std::string LocalModeRuntime::CallActor(const ray::internal::RemoteFunctionHolder &method,
                                        const std::string &actor_id,
                                        std::vector<ray::internal::TaskArg> &args,
                                        const ray::internal::CallOptions & /*options*/) {
  std::shared_ptr<LocalActor> actor = FindActor(actor_id);
  LocalActor::Call call;
  call.task_id = TaskID::FromRandom();
  call.method = method.function_name;
  call.args = std::move(args);
  call.return_id = ObjectID::ForTask(call.task_id, 1).Binary();
  store_.CreatePending(call.return_id);
  const std::string return_id = call.return_id;
  if (actor == nullptr) {
    services_.StoreError(return_id,
                         ErrorInfo{ErrorType::kActorDied,
                                   "The actor " + BinaryToHex(actor_id) +
                                       " does not exist in this runtime (it may belong to an "
                                       "earlier one).",
                                   method.function_name, "", ""});
    return return_id;
  }
  services_.RetainArgs(call.args);
  actor->Submit(std::move(call));
  return return_id;
}

std::string LocalModeRuntime::GetActorId(const std::string &name,
                                         const std::string &ray_namespace) {
  absl::MutexLock lock(&mu_);
  auto it = named_actors_.find({ray_namespace.empty() ? namespace_ : ray_namespace, name});
  return it == named_actors_.end() ? std::string() : it->second;
}

void LocalModeRuntime::KillActor(const std::string &actor_id, bool no_restart) {
  std::shared_ptr<LocalActor> actor = FindActor(actor_id);
  if (actor == nullptr) {
    throw ray::internal::RayException("Cannot kill actor " + BinaryToHex(actor_id) +
                                      ": no such actor in this runtime.");
  }
  actor->Kill(no_restart);
}

void LocalModeRuntime::ExitActor() {
  const ExecutionContext *context = CurrentExecutionContext();
  if (context == nullptr || !context->in_actor) {
    throw std::logic_error("ray::ExitActor() can only be called inside an actor method.");
  }
  throw ray::internal::RayIntentionalSystemExitException("ray::ExitActor()");
}

bool LocalModeRuntime::WasCurrentActorRestarted() {
  const ExecutionContext *context = CurrentExecutionContext();
  return context != nullptr && context->in_actor && context->actor_restarts > 0;
}

std::string LocalModeRuntime::SerializeActorHandle(const std::string &actor_id) { return actor_id; }

std::string LocalModeRuntime::DeserializeAndRegisterActorHandle(const std::string &serialized) {
  if (serialized.size() != ActorID::kSize) {
    throw ray::internal::RayException("Not a serialized actor handle (" +
                                      std::to_string(serialized.size()) + " bytes).");
  }
  return serialized;
}

// --- Placement groups ------------------------------------------------------

ray::PlacementGroup LocalModeRuntime::CreatePlacementGroup(
    const ray::PlacementGroupCreationOptions &options) {
  return placement_groups_.Create(options);
}

void LocalModeRuntime::RemovePlacementGroup(const std::string &group_id) {
  placement_groups_.Remove(group_id);
}

bool LocalModeRuntime::WaitPlacementGroupReady(const std::string &group_id,
                                               int64_t /*timeout_seconds*/) {
  return placement_groups_.WaitReady(group_id);
}

std::vector<ray::PlacementGroup> LocalModeRuntime::GetAllPlacementGroups() {
  return placement_groups_.All();
}

ray::PlacementGroup LocalModeRuntime::GetPlacementGroupById(const std::string &id) {
  return placement_groups_.ById(id);
}

ray::PlacementGroup LocalModeRuntime::GetPlacementGroup(const std::string &name) {
  return placement_groups_.ByName(name);
}

ray::internal::RuntimeContextInfo LocalModeRuntime::GetRuntimeContext() {
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

}  // namespace sunray
