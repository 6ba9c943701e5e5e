// The cluster runtime as a caller of tasks: arguments (held, put in the
// store, their values for the DependencyResolver), results sealed for the
// TaskManager, Call and Cancel. Queues, leases and
// retries of normal tasks are the NormalTaskSubmitter's
// (normal_task_submitter.h); actor calls, actor_submitter.cc.
#include <algorithm>

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
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.tasks"));
  return **logger;
}

}  // namespace

using ray::internal::RayException;

// --- Arguments -------------------------------------------------------------

std::vector<std::string> ClusterRuntime::RuntimeEnvEntries(
    const std::string &serialized_runtime_env_info) const {
  std::map<std::string, std::string> vars = options_.env_vars;
  std::string ignored;  // checked by CheckSchedulable already
  if (auto own = ParseRuntimeEnvInfo(serialized_runtime_env_info, &ignored)) {
    for (auto &[name, value] : *own) vars[name] = std::move(value);
  }
  if (vars.empty()) return {};
  std::vector<std::string> entries = EnvEntries(vars);
  std::string names;
  for (const auto &[name, value] : vars) names += (names.empty() ? "" : ",") + name;
  entries.push_back(std::string(env::kRuntimeEnvVars) + "=" + names);
  return entries;
}

void ClusterRuntime::PrepareArgs(std::vector<ray::internal::TaskArg> &args, PendingTask *task) {
  size_t inline_bytes = 0;
  for (auto &arg : args) {
    proto::TaskArg *out = task->spec.add_args();
    if (arg.buffer && (arg.buffer->size() > kMaxInlineObjectBytes ||
                       inline_bytes + arg.buffer->size() > kMaxInlineArgBytes)) {
      // Large by-value arguments travel through the node store.
      const std::string id = Put(arg.buffer, arg.contained_object_ids);
      AddLocalReference(id);
      task->held.push_back(id);
      out->set_object_id(id);
      continue;
    }
    if (arg.buffer) {
      inline_bytes += arg.buffer->size();
      proto::ObjectValue *value = out->mutable_value();
      value->set_data(arg.buffer->data(), arg.buffer->size());
      for (const auto &inner : arg.contained_object_ids) {
        AddLocalReference(inner);
        task->held.push_back(inner);
        proto::ObjectRefInfo *info = value->add_contained();
        info->set_object_id(inner);
        info->set_owner_address(GetOwnershipInfo(inner));
      }
      continue;
    }
    AddLocalReference(arg.object_id);
    task->held.push_back(arg.object_id);
    out->set_object_id(arg.object_id);
  }
}

void ClusterRuntime::WhenReady(const std::string &object_id,
                               std::function<void(proto::ObjectValue value)> ready) {
  auto fill = [this, object_id, ready = std::move(ready)] {
    proto::ObjectValue value;
    if (std::optional<proto::ObjectValue> borrowed = refs_->BorrowedValue(object_id)) {
      value = std::move(*borrowed);
    } else {
      objects_->OwnedValueToProto(object_id, &value);
    }
    ready(std::move(value));
  };
  if (refs_->IsBorrowed(object_id)) {
    refs_->FetchBorrowed(object_id, std::move(fill));
  } else {
    owned_.OnSealed({object_id}, std::move(fill));
  }
}

void ClusterRuntime::StoreError(const std::string &return_id, ErrorInfo error) {
  MemoryStore::Value value;
  value.error = std::make_shared<ErrorInfo>(std::move(error));
  owned_.Seal(return_id, std::move(value), {});
}

// --- Calls and Cancel ------------------------------------------------------

std::string ClusterRuntime::Call(const ray::internal::RemoteFunctionHolder &function,
                                 std::vector<ray::internal::TaskArg> &args,
                                 const ray::internal::CallOptions &options) {
  auto task = std::make_shared<PendingTask>();
  const TaskID task_id = TaskID::FromRandom();
  proto::TaskSpec &spec = task->spec;
  spec.set_type(proto::TaskSpec::NORMAL);
  spec.set_task_id(task_id.Binary());
  spec.set_job_id(job_id_.Binary());
  spec.set_function_name(function.function_name);
  spec.set_return_id(ObjectID::ForTask(task_id, 1).Binary());
  spec.set_owner_address(my_address_);
  spec.set_ray_namespace(namespace_);
  const std::string return_id = spec.return_id();
  owned_.CreatePending(return_id);

  // Where it may run is for the nodes to decide (they know the cluster);
  // the form is checked here.
  if (auto error = CheckSchedulable(options.scheduling_strategy, options.label_selector,
                                    options.group, options.serialized_runtime_env_info,
                                    /*only_node=*/nullptr, /*groups=*/nullptr, "")) {
    tasks_.Failed(*task, std::move(*error));
    return return_id;
  }
  // Checked by CheckSchedulable.
  proto::SchedulingStrategy strategy =
      *SchedulingStrategyToProto(options.scheduling_strategy, options.label_selector);
  ResourceSet resources = ResourceSetFromUnits(options.resources);
  if (resources.empty()) resources["CPU"] = kResourceUnit;
  NormalTaskSubmitter::FirstNode first_node;
  if (!options.group.Empty()) {
    // The group's bundles decide where it runs.
    absl::StatusOr<InGroup> placed = PlaceInGroup(options.group, options.bundle_index, resources);
    if (!placed.ok()) {
      tasks_.Failed(*task, ErrorInfo{ErrorType::kTaskUnschedulable,
                                     std::string(placed.status().message()), "", "", ""});
      return return_id;
    }
    resources = std::move(placed->resources);
    first_node = std::move(placed->first_node);
    strategy = proto::SchedulingStrategy();
  }
  // Tasks with env_vars run in workers started with them (CheckSchedulable
  // has parsed the runtime env already).
  const std::vector<std::string> env = RuntimeEnvEntries(options.serialized_runtime_env_info);
  task->retries = RetryBudget(options.max_retries);
  task->retry_exceptions = options.retry_exceptions;
  PrepareArgs(args, task.get());
  if (!tasks_.Add(task)) {
    tasks_.Failed(*task,
                  ErrorInfo{ErrorType::kTaskCancelled, "Sunray is shutting down.", "", "", ""});
    throw RayException("Sunray is shutting down.");
  }
  normal_->Add(task, resources, env, strategy, first_node);
  resolver_.Resolve(task, [this, task](std::optional<ErrorInfo> error) {
    normal_->ArgumentsResolved(task, std::move(error));
  });
  return return_id;
}

void ClusterRuntime::Cancel(const std::string &object_id, bool force, bool /*recursive*/) {
  std::shared_ptr<PendingTask> task = tasks_.Find(object_id);
  if (task == nullptr) return;  // done already (or not ours)
  if (task->spec.type() == proto::TaskSpec::ACTOR_CREATION) return;
  const CancelOutcome outcome = task->spec.type() == proto::TaskSpec::NORMAL
                                    ? normal_->Cancel(object_id)
                                    : actor_calls_.Cancel(task);
  if (outcome.kind != CancelOutcome::kPushed) return;
  const std::string &pushed_to = outcome.worker_address;
  // An actor's running call is never forced: that would end the actor.
  if (task->spec.type() == proto::TaskSpec::ACTOR_TASK) force = false;
  if (absl::Status status = peers_.CancelTask(pushed_to, object_id, force); !status.ok()) {
    // A dead worker fails the task as cancelled when its stream breaks; a
    // live one that did not answer goes on running it.
    Logger().warn("ray::Cancel could not reach the worker at {} running {}: {}", pushed_to,
                  task->spec.function_name(), status.message());
  }
}

}  // namespace sunray
