// The actor directory (Ray: the GCS actor manager): registers actors,
// creates them on a node that fits, answers where they are, and restarts
// them (up to max_restarts) when their worker dies.
//
// Creating an actor: pick an ALIVE node whose total resources fit, lease a
// worker there (NodeService.RequestWorkerLease, answered when granted), push
// the creation task to it (WorkerService.PushTask). The reply makes the
// actor ALIVE, or DEAD with the constructor's error. States and versions:
//
//   PENDING ──created──► ALIVE ──worker died, restarts left──► RESTARTING ──► ALIVE ...
//      │                   │                                      │
//      └────── killed with no_restart, restarts used up, constructor threw, job finished ──► DEAD
//
// Every change raises the actor's version, is published (Publisher), and
// answers the long polls waiting for it (WaitForVersion).
//
// Threads: handlers call in from gRPC threads; a scheduler thread places
// queued actors on nodes (never on a gRPC thread); leases, pushes and kills
// are asynchronous calls (rpc::AsyncCaller) whose completions update the
// directory on gRPC's client threads. One mutex guards the state; no call,
// callback or answer runs under it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "control.grpc.pb.h"
#include "node.pb.h"
#include "src/control/publisher.h"
#include "src/rpc/async_caller.h"
#include "worker.pb.h"

namespace sunray {

class ActorDirectory {
 public:
  struct Options {
    std::string token;  // for calls to nodes and workers
    // Wait before leasing again after a lease failed (a worker that could
    // not start), so a broken worker command does not spin.
    std::chrono::milliseconds lease_retry_delay{500};
    // Consecutive failed leases after which the actor is DEAD. (A failed
    // lease uses up no restart: the actor never ran.)
    int max_lease_failures = 5;
    std::chrono::milliseconds kill_timeout{5000};  // Exit and KillWorker calls
    // The nodes (ids' bytes) holding bundle `index` (-1: any) of a placement
    // group: Unavailable while it is not placed yet (the actor waits),
    // another error when it never will be (the actor dies with it). Empty:
    // actors in groups wait.
    std::function<absl::StatusOr<std::vector<std::string>>(const std::string &group_id, int index)>
        locate_bundle;
  };
  // Every node control knows, alive or dead. Called without the directory's lock.
  using NodeLister = std::function<std::vector<proto::NodeInfo>()>;
  // A long poll's answer: the actor's info, NotFound, Cancelled, Unavailable.
  using Answer = std::function<void(absl::StatusOr<proto::ActorInfo>)>;

  // Starts the scheduler thread. `publisher` must outlive the directory.
  ActorDirectory(Options options, NodeLister nodes, Publisher &publisher);
  ~ActorDirectory();  // Stop()
  ActorDirectory(const ActorDirectory &) = delete;
  ActorDirectory &operator=(const ActorDirectory &) = delete;

  // Registers the actor (PENDING) and queues its creation. InvalidArgument
  // for malformed ids; AlreadyExists if its name is taken in its namespace
  // by an actor that is not DEAD, or the id is registered.
  absl::Status Create(const proto::CreateActorRequest &request);

  // Calls `answer` once the actor's version exceeds `after_version` (at
  // once, on this thread, if it does already or for after_version -1), with
  // NotFound for an unknown actor, or with Unavailable at Stop. Returns an
  // id for CancelWait.
  int64_t WaitForVersion(const std::string &actor_id, int64_t after_version, Answer answer);
  // Answers the wait with Cancelled unless it was answered already.
  void CancelWait(int64_t wait_id);

  // A live (not DEAD) actor by name, or NotFound.
  absl::StatusOr<proto::ActorInfo> GetNamed(const std::string &name,
                                            const std::string &ray_namespace);

  // Stops the actor's worker (Exit, then NodeService.KillWorker) and, at
  // once, restarts the actor by its restart rules or makes it DEAD (always
  // with `no_restart`). An actor without a worker yet dies at once with
  // `no_restart`, or has its worker killed once leased. Returns the actor's
  // state after the kill; NotFound for an unknown actor.
  absl::StatusOr<proto::ActorInfo> Kill(const std::string &actor_id, bool no_restart);

  // A node's worker process exited: if it hosted an actor, restart the
  // actor or mark it DEAD.
  void OnWorkerDeath(const std::string &node_id, int64_t startup_token, int32_t pid,
                     const std::string &reason);
  // The node left the cluster: its actors lost their workers.
  void OnNodeDead(const std::string &node_id, const std::string &reason);
  // A node joined: queued actors may fit now.
  void OnNodeAdded();
  // Kills every actor of the job that is not detached, without restart.
  void OnJobFinished(const std::string &job_id);
  // Kills every actor in the placement group, without restart.
  void OnPlacementGroupRemoved(const std::string &group_id);

  // Stops scheduling, cancels calls in flight and answers every long poll
  // with Unavailable. Idempotent.
  void Stop();

 private:
  // Where an actor stands between the public states.
  enum class Phase {
    kQueued,    // waiting for a node (PENDING or RESTARTING)
    kLeasing,   // a lease request is out to node_id
    kCreating,  // the creation task is out to the leased worker
    kAlive,
    kDead,
  };
  struct Actor {
    proto::ActorInfo info;
    proto::CreateActorRequest spec;
    Phase phase = Phase::kQueued;
    uint64_t attempt = 0;  // tells current completions from stale ones
    // The node (its id's bytes) and worker of the current attempt (kLeasing
    // and later).
    std::string node_id;
    std::string node_address;
    int64_t lease_id = 0;
    int32_t pid = 0;
    std::string worker_address;
    std::string worker_task_address;
    // Set once the actor must not restart: the death message to use.
    std::string final_death;
    bool kill_when_leased = false;
    int lease_failures = 0;          // in a row
    bool waiting_for_nodes = false;  // nothing fits; retried when nodes change
    bool infeasible_logged = false;
    std::chrono::steady_clock::time_point not_before;
  };
  struct Waiter {
    std::string actor_id;
    int64_t after_version;
    Answer answer;
  };
  using Work = std::vector<std::function<void()>>;  // run after unlocking

  void ScheduleLoop();
  bool HasDueWorkLocked(absl::Duration *wait) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PlaceQueuedLocked(const std::vector<proto::NodeInfo> &nodes, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void LeaseLocked(Actor &actor, const proto::NodeInfo &node, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnLeaseReply(const std::string &actor_id, uint64_t attempt, const std::string &node_id,
                    const std::string &node_address, const grpc::Status &status,
                    const proto::RequestWorkerLeaseReply &reply);
  void LeaseFailedLocked(Actor &actor, const grpc::Status &status, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PushCreationLocked(const Actor &actor, Work *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnCreationReply(const std::string &actor_id, uint64_t attempt, const grpc::Status &status,
                       const proto::PushTaskReply &reply);

  // The actor lost its worker (or never got one): restart or die.
  void WorkerGoneLocked(Actor &actor, const std::string &how, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DieLocked(Actor &actor, const proto::ErrorInfo &cause, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ChangedLocked(Actor &actor, Work *work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetWorkerLocked(Actor &actor) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopWorkerLocked(const Actor &actor, bool graceful, Work *work)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void KillLeasedWorker(const std::string &node_id, const std::string &node_address,
                        int64_t lease_id);
  // "The actor <hex id> (<class>)", for messages.
  static std::string Describe(const Actor &actor);
  // An ActorDied error with `message`.
  static proto::ErrorInfo DiedError(const std::string &message);

  const Options options_;
  const NodeLister list_nodes_;
  Publisher &publisher_;
  rpc::AsyncCaller calls_;

  absl::Mutex mu_;
  absl::CondVar wake_;  // the scheduler thread: nodes changed, actors queued, stop
  std::map<std::string, Actor> actors_ ABSL_GUARDED_BY(mu_);  // by binary actor id
  std::set<std::string> queued_ ABSL_GUARDED_BY(mu_);         // actors in Phase::kQueued
  // Names of actors that are not DEAD: (namespace, name) -> actor id.
  std::map<std::pair<std::string, std::string>, std::string> names_ ABSL_GUARDED_BY(mu_);
  // Leased workers hosting actors: (node id, lease id) -> actor id.
  std::map<std::pair<std::string, int64_t>, std::string> workers_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  int64_t next_wait_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread scheduler_;
};

}  // namespace sunray
