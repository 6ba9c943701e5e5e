#include "src/api/local/local_actor.h"

namespace sunray {

LocalActor::LocalActor(const LocalServices &services, ActorID id,
                       ray::internal::RemoteFunctionHolder factory,
                       std::vector<ray::internal::TaskArg> creation_args,
                       ray::internal::ActorCreationOptions options, std::function<void()> on_death)
    : services_(services),
      id_(id),
      factory_(std::move(factory)),
      creation_args_(std::move(creation_args)),
      options_(std::move(options)),
      on_death_(std::move(on_death)) {
  services_.RetainArgs(creation_args_);
}

LocalActor::~LocalActor() {
  Stop();
  services_.ReleaseArgs(creation_args_);
}

void LocalActor::Start() {
  absl::MutexLock lock(&mu_);
  for (int i = 0; i < options_.max_concurrency; ++i) {
    threads_.emplace_back([this] { ThreadLoop(); });
  }
}

bool LocalActor::IsDead() const {
  absl::MutexLock lock(&mu_);
  return state_ == State::kDead;
}

void LocalActor::Submit(Call call) {
  call.retries = RetryBudget(options_.max_task_retries);
  {
    absl::MutexLock lock(&mu_);
    if (state_ != State::kDead && !stopping_) {
      queue_.push_back(std::move(call));
      state_cv_.SignalAll();
      return;
    }
  }
  std::vector<Call> calls;
  calls.push_back(std::move(call));
  std::string cause;
  {
    absl::MutexLock lock(&mu_);
    cause = death_cause_;
  }
  FailCalls(std::move(calls), cause);
}

ErrorInfo LocalActor::DeathError(const std::string &cause) const {
  ErrorInfo error;
  error.type = ErrorType::kActorDied;
  error.message = "The actor " + id_.Hex() + " (" + factory_.class_name + ") died: " + cause;
  return error;
}

void LocalActor::FailCalls(std::vector<Call> calls, const std::string &cause) {
  for (auto &call : calls) {
    services_.StoreError(call.return_id, DeathError(cause));
    services_.ReleaseArgs(call.args);
  }
}

std::vector<LocalActor::Call> LocalActor::DieLocked(const std::string &cause, bool allow_restart) {
  std::vector<Call> failed;
  if (state_ == State::kDead) return failed;
  const bool restart = allow_restart && !stopping_ &&
                       (options_.max_restarts == -1 || restarts_ < options_.max_restarts);
  ++incarnation_;
  instance_.reset();  // running calls keep their own reference
  std::deque<Call> kept;
  for (auto &call : queue_) {
    if (restart && call.retries.Spend()) {
      kept.push_back(std::move(call));
    } else {
      failed.push_back(std::move(call));
    }
  }
  queue_.swap(kept);
  if (restart) {
    ++restarts_;
    state_ = State::kConstructing;
  } else {
    state_ = State::kDead;
    death_cause_ = cause;
  }
  state_cv_.SignalAll();
  return failed;
}

void LocalActor::Kill(bool no_restart) {
  std::vector<Call> failed;
  bool dead = false;
  {
    absl::MutexLock lock(&mu_);
    failed = DieLocked("it was killed with ray::ActorHandle::Kill.", !no_restart);
    dead = state_ == State::kDead;
  }
  FailCalls(std::move(failed), "it was killed with ray::ActorHandle::Kill.");
  if (dead && on_death_) on_death_();
}

bool LocalActor::Cancel(const std::string &return_id) {
  Call cancelled;
  {
    absl::MutexLock lock(&mu_);
    auto it = std::find_if(queue_.begin(), queue_.end(),
                           [&](const Call &call) { return call.return_id == return_id; });
    if (it == queue_.end()) return false;
    cancelled = std::move(*it);
    queue_.erase(it);
  }
  services_.StoreError(cancelled.return_id,
                       ErrorInfo{ErrorType::kTaskCancelled,
                                 "The actor call " + cancelled.method +
                                     " was cancelled with ray::Cancel before it ran.",
                                 cancelled.method, "", ""});
  services_.ReleaseArgs(cancelled.args);
  return true;
}

void LocalActor::Stop() {
  std::vector<Call> failed;
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    failed = DieLocked("the runtime shut down.", false);
    threads.swap(threads_);
  }
  FailCalls(std::move(failed), "the runtime shut down.");
  for (auto &thread : threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();
    } else {
      thread.join();
    }
  }
}

void LocalActor::ThreadLoop() {
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!stopping_ && state_ != State::kDead &&
           !(state_ == State::kConstructing && !constructor_running_) &&
           !(state_ == State::kAlive && !queue_.empty())) {
      state_cv_.Wait(&mu_);
    }
    if (stopping_ || state_ == State::kDead) return;
    if (state_ == State::kConstructing) {
      Construct(lock);
      continue;
    }
    Call call = std::move(queue_.front());
    queue_.pop_front();
    RunCall(lock, std::move(call));
  }
}

void LocalActor::Construct(absl::MutexLock &) {
  constructor_running_ = true;
  const int incarnation = incarnation_;
  const int restarts = restarts_;
  mu_.Unlock();

  ExecutionResult result;
  void *object = nullptr;
  ray::internal::ActorDeleter deleter = nullptr;
  {
    ExecutionContextScope context({TaskID::FromRandom(), id_, restarts, true});
    ResolvedArgs args;
    if (auto error = services_.ResolveArgs(creation_args_, &args)) {
      result.error = std::move(error);
    } else {
      result =
          services_.executor.CreateActor(factory_.function_name, args.views, &object, &deleter);
    }
  }
  Instance instance;
  if (object != nullptr) instance = Instance(object, deleter);

  mu_.Lock();
  constructor_running_ = false;
  if (incarnation != incarnation_) {
    // Killed while constructing; the new incarnation (if any) starts over.
    state_cv_.SignalAll();
    return;
  }
  if (result.error) {
    const std::string cause = "its constructor failed: " + result.error->message;
    std::vector<Call> failed = DieLocked(cause, false);
    mu_.Unlock();
    instance.reset();
    FailCalls(std::move(failed), cause);
    if (on_death_) on_death_();
    mu_.Lock();
    return;
  }
  instance_ = std::move(instance);
  state_ = State::kAlive;
  state_cv_.SignalAll();
}

void LocalActor::RunCall(absl::MutexLock &, Call call) {
  const int incarnation = incarnation_;
  const int restarts = restarts_;
  Instance instance = instance_;
  mu_.Unlock();

  ExecutionResult result;
  {
    ExecutionContextScope context({call.task_id, id_, restarts, true});
    ResolvedArgs args;
    if (auto error = services_.ResolveArgs(call.args, &args)) {
      result.error = std::move(error);
    } else {
      result = services_.executor.CallMember(call.method, instance.get(), args.views);
    }
  }
  instance.reset();  // the last call on a dead incarnation destroys its object

  mu_.Lock();
  if (result.exit_actor) {
    const std::string cause = "it called ray::ExitActor().";
    std::vector<Call> failed = DieLocked(cause, false);
    mu_.Unlock();
    services_.StoreResult(call.return_id, std::move(result));
    services_.ReleaseArgs(call.args);
    FailCalls(std::move(failed), cause);
    if (on_death_) on_death_();
    mu_.Lock();
    return;
  }
  if (incarnation != incarnation_) {
    // The actor died while this call ran: the result is lost with it.
    for (const auto &id : result.contained_ids) services_.store.RemoveReference(id);
    if (state_ != State::kDead && call.retries.Spend()) {
      queue_.push_front(std::move(call));
      state_cv_.SignalAll();
      return;
    }
    const std::string cause = state_ == State::kDead ? death_cause_ : "it restarted.";
    mu_.Unlock();
    std::vector<Call> failed;
    failed.push_back(std::move(call));
    FailCalls(std::move(failed), cause + " The call was running at the time.");
    mu_.Lock();
    return;
  }
  mu_.Unlock();
  services_.StoreResult(call.return_id, std::move(result));
  services_.ReleaseArgs(call.args);
  mu_.Lock();
}

}  // namespace sunray
