// The cluster runtime in a worker process: the TaskRunner its TaskReceiver
// calls (arguments read from the node store, functions run, results put on
// the wire with the refs inside registered for the caller), PushTask, and
// telling the node when the running task blocks.
#include <unistd.h>

#include <cstdio>
#include <iostream>

#include "ray/api/ray_exception.h"
#include "src/common/log.h"
#include "src/core/execution_context.h"
#include "src/worker/runtime_state.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.receiver"));
  return **logger;
}

}  // namespace

ClusterRuntime::BlockedScope::BlockedScope(ClusterRuntime *runtime) : runtime_(runtime) {
  const ExecutionContext *context = CurrentExecutionContext();
  if (runtime_->options_.worker_mode && context != nullptr && !context->in_actor) {
    active_ = true;
    runtime_->receiver_.SetBlocked(true);
    Notify(true);
  }
}

ClusterRuntime::BlockedScope::~BlockedScope() {
  if (!active_) return;
  runtime_->receiver_.SetBlocked(false);
  Notify(false);
}

void ClusterRuntime::BlockedScope::Notify(bool blocked) {
  runtime_->blocked_notifier_->Set(blocked);
}

void ClusterRuntime::RunWorkerLoop() {
  receiver_.Run();
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
  receiver_.Receive(spec, reply, [reactor](std::function<void()> after_reply) {
    if (after_reply) reactor->set_after_reply(std::move(after_reply));
    reactor->Finish(grpc::Status::OK);
  });
}

bool ClusterRuntime::ArgumentViews(const proto::TaskSpec &spec, ray::internal::ArgsViewList *views,
                                   std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> *keep,
                                   ExecutionResult *failed) {
  for (const auto &arg : spec.args()) {
    if (arg.value().in_store()) {
      absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> value = objects_->ReadNodeStore(
          arg.object_id(), ObjectProvider::Holders(arg.value()), arg.value().owner_address());
      if (!value.ok()) {
        failed->error = ErrorInfo{ErrorType::kObjectLost, std::string(value.status().message()),
                                  spec.function_name(), "", ""};
        return false;
      }
      keep->push_back(*std::move(value));
      views->push_back({keep->back()->Data(), keep->back()->Size()});
    } else {
      views->push_back({arg.value().data().data(), arg.value().data().size()});
    }
  }
  return true;
}

ExecutionResult ClusterRuntime::Run(const proto::TaskSpec &spec, void *instance) {
  ray::internal::ArgsViewList views;
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> keep_alive;
  ExecutionResult result;
  if (!ArgumentViews(spec, &views, &keep_alive, &result)) return result;
  if (instance == nullptr) return executor_.Call(spec.function_name(), views);
  return executor_.CallMember(spec.function_name(), instance, views);
}

ExecutionResult ClusterRuntime::Create(const proto::TaskSpec &spec, void **instance,
                                       ray::internal::ActorDeleter *deleter) {
  ray::internal::ArgsViewList views;
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> keep_alive;
  ExecutionResult result;
  if (!ArgumentViews(spec, &views, &keep_alive, &result)) return result;
  return executor_.CreateActor(spec.function_name(), views, instance, deleter);
}

void ClusterRuntime::FinishActorExit(const std::string &actor_id) {
  // The process ends either way. If the control service did not hear this,
  // it learns of the exit from the node and takes it for a death it may
  // restart the actor after.
  if (absl::StatusOr<proto::ActorInfo> killed =
          control_.KillActor(actor_id, /*no_restart=*/true, std::chrono::seconds(5));
      !killed.ok()) {
    Logger().warn("ray::ExitActor could not tell the control service that actor {} exits: {}",
                  BinaryToHex(actor_id), killed.status().message());
  }
  ExitProcess(0);
}

void ClusterRuntime::Encode(const proto::TaskSpec &spec, ExecutionResult result,
                            proto::ObjectValue *out) {
  if (!result.error && result.data.size() > kMaxInlineObjectBytes) {
    // Every attempt of the task writes the same return id: an earlier
    // attempt's copy is taken as this one's (the owner never saw it).
    absl::Status stored = objects_->PutResult(
        spec.return_id(), std::string_view(result.data.data(), result.data.size()),
        spec.owner_address());
    if (stored.ok()) {
      objects_->MarkInThisNodeStore(out);
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
