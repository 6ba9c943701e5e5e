#include "src/worker/actor_task_submitter.h"

#include <algorithm>
#include <limits>

#include "src/common/id.h"

namespace sunray {

proto::ActorInfo DeadActorInfo(const std::string &actor_id, const std::string &message) {
  proto::ActorInfo dead;
  dead.set_actor_id(actor_id);
  dead.set_state(proto::ActorInfo::DEAD);
  dead.set_version(std::numeric_limits<int64_t>::max());
  dead.mutable_death_cause()->set_type(proto::ACTOR_DIED);
  dead.mutable_death_cause()->set_message(message);
  return dead;
}

ActorTaskSubmitter::ActorTaskSubmitter(
    TaskStreamOpener *streams, TaskOutcomes *outcomes, ActorDirectory *directory,
    std::function<void(const std::vector<std::string> &ids)> release)
    : streams_(streams), outcomes_(outcomes), directory_(directory), release_(std::move(release)) {}

bool ActorTaskSubmitter::AddCreating(const std::string &actor_id, const std::string &class_name) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  auto actor = std::make_shared<Actor>();
  actor->id = actor_id;
  actor->class_name = class_name;
  actor->watching = true;  // once created
  actors_[actor_id] = std::move(actor);
  return true;
}

void ActorTaskSubmitter::Forget(const std::string &actor_id) {
  absl::MutexLock lock(&mu_);
  actors_.erase(actor_id);
}

void ActorTaskSubmitter::Created(const std::string &actor_id, std::vector<std::string> held) {
  std::shared_ptr<Actor> actor = Find(actor_id);
  if (actor == nullptr) {  // forgotten meanwhile: nothing will release these
    release_(held);
    return;
  }
  bool dead = false;
  {
    absl::MutexLock lock(&mu_);
    dead = actor->known && actor->info.state() == proto::ActorInfo::DEAD;
    if (!dead) actor->creation_held = std::move(held);
  }
  if (dead) {
    release_(held);
    return;
  }
  directory_->Watch(actor_id);
}

std::shared_ptr<ActorTaskSubmitter::Actor> ActorTaskSubmitter::Find(
    const std::string &actor_id) const {
  absl::MutexLock lock(&mu_);
  auto it = actors_.find(actor_id);
  return it == actors_.end() ? nullptr : it->second;
}

bool ActorTaskSubmitter::Add(std::shared_ptr<PendingTask> task) {
  const std::string actor_id = task->spec.actor_id();
  bool watch = false;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return false;
    auto &actor = actors_[actor_id];
    if (actor == nullptr) {
      actor = std::make_shared<Actor>();
      actor->id = actor_id;
    }
    watch = !actor->watching;
    actor->watching = true;
    task->order = actor->next_order++;
    actor->queue.push_back(std::move(task));
  }
  if (watch) directory_->Watch(actor_id);
  return true;
}

void ActorTaskSubmitter::ArgumentsResolved(const std::shared_ptr<PendingTask> &task,
                                           std::optional<ErrorInfo> error) {
  std::shared_ptr<Actor> actor = Find(task->spec.actor_id());
  if (actor == nullptr) return;
  Work work;
  {
    absl::MutexLock lock(&mu_);
    task->resolved = true;
    task->failed = std::move(error);
    SendLocked(actor, &work);
  }
  for (auto &item : work) item();
}

void ActorTaskSubmitter::OnActorInfo(const std::string &actor_id, const proto::ActorInfo &info) {
  std::shared_ptr<Actor> actor = Find(actor_id);
  if (actor != nullptr) ApplyInfo(actor, info);
}

void ActorTaskSubmitter::ApplyInfo(const std::shared_ptr<Actor> &actor,
                                   const proto::ActorInfo &info) {
  Work work;
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
    SendLocked(actor, &work);
  }
  if (close != nullptr) close->Close();
  for (auto &item : work) item();
  if (!release.empty()) release_(release);
}

ErrorInfo ActorTaskSubmitter::DeathErrorLocked(const Actor &actor,
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

void ActorTaskSubmitter::SendLocked(const std::shared_ptr<Actor> &actor, Work *work) {
  if (!actor->known) return;
  if (actor->info.state() == proto::ActorInfo::DEAD) {
    for (auto &task : actor->queue) {
      ErrorInfo error = DeathErrorLocked(*actor, task->spec.function_name());
      work->push_back([this, task, error] { outcomes_->Failed(*task, error); });
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
      work->push_back([this, task] { outcomes_->Failed(*task, *task->failed); });
      continue;
    }
    if (actor->channel == nullptr) actor->channel = OpenLocked(actor);
    if (actor->channel == nullptr) {  // shutting down
      work->push_back([this, task] {
        outcomes_->Failed(*task, ErrorInfo{ErrorType::kActorDied,
                                           "Sunray is shutting down: the call " +
                                               task->spec.function_name() + " was not sent.",
                                           "", "", ""});
      });
      continue;
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

std::shared_ptr<ActorTaskSubmitter::Channel> ActorTaskSubmitter::OpenLocked(
    const std::shared_ptr<Actor> &actor) {
  auto channel = std::make_shared<Channel>();
  channel->address = actor->info.address();
  // Under mu_, so that calls keep their order: the handlers take mu_, so
  // this needs an opener that never runs them on the thread calling Open
  // (TaskStreams runs them on its loop thread).
  channel->stream = streams_->Open(
      actor->info.task_address(),
      [this, actor, channel](proto::TaskResults &results) { OnResults(actor, channel, results); },
      [this, actor, channel](const absl::Status &status) { OnChannelEnd(actor, channel, status); });
  if (channel->stream == nullptr) return nullptr;
  return channel;
}

void ActorTaskSubmitter::OnResults(const std::shared_ptr<Actor> &actor,
                                   const std::shared_ptr<Channel> &channel,
                                   const proto::TaskResults &results) {
  std::vector<std::pair<std::shared_ptr<PendingTask>, const proto::PushTaskReply *>> answered;
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
    Settle(actor, channel->address, task, absl::OkStatus(), reply);
  }
}

void ActorTaskSubmitter::OnChannelEnd(const std::shared_ptr<Actor> &actor,
                                      const std::shared_ptr<Channel> &channel,
                                      const absl::Status &status) {
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
  const absl::Status why =
      status.ok() ? absl::UnavailableError("the actor's stream ended with calls unanswered")
                  : status;
  for (const auto &task : lost) Settle(actor, channel->address, task, why, nullptr);
}

void ActorTaskSubmitter::Settle(const std::shared_ptr<Actor> &actor, const std::string &address,
                                const std::shared_ptr<PendingTask> &task,
                                const absl::Status &status, const proto::PushTaskReply *reply) {
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
    ApplyInfo(actor, dead);
    ErrorInfo error;
    {
      absl::MutexLock lock(&mu_);
      error = DeathErrorLocked(*actor, task->spec.function_name());
    }
    outcomes_->Failed(*task, std::move(error));
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
    outcomes_->Succeeded(*task, reply->result());
    return;
  }
  ErrorInfo error;
  bool resend = false;
  Work work;
  {
    absl::MutexLock lock(&mu_);
    if (actor->info.address() == address) actor->suspect = true;
    task->retries.set_max(actor->info.max_task_retries());
    if (!shut_down_ && !task->cancelled && actor->info.state() != proto::ActorInfo::DEAD &&
        task->retries.Spend()) {
      // Sent again, in its place among the waiting calls, once the
      // directory tells where the actor lives now.
      resend = true;
      task->pushed_to.clear();
      auto place = std::find_if(
          actor->queue.begin(), actor->queue.end(),
          [&](const std::shared_ptr<PendingTask> &queued) { return queued->order > task->order; });
      actor->queue.insert(place, task);
      SendLocked(actor, &work);
    } else {
      error = DeathErrorLocked(*actor, task->spec.function_name());
    }
  }
  if (resend) {
    for (auto &item : work) item();
    return;
  }
  error.message = "The actor " + BinaryToHex(actor->id) + " (" + actor->class_name +
                  ") died while the call " + task->spec.function_name() + " was in flight: " +
                  (stale ? std::string("it was killed") : std::string(status.message()));
  outcomes_->Failed(*task, std::move(error));
}

CancelOutcome ActorTaskSubmitter::Cancel(const std::shared_ptr<PendingTask> &task) {
  CancelOutcome outcome;
  {
    absl::MutexLock lock(&mu_);
    auto it = actors_.find(task->spec.actor_id());
    if (it == actors_.end() || task->cancelled) return outcome;
    if (task->pushed_to.empty()) {
      auto &queue = it->second->queue;
      auto queued = std::find(queue.begin(), queue.end(), task);
      if (queued == queue.end()) return outcome;  // settled, or being settled
      queue.erase(queued);
      task->cancelled = true;
      outcome.kind = CancelOutcome::kFailed;
    } else {
      task->cancelled = true;
      outcome.kind = CancelOutcome::kPushed;
      outcome.worker_address = task->pushed_to;
      return outcome;
    }
  }
  outcomes_->Failed(
      *task, ErrorInfo{ErrorType::kTaskCancelled,
                       "The task was cancelled with ray::Cancel before it ran.", "", "", ""});
  return outcome;
}

void ActorTaskSubmitter::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

ActorTaskSubmitter::Counts ActorTaskSubmitter::counts(const std::string &actor_id) const {
  absl::MutexLock lock(&mu_);
  Counts counts;
  auto it = actors_.find(actor_id);
  if (it == actors_.end()) return counts;
  counts.queued = it->second->queue.size();
  if (it->second->channel != nullptr) counts.in_flight = it->second->channel->calls.size();
  return counts;
}

}  // namespace sunray
