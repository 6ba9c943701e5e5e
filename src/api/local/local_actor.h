// One actor in local mode: its object, its threads and its mailbox.
//
// The actor runs on its own `max_concurrency` threads. Calls queue in
// submission order; with one thread they run in that order, with more they
// start in that order. The constructor runs first, on an actor thread.
//
// Death: Kill, ExitActor, or a throwing constructor. Calls queued or running
// at that moment fail with an ACTOR_DIED error, unless the actor restarts
// (Kill(no_restart=false) within max_restarts) and the call has retries left
// (max_task_retries), in which case it runs again on the new incarnation.
// The actor object is destroyed when the last call running on it returns.
//
// Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "ray/api/ray_runtime.h"
#include "src/api/local/local_context.h"
#include "src/common/id.h"
#include "src/core/retry_rule.h"

namespace sunray {

class LocalActor {
 public:
  struct Call {
    TaskID task_id;
    std::string method;  // registered name
    std::vector<ray::internal::TaskArg> args;
    std::string return_id;
    RetryBudget retries;  // max_task_retries (retry_rule.h)
  };

  // `on_death` runs once when the actor is dead for good.
  LocalActor(const LocalServices &services, ActorID id, ray::internal::RemoteFunctionHolder factory,
             std::vector<ray::internal::TaskArg> creation_args,
             ray::internal::ActorCreationOptions options, std::function<void()> on_death);
  ~LocalActor();
  LocalActor(const LocalActor &) = delete;
  LocalActor &operator=(const LocalActor &) = delete;

  const ActorID &id() const { return id_; }

  // Starts the actor threads, which construct the object.
  void Start();
  // Queues a call (its args are already retained).
  void Submit(Call call);
  void Kill(bool no_restart);
  // Drops a queued call with a TASK_CANCELLED error. False if not queued.
  bool Cancel(const std::string &return_id);
  // Fails every queued call, waits for running ones, destroys the object.
  void Stop();

  bool IsDead() const;

 private:
  enum class State { kConstructing, kAlive, kDead };

  // The object, deleted with its deleter when the last holder lets go.
  using Instance = std::shared_ptr<void>;

  void ThreadLoop();
  void Construct(absl::MutexLock &lock) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunCall(absl::MutexLock &lock, Call call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the actor dead (or restarting); returns the calls to fail.
  std::vector<Call> DieLocked(const std::string &cause, bool allow_restart)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailCalls(std::vector<Call> calls, const std::string &cause);
  ErrorInfo DeathError(const std::string &cause) const;

  const LocalServices &services_;
  const ActorID id_;
  const ray::internal::RemoteFunctionHolder factory_;
  const std::vector<ray::internal::TaskArg> creation_args_;
  const ray::internal::ActorCreationOptions options_;
  std::function<void()> on_death_;

  mutable absl::Mutex mu_;
  absl::CondVar state_cv_;
  State state_ ABSL_GUARDED_BY(mu_) = State::kConstructing;
  bool constructor_running_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int restarts_ ABSL_GUARDED_BY(mu_) = 0;
  int incarnation_ ABSL_GUARDED_BY(mu_) = 0;
  std::string death_cause_ ABSL_GUARDED_BY(mu_);
  Instance instance_ ABSL_GUARDED_BY(mu_);
  std::deque<Call> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
