#include "src/worker/task_receiver.h"
#include "src/common/log.h"

#include <unistd.h>

#include "absl/synchronization/notification.h"
#include "src/core/execution_context.h"
#include "src/core/object_error.h"
#include "src/core/schedulable.h"
#include "src/worker/task_stream.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.receiver"));
  return **logger;
}

// How long an exiting actor waits for its last answer to be written.
constexpr absl::Duration kExitAnswerDeadline = absl::Seconds(5);

void SetError(ErrorInfo error, proto::ObjectValue *out) {
  out->set_is_error(true);
  ErrorToProto(error, out->mutable_error());
}

}  // namespace

TaskReceiver::~TaskReceiver() {
  Stop();
  std::unique_ptr<HostedActor> hosted;
  {
    absl::MutexLock lock(&mu_);
    hosted = std::move(hosted_);
  }
  if (hosted != nullptr && hosted->deleter != nullptr) hosted->deleter(hosted->instance);
}

void TaskReceiver::ReceiveFromStream(TaskStreamServer *stream, proto::TaskSpec task) {
  struct Streamed {
    proto::TaskSpec spec;
    proto::PushTaskReply reply;
  };
  auto item = std::make_shared<Streamed>();
  item->spec = std::move(task);
  auto answer = [stream, item](std::function<void()> after_sent) {
    stream->Answer(item->spec.return_id(), std::move(item->reply), std::move(after_sent));
  };
  {
    absl::MutexLock lock(&mu_);
    feed_ = stream->connection();
  }
  const proto::TaskSpec::Type type = item->spec.type();
  if (type != proto::TaskSpec::NORMAL && type != proto::TaskSpec::ACTOR_TASK) {
    SetError({ErrorType::kWorkerDied,
              "a task stream carries normal tasks and actor calls only (this task has type " +
                  std::to_string(type) + ")",
              item->spec.function_name(), "", ""},
             item->reply.mutable_result());
    answer(nullptr);
    return;
  }
  Receive(item->spec, &item->reply, std::move(answer));
}

void TaskReceiver::Receive(const proto::TaskSpec &spec, proto::PushTaskReply *reply,
                           Finish finish) {
  auto run = [this, &spec, reply, finish] {
    if (spec.type() != proto::TaskSpec::ACTOR_CREATION) {
      // Normal tasks and actor calls can be cancelled while they wait here.
      bool cancelled = false;
      {
        absl::MutexLock lock(&mu_);
        if (!StartLocked(spec, &cancelled)) return;
      }
      if (cancelled) {
        SetError(
            {ErrorType::kTaskCancelled, "The task was cancelled with ray::Cancel before it ran.",
             spec.function_name(), "", ""},
            reply->mutable_result());
      } else {
        Execute(spec, reply);
      }
      absl::MutexLock lock(&mu_);
      running_.erase(spec.return_id());
    } else {
      Execute(spec, reply);
    }
    if (!reply->actor_exiting()) {
      finish(nullptr);
      return;
    }
    // ray::ExitActor(): answer, then (here, not on the thread that wrote the
    // answer) make the death final and go.
    const std::string actor_id = spec.actor_id();
    auto sent = std::make_shared<absl::Notification>();
    finish([sent] { sent->Notify(); });
    if (!sent->WaitForNotificationWithTimeout(kExitAnswerDeadline)) {
      Logger().warn("the exiting actor's last answer was not written within {}; it exits anyway",
                    absl::FormatDuration(kExitAnswerDeadline));
    }
    runner_->FinishActorExit(actor_id);
  };
  std::function<void()> bounce_now;
  {
    absl::MutexLock lock(&mu_);
    switch (spec.type()) {
      case proto::TaskSpec::NORMAL:
        if (blocked_) {  // it would wait behind a blocked task: back to its owner
          bounce_now = [reply, finish] {
            reply->set_bounced(true);
            finish(nullptr);
          };
          break;
        }
        MarkReceivedLocked(spec.return_id());
        waiting_normal_[spec.return_id()] = [reply, finish] {
          reply->set_bounced(true);
          finish(nullptr);
        };
        EnqueueLocked(std::move(run));
        break;
      case proto::TaskSpec::ACTOR_CREATION:
        EnqueueLocked(std::move(run));
        break;
      default:  // ACTOR_TASK
        MarkReceivedLocked(spec.return_id());
        OrderLocked(spec, std::move(run));
        break;
    }
  }
  if (bounce_now) bounce_now();
}

bool TaskReceiver::StartLocked(const proto::TaskSpec &spec, bool *cancelled) {
  const std::string &return_id = spec.return_id();
  // Sent back already (its call, and `spec` with it, may be gone).
  if (bounced_.erase(return_id) > 0) return false;
  waiting_normal_.erase(return_id);
  *cancelled = cancelled_.erase(return_id) > 0;
  running_[return_id] = true;
  return true;
}

void TaskReceiver::MarkReceivedLocked(const std::string &return_id) {
  running_[return_id] = false;
  if (early_cancels_.erase(return_id) > 0) {
    cancelled_.insert(return_id);
    std::erase(early_cancel_order_, return_id);
  }
}

void TaskReceiver::OrderLocked(const proto::TaskSpec &spec, std::function<void()> run) {
  if (hosted_ == nullptr) {
    // Calls only come once the control service saw the actor created; this
    // one is answered with the error.
    EnqueueLocked(std::move(run));
    return;
  }
  HostedActor::Caller &caller = hosted_->callers[spec.caller_id()];
  if (spec.sequence_number() < caller.next) {  // a resend of a call that ran
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

bool TaskReceiver::Cancel(const std::string &return_id, bool force) {
  {
    absl::MutexLock lock(&mu_);
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
      cancelled_.insert(return_id);  // answered TaskCancelled when its turn comes
      return true;
    }
    // A running actor call is left alone: ending the process would end the
    // actor.
    if (!force || hosted_ != nullptr) return true;
  }
  // A running C++ function cannot be interrupted: the worker goes, and the
  // owner reports the task as cancelled.
  Logger().warn("force-cancelling a running task: this worker exits");
  runner_->ForceExit();
  return true;
}

void TaskReceiver::SetBlocked(bool blocked) {
  std::vector<std::function<void()>> bounces;
  {
    absl::MutexLock lock(&mu_);
    blocked_ = blocked;
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

void TaskReceiver::EnqueueLocked(std::function<void()> work) {
  queue_.push_back(std::move(work));
  if (reading_ != nullptr) reading_->Wake();  // (a no-op from the reader itself)
}

void TaskReceiver::Run() {
  for (;;) {
    std::function<void()> work;
    {
      absl::MutexLock lock(&mu_);
      if (!HasWorkLocked()) ReadTasksHereLocked();
      mu_.Await(absl::Condition(this, &TaskReceiver::HasWorkLocked));
      if (stopping_) return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

void TaskReceiver::ReadTasksHereLocked() {
  if (reading_ != nullptr) return;
  std::shared_ptr<rpc::FrameConnection> feed = feed_.lock();
  if (feed == nullptr) return;
  rpc::ReadWaker &waker = rpc::ReadWaker::ForThisThread();
  reading_ = &waker;
  mu_.Unlock();
  const auto has_work = [this] {
    absl::MutexLock lock(&mu_);
    return HasWorkLocked();
  };
  auto read = rpc::FrameConnection::ReadHereResult::kWoken;
  // (A wake-up left from work that was queued as this thread took it.)
  for (int tries = 0;
       tries < 2 && read == rpc::FrameConnection::ReadHereResult::kWoken && !has_work(); ++tries) {
    read = feed->ReadHere(waker, absl::InfiniteFuture(), has_work);
  }
  mu_.Lock();
  reading_ = nullptr;
  // Ended, broken, or read by the loop now: the loop brings its tasks.
  if (read == rpc::FrameConnection::ReadHereResult::kNotNow && feed_.lock() == feed) {
    feed_.reset();
  }
}

void TaskReceiver::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    if (reading_ != nullptr) reading_->Wake();
    threads.swap(threads_);
  }
  for (auto &thread : threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // Stop from a task on one of them: it returns after
    } else {
      thread.join();
    }
  }
}

size_t TaskReceiver::extra_threads() const {
  absl::MutexLock lock(&mu_);
  return threads_.size();
}

void TaskReceiver::Execute(const proto::TaskSpec &spec, proto::PushTaskReply *reply) {
  const bool in_actor = spec.type() != proto::TaskSpec::NORMAL;
  int restarts = spec.restart_count();
  void *instance = nullptr;
  if (spec.type() == proto::TaskSpec::ACTOR_TASK) {
    absl::MutexLock lock(&mu_);
    if (hosted_ != nullptr) {
      instance = hosted_->instance;
      restarts = hosted_->restarts;
    }
  }
  ExecutionContextScope context({TaskID::FromBinary(spec.task_id()),
                                 ActorID::FromBinary(spec.actor_id()), restarts, in_actor});
  ExecutionResult result;
  switch (spec.type()) {
    case proto::TaskSpec::NORMAL:
      result = runner_->Run(spec, nullptr);
      break;
    case proto::TaskSpec::ACTOR_CREATION: {
      if (spec.max_concurrency() > kMaxActorConcurrency) {  // a bad peer's number
        result.error = ErrorInfo{ErrorType::kActorDied,
                                 "max_concurrency " + std::to_string(spec.max_concurrency()) +
                                     " is over the limit of " +
                                     std::to_string(kMaxActorConcurrency) + " threads per actor",
                                 spec.function_name(), "", ""};
        break;
      }
      {
        absl::MutexLock lock(&mu_);
        if (hosted_ != nullptr) {
          result.error =
              ErrorInfo{ErrorType::kActorDied,
                        "this worker (pid " + std::to_string(getpid()) + ") hosts an actor already",
                        spec.function_name(), "", ""};
          break;
        }
      }
      void *created = nullptr;
      ray::internal::ActorDeleter deleter = nullptr;
      result = runner_->Create(spec, &created, &deleter);
      if (!result.error) Host(spec, created, deleter);
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
        result = runner_->Run(spec, instance);
      }
      break;
    default:
      break;
  }
  reply->set_actor_exiting(result.exit_actor);
  runner_->Encode(spec, std::move(result), reply->mutable_result());
}

void TaskReceiver::Host(const proto::TaskSpec &spec, void *instance,
                        ray::internal::ActorDeleter deleter) {
  auto hosted = std::make_unique<HostedActor>();
  hosted->instance = instance;
  hosted->deleter = deleter;
  hosted->restarts = spec.restart_count();
  absl::MutexLock lock(&mu_);
  hosted_ = std::move(hosted);
  if (stopping_) return;
  // Run's thread is one executor; more for a concurrent actor.
  for (int i = 1; i < spec.max_concurrency(); ++i) threads_.emplace_back([this] { Run(); });
}

}  // namespace sunray
