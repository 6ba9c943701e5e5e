// The caller's side of actor calls (Ray: the actor task submitter): one
// queue per actor in this caller's submission order, sent from the front
// once each call's arguments resolve, numbered per incarnation so the actor
// runs them in that order, on one task stream per incarnation. When the
// actor restarts, the calls it did not answer are sent again in their
// places while its max_task_retries allow; when it is dead for good, every
// queued and unanswered call fails with the cause of death.
//
// Owns: what this caller knows of each actor it created or called (its
// last state from the control service, its queue, its stream and the
// calls on it), and the references held for the arguments of the creation
// tasks this process submitted (released through `release` once the actor
// is dead for good).
// Collaborators (interfaces, fakes in actor_task_submitter_test.cc): the
// task streams (TaskStreamOpener), where settled calls go (TaskOutcomes),
// and where actor states come from (ActorDirectory, whose updates arrive
// through OnActorInfo).
//
// Thread-safety: thread-safe; one lock, held while calling a collaborator
// only for TaskStreamOpener::Open, whose handlers must not run on the
// thread calling it; other collaborators may call back in from theirs.
// Errors: a call that cannot run is settled through TaskOutcomes::Failed
// with the reason (the actor died, and how; cancelled; shutting down);
// nothing is thrown.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "control.pb.h"
#include "src/worker/pending_task.h"
#include "src/worker/task_stream.h"

namespace sunray {

// Where actor states come from (the control service's long poll).
class ActorDirectory {
 public:
  virtual ~ActorDirectory() = default;
  // From now on, every newer state of `actor_id` is given to
  // ActorTaskSubmitter::OnActorInfo, until one says it is dead; a state
  // that cannot be read is given as a DEAD one naming why.
  virtual void Watch(const std::string &actor_id) = 0;
};

// A DEAD state of `actor_id` newer than any the control service sends,
// with `message` as the cause.
proto::ActorInfo DeadActorInfo(const std::string &actor_id, const std::string &message);

class ActorTaskSubmitter {
 public:
  // The collaborators must outlive this object and every callback of theirs.
  ActorTaskSubmitter(TaskStreamOpener *streams, TaskOutcomes *outcomes, ActorDirectory *directory,
                     std::function<void(const std::vector<std::string> &ids)> release);

  // An actor this process is creating: calls to it queue until its first
  // state arrives. False once shut down.
  [[nodiscard]] bool AddCreating(const std::string &actor_id, const std::string &class_name);
  // Its creation failed before the control service knew it (nothing was
  // queued: the creator had no handle yet).
  void Forget(const std::string &actor_id);
  // The control service accepted its creation: watches it, and holds
  // `held` until it is dead for good.
  void Created(const std::string &actor_id, std::vector<std::string> held);

  // An actor call, described but for its sequence number; the actor is
  // watched from its first call on. False once shut down (nothing taken).
  [[nodiscard]] bool Add(std::shared_ptr<PendingTask> task);
  // Its arguments are values now (or one failed: the call fails with it,
  // in its turn).
  void ArgumentsResolved(const std::shared_ptr<PendingTask> &task, std::optional<ErrorInfo> error);

  // A state of the actor, from the directory or a kill's answer; older ones
  // and unknown actors are ignored.
  void OnActorInfo(const std::string &actor_id, const proto::ActorInfo &info);

  // ray::Cancel of a call: a queued one fails as cancelled; a sent one is
  // marked (not resent after a death) and its address returned.
  CancelOutcome Cancel(const std::shared_ptr<PendingTask> &task);

  // No call is sent or resent from now on; the streams' ends settle the
  // calls on them.
  void Shutdown();

  // The calls waiting in `actor_id`'s queue, and those sent and unanswered.
  struct Counts {
    size_t queued = 0;
    size_t in_flight = 0;
  };
  Counts counts(const std::string &actor_id) const;

 private:
  struct Channel;
  struct Actor {
    std::string id;
    std::string class_name;
    bool known = false;  // `info` has arrived
    proto::ActorInfo info;
    bool watching = false;
    // A call to the current address failed: hold calls until the next
    // state arrives.
    bool suspect = false;
    std::shared_ptr<Channel> channel;  // to the current incarnation, once used
    int64_t next_seq = 0;
    uint64_t next_order = 0;
    // Calls in submission order, sent from the front once resolved.
    std::deque<std::shared_ptr<PendingTask>> queue;
    std::vector<std::string> creation_held;
  };
  // The stream to one incarnation, and the calls on it not answered yet.
  struct Channel {
    std::string address;
    std::shared_ptr<TaskSender> stream;  // until it ends
    absl::flat_hash_map<std::string, std::shared_ptr<PendingTask>> calls;
  };
  using Work = std::vector<std::function<void()>>;

  std::shared_ptr<Actor> Find(const std::string &actor_id) const;
  void ApplyInfo(const std::shared_ptr<Actor> &actor, const proto::ActorInfo &info);
  // Sends what the queue's front has ready; the collaborator calls it
  // needs go to `work`, to be run once the lock is released.
  void SendLocked(const std::shared_ptr<Actor> &actor, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::shared_ptr<Channel> OpenLocked(const std::shared_ptr<Actor> &actor)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnResults(const std::shared_ptr<Actor> &actor, const std::shared_ptr<Channel> &channel,
                 const proto::TaskResults &results);
  void OnChannelEnd(const std::shared_ptr<Actor> &actor, const std::shared_ptr<Channel> &channel,
                    const absl::Status &status);
  // A sent call's end: answered (`reply`), or lost with `status`.
  void Settle(const std::shared_ptr<Actor> &actor, const std::string &address,
              const std::shared_ptr<PendingTask> &task, const absl::Status &status,
              const proto::PushTaskReply *reply);
  ErrorInfo DeathErrorLocked(const Actor &actor, const std::string &function) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  TaskStreamOpener *const streams_;
  TaskOutcomes *const outcomes_;
  ActorDirectory *const directory_;
  const std::function<void(const std::vector<std::string> &)> release_;

  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, std::shared_ptr<Actor>> actors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
