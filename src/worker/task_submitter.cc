// The cluster runtime as a caller of normal tasks: arguments, scheduling
// classes, worker leases, pushes, retries, cancel. (Actors: actor_submitter.cc.)
#include <algorithm>

#include "ray/api/logging.h"
#include "ray/api/ray_exception.h"
#include "src/core/runtime_env_check.h"
#include "src/core/schedulable.h"
#include "src/worker/runtime_state.h"
#include "src/worker/task_stream.h"

namespace sunray {

using ray::internal::RayException;

namespace {

// Lease requests in flight per scheduling class (Ray's default is 10).
constexpr int kMaxPendingLeases = 10;
// Tasks pushed to one leased worker at once, when the backlog is deep.
constexpr size_t kMaxTasksInFlightPerWorker = 8;

std::string ClassKey(const ResourceSet &resources) {
  std::string key;
  for (const auto &[name, amount] : resources) key += name + "=" + std::to_string(amount) + ";";
  return key;
}

}  // namespace

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

void ClusterRuntime::ResolveArgs(std::shared_ptr<PendingTask> task,
                                 std::function<void(std::optional<ErrorInfo>)> done) {
  auto shared_done =
      std::make_shared<std::function<void(std::optional<ErrorInfo>)>>(std::move(done));
  std::vector<int> by_ref;
  for (int i = 0; i < task->spec.args_size(); ++i) {
    if (!task->spec.args(i).object_id().empty()) by_ref.push_back(i);
  }
  task->unresolved = static_cast<int>(by_ref.size()) + 1;
  auto arrive = [task, shared_done] {
    if (task->unresolved.fetch_sub(1) != 1) return;
    std::optional<ErrorInfo> error;
    {
      absl::MutexLock lock(&task->mu);
      error = task->dependency_error;
    }
    (*shared_done)(std::move(error));
  };
  for (int index : by_ref) {
    const std::string id = task->spec.args(index).object_id();
    auto fill = [this, task, index, id, arrive] {
      proto::ObjectValue value;
      if (std::optional<proto::ObjectValue> borrowed = refs_->BorrowedValue(id)) {
        value = std::move(*borrowed);
      } else {
        OwnedValueToProto(id, &value);
      }
      {
        absl::MutexLock lock(&task->mu);
        if (value.is_error()) {
          if (!task->dependency_error) task->dependency_error = ErrorFromProto(value.error());
        } else {
          *task->spec.mutable_args(index)->mutable_value() = std::move(value);
        }
      }
      arrive();
    };
    if (refs_->IsBorrowed(id)) {
      refs_->FetchBorrowed(id, std::move(fill));
    } else {
      owned_.OnSealed({id}, std::move(fill));
    }
  }
  arrive();
}

void ClusterRuntime::ReleaseTask(PendingTask *task) {
  for (const auto &id : task->held) RemoveLocalReference(id);
  task->held.clear();
  absl::MutexLock lock(&mu_);
  submitted_.erase(task->spec.return_id());
}

void ClusterRuntime::FailTask(PendingTask *task, ErrorInfo error) {
  if (error.function_name.empty()) error.function_name = task->spec.function_name();
  MemoryStore::Value value;
  value.error = std::make_shared<ErrorInfo>(std::move(error));
  owned_.Seal(task->spec.return_id(), std::move(value), {});
  ReleaseTask(task);
}

void ClusterRuntime::CompleteTask(PendingTask *task, const proto::ObjectValue &result) {
  SealFromProto(task->spec.return_id(), result);
  ReleaseTask(task);
}

// --- Normal tasks ----------------------------------------------------------

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

  if (auto error = CheckSchedulable(options.scheduling_strategy, options.group,
                                    options.serialized_runtime_env_info, node_id_,
                                    placement_groups_, " (its node: " + node_id_.Hex() + ").")) {
    FailTask(task.get(), std::move(*error));
    return return_id;
  }
  ResourceSet resources = ResourceSetFromUnits(options.resources);
  if (resources.empty()) resources["CPU"] = kResourceUnit;
  // Tasks with env_vars run in workers started with them (CheckSchedulable
  // has parsed the runtime env already).
  const std::vector<std::string> env = RuntimeEnvEntries(options.serialized_runtime_env_info);
  task->class_key = ClassKey(resources);
  for (const auto &entry : env) task->class_key += "\n" + entry;
  task->retries_left = options.max_retries;
  task->retry_exceptions = options.retry_exceptions;
  PrepareArgs(args, task.get());
  const bool infeasible =
      std::none_of(node_totals_.begin(), node_totals_.end(),
                   [&](const ResourceSet &totals) { return Fits(resources, totals); });
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) throw RayException("Sunray is shutting down.");
    submitted_[return_id] = task;
    auto &cls = classes_[task->class_key];
    if (cls == nullptr) {
      cls = std::make_unique<SchedulingClass>();
      cls->key = task->class_key;
      cls->env = env;
      FillResourceMap(resources, &cls->resources);
    }
    if (infeasible && warned_infeasible_.insert(task->class_key).second) {
      RAYLOG(WARNING) << "The task " << function.function_name << " asks for "
                      << ResourcesText(resources)
                      << ", more than any node in the cluster has; it waits until such a node "
                         "joins (see `sunray status`).";
    }
  }
  ResolveArgs(task, [this, task](std::optional<ErrorInfo> error) {
    if (error) {
      FailTask(task.get(), std::move(*error));
      return;
    }
    EnqueueNormalTask(task);
  });
  return return_id;
}

void ClusterRuntime::EnqueueNormalTask(std::shared_ptr<PendingTask> task) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    if (task->cancelled) return;  // failed by Cancel already
    task->resolved = true;
    SchedulingClass *cls = classes_[task->class_key].get();
    cls->queue.push_back(std::move(task));
    DispatchLocked(cls, &work);
  }
  for (auto &item : work) item();
}

void ClusterRuntime::DispatchLocked(SchedulingClass *cls,
                                    std::vector<std::function<void()>> *work) {
  if (shut_down_) return;
  // First every idle worker gets a task; then, while the backlog is deeper
  // than the workers can take one at a time, workers get a few more queued
  // behind (they run them in order, with no round trip in between; a worker
  // that blocks in Get sends back what it had not started).
  std::vector<std::pair<std::shared_ptr<LeasedWorker>, std::vector<std::shared_ptr<PendingTask>>>>
      pushes;
  auto push = [&](const std::shared_ptr<LeasedWorker> &worker) {
    std::shared_ptr<PendingTask> task = std::move(cls->queue.front());
    cls->queue.pop_front();
    task->pushed_to = worker->address;
    worker->tasks[task->spec.return_id()] = task;
    auto to = std::find_if(pushes.begin(), pushes.end(),
                           [&](const auto &entry) { return entry.first == worker; });
    if (to == pushes.end()) to = pushes.emplace(pushes.end(), worker, 0);
    to->second.push_back(std::move(task));
  };
  auto in_flight = [](const LeasedWorker &worker) { return worker.tasks.size(); };
  for (auto &worker : cls->workers) {
    if (cls->queue.empty()) break;
    if (in_flight(*worker) == 0 && !worker->dead) push(worker);
  }
  for (size_t depth = 1; depth < kMaxTasksInFlightPerWorker; ++depth) {
    for (auto &worker : cls->workers) {
      if (cls->queue.size() <= cls->workers.size()) break;
      if (in_flight(*worker) == depth && !worker->dead && !worker->bounced) push(worker);
    }
  }
  for (auto &push : pushes) {
    work->push_back([this, worker = push.first, tasks = std::move(push.second)] {
      PushNormalTasks(worker, tasks);
    });
  }
  // More workers while tasks wait (each pending lease covers one task).
  while (static_cast<int>(cls->queue.size()) > cls->pending_leases &&
         cls->pending_leases < kMaxPendingLeases) {
    ++cls->pending_leases;
    work->push_back([this, key = cls->key, resources = cls->resources, env = cls->env] {
      RequestLease(key, resources, env);
    });
  }
}

void ClusterRuntime::RequestLease(const std::string &class_key, const proto::ResourceMap &resources,
                                  const std::vector<std::string> &env) {
  proto::RequestWorkerLeaseRequest request;
  request.set_job_id(job_id_.Hex());
  *request.mutable_resources() = resources;
  for (const auto &arg : options_.worker_argv) request.add_argv(arg);
  for (const auto &entry : worker_env_) request.add_env(entry);
  for (const auto &entry : env) request.add_env(entry);
  node_client_->RequestWorkerLease(
      request, [this, class_key](absl::StatusOr<proto::RequestWorkerLeaseReply> granted) {
        const absl::Status status = granted.status();
        std::shared_ptr<LeasedWorker> worker;
        if (status.ok()) {
          const proto::RequestWorkerLeaseReply &reply = *granted;
          worker = std::make_shared<LeasedWorker>();
          worker->lease_id = reply.lease_id();
          worker->address = reply.worker_address();
          worker->task_address = reply.worker_task_address();
          worker->pid = reply.worker_pid();
          worker->idle_since = absl::Now();
          worker->stream = OpenStream(
              worker->task_address,
              [this, class_key, worker](proto::TaskResults &results) {
                OnTaskResults(class_key, worker, results);
              },
              [this, class_key, worker](const grpc::Status &status) {
                OnTaskStreamEnd(class_key, worker, status);
              });
        }
        std::vector<std::function<void()>> work;
        std::vector<std::shared_ptr<PendingTask>> failed;
        absl::Time granted_idle = absl::InfiniteFuture();
        {
          absl::MutexLock lock(&mu_);
          SchedulingClass *cls = classes_[class_key].get();
          --cls->pending_leases;
          if (status.ok()) {
            if (shut_down_ || worker->stream == nullptr) {
              worker->returned = true;
              work.push_back([this, worker] { ReturnLease(*worker, false); });
            } else {
              cls->workers.push_back(worker);
              granted_idle = worker->idle_since;  // if no task is left for it
            }
          } else if (cls->workers.empty() && cls->pending_leases == 0) {
            // No worker will come for these tasks.
            failed.assign(cls->queue.begin(), cls->queue.end());
            cls->queue.clear();
          }
          DispatchLocked(cls, &work);
        }
        if (granted_idle != absl::InfiniteFuture()) LeaseWentIdle(granted_idle);
        for (auto &item : work) item();
        for (auto &task : failed) {
          FailTask(task.get(),
                   ErrorInfo{ErrorType::kWorkerDied,
                             "No worker could be leased for task " + task->spec.function_name() +
                                 ": " + std::string(status.message()),
                             "", "", ""});
        }
      });
}

std::shared_ptr<TaskStreamClient> ClusterRuntime::OpenStream(
    const std::string &address, std::function<void(proto::TaskResults &)> on_results,
    std::function<void(const grpc::Status &)> on_end) {
  // Registered before it opens (Shutdown cancels it), under its own lock
  // so that Shutdown cannot cancel it half-made.
  absl::MutexLock lock(&calls_mu_);
  if (calls_closed_) return nullptr;
  auto registered = std::make_shared<TaskStreamClient *>(nullptr);
  auto stream = TaskStreamClient::Open(
      &frames_, address, options_.token, std::move(on_results),
      [this, registered, on_end = std::move(on_end)](const grpc::Status &status) {
        on_end(status);
        absl::MutexLock lock(&calls_mu_);
        streams_.erase(*registered);
        if (calls_.empty() && streams_.empty()) calls_idle_.SignalAll();
      });
  if (stream == nullptr) {
    RAYLOG(WARNING) << "Sunray could not open a task stream to " << address;
    return nullptr;
  }
  *registered = stream.get();
  streams_.insert(stream.get());
  return stream;
}

void ClusterRuntime::PushNormalTasks(const std::shared_ptr<LeasedWorker> &worker,
                                     const std::vector<std::shared_ptr<PendingTask>> &tasks) {
  std::shared_ptr<TaskStreamClient> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = worker->stream;
  }
  std::vector<proto::TaskSpec> specs;
  specs.reserve(tasks.size());
  for (const auto &task : tasks) specs.push_back(task->spec);
  // Not sent: the stream has broken, and its end settles these tasks.
  if (stream != nullptr) (void)stream->Send(std::move(specs));
}

void ClusterRuntime::OnTaskResults(const std::string &class_key,
                                   const std::shared_ptr<LeasedWorker> &worker,
                                   proto::TaskResults &results) {
  std::vector<std::pair<std::shared_ptr<PendingTask>, const proto::PushTaskReply *>> answered;
  absl::Time idle_since;
  {
    absl::MutexLock lock(&mu_);
    for (const auto &result : results.results()) {
      auto it = worker->tasks.find(result.return_id());
      if (it == worker->tasks.end()) continue;  // settled already (cannot happen)
      answered.emplace_back(std::move(it->second), &result.reply());
      worker->tasks.erase(it);
    }
    worker->idle_since = absl::Now();
    idle_since = worker->tasks.empty() ? worker->idle_since : absl::InfiniteFuture();
    // The worker's last word says whether it is blocked.
    if (!answered.empty()) worker->bounced = answered.back().second->bounced();
  }
  if (idle_since != absl::InfiniteFuture()) LeaseWentIdle(idle_since);
  std::vector<std::shared_ptr<PendingTask>> again;
  for (const auto &[task, reply] : answered) {
    if (SettleNormalTask(task, *worker, grpc::Status::OK, reply)) again.push_back(task);
  }
  RequeueAndDispatch(class_key, again);
}

void ClusterRuntime::OnTaskStreamEnd(const std::string &class_key,
                                     const std::shared_ptr<LeasedWorker> &worker,
                                     const grpc::Status &status) {
  std::vector<std::shared_ptr<PendingTask>> lost;
  bool dead = false;
  {
    absl::MutexLock lock(&mu_);
    worker->stream = nullptr;
    for (auto &[return_id, task] : worker->tasks) lost.push_back(std::move(task));
    worker->tasks.clear();
    if (!worker->returned && !worker->dead) {
      // Its worker (or the connection to it) is gone: the lease goes too.
      dead = true;
      worker->dead = true;
      std::erase(classes_[class_key]->workers, worker);
    }
  }
  if (dead) ReturnLease(*worker, true);
  const grpc::Status why =
      status.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                 "the worker ended its task stream with tasks unanswered")
                  : status;
  std::vector<std::shared_ptr<PendingTask>> again;
  for (const auto &task : lost) {
    if (SettleNormalTask(task, *worker, why, nullptr)) again.push_back(task);
  }
  RequeueAndDispatch(class_key, again);
}

void ClusterRuntime::RequeueAndDispatch(const std::string &class_key,
                                        const std::vector<std::shared_ptr<PendingTask>> &again) {
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    SchedulingClass *cls = classes_[class_key].get();
    for (auto it = again.rbegin(); it != again.rend(); ++it) cls->queue.push_front(*it);
    DispatchLocked(cls, &work);
  }
  for (auto &item : work) item();
}

bool ClusterRuntime::SettleNormalTask(const std::shared_ptr<PendingTask> &task,
                                      const LeasedWorker &worker, const grpc::Status &status,
                                      const proto::PushTaskReply *reply) {
  const bool bounced = reply != nullptr && reply->bounced();
  bool cancelled;
  bool retry = false;
  {
    absl::MutexLock lock(&mu_);
    cancelled = task->cancelled;
    if (bounced && !cancelled) {
      retry = true;  // not run: not an attempt
      task->pushed_to.clear();
    }
    // A dead worker is retried; a task's own exception only when asked.
    const bool failed =
        reply == nullptr || (task->retry_exceptions && reply->result().is_error() &&
                             reply->result().error().type() == proto::TASK_EXECUTION_EXCEPTION);
    if (!bounced && failed && !cancelled && !shut_down_ && task->retries_left != 0) {
      retry = true;
      if (task->retries_left > 0) --task->retries_left;
      task->pushed_to.clear();
    }
  }
  if (bounced && cancelled) {
    FailTask(task.get(),
             ErrorInfo{ErrorType::kTaskCancelled,
                       "The task was cancelled with ray::Cancel before it ran.", "", "", ""});
  } else if (retry) {
    if (reply == nullptr) {
      RAYLOG(WARNING) << "The worker running " << task->spec.function_name() << " (pid "
                      << worker.pid << ") died: " << status.error_message()
                      << "; the task runs again.";
    }
  } else if (reply != nullptr) {
    CompleteTask(task.get(), reply->result());
  } else if (cancelled) {
    FailTask(task.get(),
             ErrorInfo{ErrorType::kTaskCancelled,
                       "The task was cancelled with ray::Cancel while it ran.", "", "", ""});
  } else {
    FailTask(task.get(), ErrorInfo{ErrorType::kWorkerDied,
                                   "The worker running " + task->spec.function_name() + " (pid " +
                                       std::to_string(worker.pid) + ", node " + node_id_.Hex() +
                                       ") died before the task finished: " + status.error_message(),
                                   "", "", ""});
  }
  return retry;
}

void ClusterRuntime::ReturnLease(const LeasedWorker &worker, bool dead) {
  lease_returner_->Return(worker.lease_id, dead, worker.pid);
}

absl::Time ClusterRuntime::ReturnIdleLeases(bool all) {
  std::vector<std::shared_ptr<LeasedWorker>> idle;
  std::vector<std::shared_ptr<TaskStreamClient>> streams;
  absl::Time next = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (auto &[key, cls] : classes_) {
      // Busy workers (and those of a class with tasks waiting, which get
      // them) are looked at again a linger from now: going idle before
      // then (LeaseWentIdle) wakes nobody, which a synchronous caller would
      // otherwise pay for on every task.
      if (!all && !cls->queue.empty()) {
        if (!cls->workers.empty()) next = std::min(next, now + kLeaseLinger);
        continue;
      }
      std::erase_if(cls->workers, [&](const std::shared_ptr<LeasedWorker> &worker) {
        if (!all && !worker->tasks.empty()) {
          next = std::min(next, now + kLeaseLinger);
          return false;
        }
        if (!all && now - worker->idle_since < kLeaseLinger) {
          next = std::min(next, worker->idle_since + kLeaseLinger);
          return false;
        }
        worker->returned = true;
        idle.push_back(worker);
        if (worker->stream != nullptr) streams.push_back(worker->stream);
        return true;
      });
    }
  }
  for (const auto &stream : streams) stream->Close();
  for (const auto &worker : idle) ReturnLease(*worker, false);
  return next;
}

void ClusterRuntime::Cancel(const std::string &object_id, bool force, bool /*recursive*/) {
  std::shared_ptr<PendingTask> task;
  std::string pushed_to;
  bool queued = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = submitted_.find(object_id);
    if (it == submitted_.end()) return;  // done already (or not ours)
    task = it->second;
    if (task->spec.type() == proto::TaskSpec::ACTOR_CREATION || task->cancelled) return;
    task->cancelled = true;
    pushed_to = task->pushed_to;
    if (pushed_to.empty()) {
      queued = true;
      if (task->spec.type() == proto::TaskSpec::NORMAL) {
        auto cls = classes_.find(task->class_key);
        if (cls != classes_.end()) std::erase(cls->second->queue, task);
      } else {
        auto actor = actors_.find(task->spec.actor_id());
        if (actor != actors_.end()) std::erase(actor->second->queue, task);
      }
    }
    // An actor's running call is never forced: that would end the actor.
    if (task->spec.type() == proto::TaskSpec::ACTOR_TASK) force = false;
  }
  if (queued) {
    FailTask(task.get(),
             ErrorInfo{ErrorType::kTaskCancelled,
                       "The task was cancelled with ray::Cancel before it ran.", "", "", ""});
    return;
  }
  proto::CancelTaskRequest request;
  request.set_return_id(object_id);
  request.set_force(force);
  proto::CancelTaskReply reply;
  const grpc::Status status =
      WorkerStub(pushed_to)->CancelTask(Context(5000).get(), request, &reply);
  if (!status.ok()) {
    // A dead worker fails the task as cancelled when its stream breaks; a
    // live one that did not answer goes on running it.
    RAYLOG(WARNING) << "ray::Cancel could not reach the worker at " << pushed_to << " running "
                    << task->spec.function_name() << ": " << status.error_message();
  }
}

}  // namespace sunray
