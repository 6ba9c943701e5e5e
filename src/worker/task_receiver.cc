// The cluster runtime in a worker process: tasks pushed by owners run here,
// normal tasks and the actor's creation on the execution queue in arrival
// order, actor calls in each caller's order (up to max_concurrency at once).
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "ray/api/logging.h"
#include "ray/api/ray_exception.h"
#include "src/core/execution_context.h"
#include "src/core/schedulable.h"
#include "src/worker/runtime_state.h"
#include "src/worker/task_stream.h"

namespace sunray {

ClusterRuntime::BlockedScope::BlockedScope(ClusterRuntime *runtime) : runtime_(runtime) {
  const ExecutionContext *context = CurrentExecutionContext();
  if (runtime_->options_.worker_mode && context != nullptr && !context->in_actor) {
    active_ = true;
    runtime_->BounceWaitingTasks(true);
    Notify(true);
  }
}

ClusterRuntime::BlockedScope::~BlockedScope() {
  if (!active_) return;
  runtime_->BounceWaitingTasks(false);
  Notify(false);
}

void ClusterRuntime::BlockedScope::Notify(bool blocked) {
  proto::NotifyBlockedRequest request;
  request.set_startup_token(runtime_->options_.startup_token);
  request.set_blocked(blocked);
  proto::NotifyBlockedReply reply;
  (void)runtime_->node_->NotifyBlocked(runtime_->Context(5000).get(), request, &reply);
}

void ClusterRuntime::BounceWaitingTasks(bool blocked) {
  std::vector<std::function<void()>> bounces;
  {
    absl::MutexLock lock(&exec_mu_);
    exec_blocked_ = blocked;
    if (!blocked) return;
    for (auto &[return_id, bounce] : waiting_normal_) {
      bounced_.insert(return_id);
      running_.erase(return_id);
      bounces.push_back(std::move(bounce));
    }
    waiting_normal_.clear();
  }
  for (auto &bounce : bounces) bounce();
}

void ClusterRuntime::PushExecution(std::function<void()> work) {
  absl::MutexLock lock(&exec_mu_);
  EnqueueLocked(std::move(work));
}

void ClusterRuntime::EnqueueLocked(std::function<void()> work) {
  exec_queue_.push_back(std::move(work));
  if (exec_reading_ != nullptr) exec_reading_->Wake();  // (a no-op from the reader itself)
}

void ClusterRuntime::ExecutionLoop() {
  for (;;) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&exec_mu_);
      if (exec_queue_.empty()) ReadTasksHereLocked();
      exec_mu_.Await(absl::Condition(
          +[](std::deque<std::function<void()>> *queue) { return !queue->empty(); }, &exec_queue_));
      work = std::move(exec_queue_.front());
      exec_queue_.pop_front();
    }
    work();
  }
}

void ClusterRuntime::ReadTasksHereLocked() {
  if (exec_reading_ != nullptr) return;
  std::shared_ptr<rpc::FrameConnection> feed = exec_feed_.lock();
  if (feed == nullptr) return;
  rpc::ReadWaker &waker = rpc::ReadWaker::ForThisThread();
  exec_reading_ = &waker;
  exec_mu_.Unlock();
  const auto queued = [this] {
    absl::MutexLock lock(&exec_mu_);
    return !exec_queue_.empty();
  };
  auto read = rpc::FrameConnection::ReadHereResult::kWoken;
  // (A wake-up left from work that was queued as this thread took it.)
  for (int tries = 0;
       tries < 2 && read == rpc::FrameConnection::ReadHereResult::kWoken && !queued(); ++tries) {
    read = feed->ReadHere(waker, absl::InfiniteFuture(), queued);
  }
  exec_mu_.Lock();
  exec_reading_ = nullptr;
  // Ended, broken, or read by the loop now: the loop brings its tasks.
  if (read == rpc::FrameConnection::ReadHereResult::kNotNow && exec_feed_.lock() == feed) {
    exec_feed_.reset();
  }
}

void ClusterRuntime::RunWorkerLoop() {
  ExecutionLoop();
  ExitProcess(0);
}

void ClusterRuntime::ExitProcess(int code) {
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  _exit(code);
}

void ClusterRuntime::HandlePushTask(const proto::PushTaskRequest *request,
                                    proto::PushTaskReply *reply, DeferredReactor *reactor) {
  const proto::TaskSpec &spec = request->task();
  if (!options_.worker_mode) {
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "this process is a driver; it runs no tasks"));
    return;
  }
  if (!proto::TaskSpec::Type_IsValid(spec.type())) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                 "unknown task type " + std::to_string(spec.type())));
    return;
  }
  ReceiveTask(spec, reply, [reactor](std::function<void()> after_reply) {
    if (after_reply) reactor->set_after_reply(std::move(after_reply));
    reactor->Finish(grpc::Status::OK);
  });
}

void ClusterRuntime::HandleStreamedTask(TaskStreamServer *stream, proto::TaskSpec task) {
  struct Streamed {
    proto::TaskSpec spec;
    proto::PushTaskReply reply;
  };
  auto item = std::make_shared<Streamed>();
  item->spec = std::move(task);
  auto answer = [stream, item](std::function<void()> after_reply) {
    stream->Answer(item->spec.return_id(), std::move(item->reply), std::move(after_reply));
  };
  const proto::TaskSpec::Type type = item->spec.type();
  {
    absl::MutexLock lock(&exec_mu_);
    exec_feed_ = stream->connection();
  }
  // (Only workers take task streams: a driver does not listen for them.)
  if (type != proto::TaskSpec::NORMAL && type != proto::TaskSpec::ACTOR_TASK) {
    item->reply.mutable_result()->set_is_error(true);
    ErrorToProto(ErrorInfo{ErrorType::kWorkerDied,
                           "a task stream carries normal tasks and actor calls only (this task "
                           "has type " +
                               std::to_string(type) + ")",
                           item->spec.function_name(), "", ""},
                 item->reply.mutable_result()->mutable_error());
    answer(nullptr);
    return;
  }
  ReceiveTask(item->spec, &item->reply, std::move(answer));
}

void ClusterRuntime::ReceiveTask(const proto::TaskSpec &spec, proto::PushTaskReply *reply,
                                 TaskFinish finish) {
  auto run = [this, &spec, reply, finish, return_id = spec.return_id()] {
    if (spec.type() == proto::TaskSpec::ACTOR_CREATION) {
      ExecuteTask(spec, reply);
    } else {
      // Normal tasks and actor calls can be cancelled while they wait here.
      bool cancelled;
      {
        absl::MutexLock lock(&exec_mu_);
        // Sent back already (its call, and `spec` with it, may be gone).
        if (bounced_.erase(return_id) > 0) return;
        waiting_normal_.erase(return_id);
        cancelled = cancelled_.erase(spec.return_id()) > 0;
        running_[spec.return_id()] = true;
      }
      if (cancelled) {
        reply->mutable_result()->set_is_error(true);
        ErrorToProto(ErrorInfo{ErrorType::kTaskCancelled,
                               "The task was cancelled with ray::Cancel before it ran.",
                               spec.function_name(), "", ""},
                     reply->mutable_result()->mutable_error());
      } else {
        ExecuteTask(spec, reply);
      }
      absl::MutexLock lock(&exec_mu_);
      running_.erase(spec.return_id());
    }
    if (reply->actor_exiting()) {
      // ray::ExitActor(): answer, make the death final, then go.
      finish([this, actor_id = spec.actor_id()] {
        proto::KillActorRequest kill;
        kill.set_actor_id(actor_id);
        kill.set_no_restart(true);
        proto::KillActorReply kill_reply;
        (void)control_->KillActor(Context(5000).get(), kill, &kill_reply);
        ExitProcess(0);
      });
      return;
    }
    finish(nullptr);
  };
  switch (spec.type()) {
    case proto::TaskSpec::NORMAL: {
      absl::MutexLock lock(&exec_mu_);
      if (exec_blocked_) {  // would wait behind a blocked task: back to the owner
        reply->set_bounced(true);
        finish(nullptr);
        return;
      }
      MarkReceivedLocked(spec.return_id());
      waiting_normal_[spec.return_id()] = [reply, finish] {
        reply->set_bounced(true);
        finish(nullptr);
      };
      EnqueueLocked(std::move(run));
      return;
    }
    case proto::TaskSpec::ACTOR_CREATION:
      PushExecution(std::move(run));
      return;
    default: {  // ACTOR_TASK
      {
        absl::MutexLock lock(&exec_mu_);
        MarkReceivedLocked(spec.return_id());
      }
      ReceiveActorTask(spec, std::move(run));
      return;
    }
  }
}

void ClusterRuntime::MarkReceivedLocked(const std::string &return_id) {
  running_[return_id] = false;
  if (early_cancels_.erase(return_id) > 0) {
    cancelled_.insert(return_id);
    std::erase(early_cancel_order_, return_id);
  }
}

bool ClusterRuntime::HandleCancelTask(const std::string &return_id, bool force) {
  absl::MutexLock lock(&exec_mu_);
  auto it = running_.find(return_id);
  if (it == running_.end()) {
    // Not here yet (the cancel overtook the task on its stream) or done
    // already: remembered, so the task is answered cancelled if it comes.
    if (early_cancels_.insert(return_id).second) {
      early_cancel_order_.push_back(return_id);
      if (early_cancel_order_.size() > kMaxEarlyCancels) {
        early_cancels_.erase(early_cancel_order_.front());
        early_cancel_order_.pop_front();
      }
    }
    return false;
  }
  if (!it->second) {
    cancelled_.insert(return_id);  // answered with TaskCancelled when its turn comes
  } else if (force && hosted_ == nullptr) {
    // A running C++ function cannot be interrupted: the worker goes, and the
    // owner reports the task as cancelled. (An actor's running call is left
    // alone: ending the process would end the actor.)
    RAYLOG(WARNING) << "Force-cancelling a running task: this worker exits.";
    ExitProcess(1);
  }
  return true;
}

void ClusterRuntime::ReceiveActorTask(const proto::TaskSpec &spec, std::function<void()> run) {
  absl::MutexLock lock(&exec_mu_);
  if (hosted_ == nullptr) {
    // Calls only come once the control service saw the actor created.
    EnqueueLocked(std::move(run));
    return;
  }
  HostedActor::Caller &caller = hosted_->callers[spec.caller_id()];
  if (spec.sequence_number() < caller.next) {
    EnqueueLocked(std::move(run));
    return;
  }
  caller.parked.emplace(spec.sequence_number(), std::move(run));
  while (!caller.parked.empty() && caller.parked.begin()->first == caller.next) {
    EnqueueLocked(std::move(caller.parked.begin()->second));
    caller.parked.erase(caller.parked.begin());
    ++caller.next;
  }
}

void ClusterRuntime::ExecuteTask(const proto::TaskSpec &spec, proto::PushTaskReply *reply) {
  const bool in_actor = spec.type() != proto::TaskSpec::NORMAL;
  int restarts = spec.restart_count();
  void *instance = nullptr;
  if (spec.type() == proto::TaskSpec::ACTOR_TASK) {
    absl::MutexLock lock(&exec_mu_);
    if (hosted_ != nullptr) {
      instance = hosted_->instance;
      restarts = hosted_->restarts;
    }
  }
  ExecutionContextScope context({TaskID::FromBinary(spec.task_id()),
                                 ActorID::FromBinary(spec.actor_id()), restarts, in_actor});
  ray::internal::ArgsViewList views;
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> keep_alive;
  ExecutionResult result;
  try {
    for (const auto &arg : spec.args()) {
      if (arg.value().in_store()) {
        keep_alive.push_back(ReadNodeStore(arg.object_id()));
        views.push_back({keep_alive.back()->Data(), keep_alive.back()->Size()});
      } else {
        views.push_back({arg.value().data().data(), arg.value().data().size()});
      }
    }
  } catch (const ray::internal::RayException &e) {
    result.error = ErrorInfo{ErrorType::kObjectLost, e.what(), spec.function_name(), "", ""};
  }
  if (!result.error) {
    switch (spec.type()) {
      case proto::TaskSpec::NORMAL:
        result = executor_.Call(spec.function_name(), views);
        break;
      case proto::TaskSpec::ACTOR_CREATION: {
        void *created = nullptr;
        ray::internal::ActorDeleter deleter = nullptr;
        if (spec.max_concurrency() > kMaxActorConcurrency) {  // a bad peer's number
          result.error = ErrorInfo{ErrorType::kActorDied,
                                   "max_concurrency " + std::to_string(spec.max_concurrency()) +
                                       " is over the limit of " +
                                       std::to_string(kMaxActorConcurrency) + " threads per actor",
                                   spec.function_name(), "", ""};
          break;
        }
        result = executor_.CreateActor(spec.function_name(), views, &created, &deleter);
        if (!result.error) {
          auto hosted = std::make_unique<HostedActor>();
          hosted->instance = created;
          hosted->deleter = deleter;
          hosted->id = ActorID::FromBinary(spec.actor_id());
          hosted->restarts = spec.restart_count();
          hosted->class_name = spec.class_name();
          {
            absl::MutexLock lock(&exec_mu_);
            hosted_ = std::move(hosted);
          }
          // The main thread is one executor; more for concurrent actors.
          for (int i = 1; i < spec.max_concurrency(); ++i) {
            exec_threads_.emplace_back([this] { ExecutionLoop(); });
            exec_threads_.back().detach();
          }
        }
        break;
      }
      case proto::TaskSpec::ACTOR_TASK:
        if (instance == nullptr) {
          result.error =
              ErrorInfo{ErrorType::kActorDied,
                        "The actor " + BinaryToHex(spec.actor_id()) +
                            " is not hosted by this worker (pid " + std::to_string(getpid()) + ").",
                        spec.function_name(), "", ""};
        } else {
          result = executor_.CallMember(spec.function_name(), instance, views);
        }
        break;
      default:
        break;
    }
  }
  reply->set_actor_exiting(result.exit_actor);
  ResultToProto(spec, std::move(result), reply->mutable_result());
}

void ClusterRuntime::ResultToProto(const proto::TaskSpec &spec, ExecutionResult result,
                                   proto::ObjectValue *out) {
  if (!result.error && result.data.size() > kMaxInlineObjectBytes) {
    // Every attempt of the task writes the same return id: an earlier
    // attempt's copy is taken as this one's (the owner never saw it).
    absl::Status stored = store_->PutIdempotent(
        ObjectID::FromBinary(spec.return_id()),
        std::string_view(result.data.data(), result.data.size()), spec.owner_address());
    if (stored.ok()) {
      out->set_in_store(true);
    } else {
      result.error =
          ErrorInfo{ErrorType::kTaskExecution,
                    "The result of " + spec.function_name() +
                        " could not be stored: " + std::string(stored.message()),
                    spec.function_name(), "ObjectStoreFullError", std::string(stored.message())};
    }
  }
  if (result.error) {
    if (result.error->type == ErrorType::kTaskExecution) {
      result.error->message +=
          " (pid " + std::to_string(getpid()) + ", node " + node_id_.Hex() + ")";
    }
    out->set_is_error(true);
    ErrorToProto(*result.error, out->mutable_error());
    for (const auto &id : result.contained_ids) RemoveLocalReference(id);
    return;
  }
  if (!out->in_store()) out->set_data(result.data.data(), result.data.size());
  // Each ref in the result gets one registration for the caller before the
  // reply leaves, so it stays alive until the caller holds it.
  for (const auto &id : result.contained_ids) {
    const std::string owner = GetOwnershipInfo(id);
    proto::ObjectRefInfo *info = out->add_contained();
    info->set_object_id(id);
    info->set_owner_address(owner);
    if (owner == my_address_) {
      if (!refs_->RegisterBorrower(spec.owner_address(), id)) {
        info->set_lost_reason("it was freed before the result was sent");
      }
    } else if (!owner.empty()) {
      const absl::Status registered = peers_.AddBorrower(owner, id, spec.owner_address());
      // The caller must not count a registration the owner never made.
      if (!registered.ok()) info->set_lost_reason(BorrowFailureReason(owner, registered));
    }
  }
  for (const auto &id : result.contained_ids) RemoveLocalReference(id);
}

}  // namespace sunray
