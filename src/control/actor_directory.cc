#include "src/control/actor_directory.h"

#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "worker.grpc.pb.h"

namespace sunray {
namespace {

using Clock = std::chrono::steady_clock;

absl::Status CheckCreateRequest(const proto::CreateActorRequest &request) {
  const proto::TaskSpec &task = request.creation_task();
  if (task.actor_id().size() != ActorID::kSize) {
    return absl::InvalidArgumentError("CreateActor: creation_task.actor_id must be " +
                                      std::to_string(ActorID::kSize) + " bytes, got " +
                                      std::to_string(task.actor_id().size()));
  }
  if (task.job_id().size() != JobID::kSize) {
    return absl::InvalidArgumentError("CreateActor: creation_task.job_id must be " +
                                      std::to_string(JobID::kSize) + " bytes, got " +
                                      std::to_string(task.job_id().size()));
  }
  if (request.argv().empty()) {
    return absl::InvalidArgumentError("CreateActor: argv names no worker program");
  }
  if (request.max_restarts() < -1) {
    return absl::InvalidArgumentError("CreateActor: max_restarts must be -1 or more");
  }
  for (const auto &[name, amount] : request.resources().amounts()) {
    if (amount < 0) return absl::InvalidArgumentError("CreateActor: negative amount of " + name);
  }
  return absl::OkStatus();
}

}  // namespace

ActorDirectory::ActorDirectory(Options options, NodeLister nodes, Publisher &publisher)
    : options_(std::move(options)),
      list_nodes_(std::move(nodes)),
      publisher_(publisher),
      calls_(options_.token) {
  scheduler_ = std::thread([this] { ScheduleLoop(); });
}

ActorDirectory::~ActorDirectory() { Stop(); }

absl::Status ActorDirectory::Create(const proto::CreateActorRequest &request) {
  if (absl::Status valid = CheckCreateRequest(request); !valid.ok()) return valid;
  const proto::TaskSpec &task = request.creation_task();
  const std::string &id = task.actor_id();
  Work work;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the control service is stopping");
    if (actors_.count(id) != 0) {
      return absl::AlreadyExistsError("CreateActor: actor " + BinaryToHex(id) +
                                      " is registered already");
    }
    const std::pair<std::string, std::string> name{request.ray_namespace(), request.name()};
    if (!request.name().empty()) {
      auto taken = names_.find(name);
      if (taken != names_.end()) {
        return absl::AlreadyExistsError("CreateActor: the name '" + request.name() +
                                        "' is taken in namespace '" + request.ray_namespace() +
                                        "' by actor " + BinaryToHex(taken->second));
      }
      names_[name] = id;
    }
    Actor &actor = actors_[id];
    actor.spec = request;
    proto::ActorInfo &info = actor.info;
    info.set_actor_id(id);
    info.set_job_id(task.job_id());
    info.set_name(request.name());
    info.set_ray_namespace(request.ray_namespace());
    info.set_state(proto::ActorInfo::PENDING);
    info.set_detached(request.detached());
    info.set_class_name(task.class_name());
    info.set_max_task_retries(request.max_task_retries());
    actor.not_before = Clock::now();
    queued_.insert(id);
    ChangedLocked(actor, &work);
    wake_.Signal();
  }
  for (auto &run : work) run();
  return absl::OkStatus();
}

int64_t ActorDirectory::WaitForVersion(const std::string &actor_id, int64_t after_version,
                                       Answer answer) {
  absl::StatusOr<proto::ActorInfo> now;
  int64_t wait_id = 0;
  {
    absl::MutexLock lock(&mu_);
    wait_id = next_wait_id_++;
    auto it = actors_.find(actor_id);
    if (stopping_) {
      now = absl::UnavailableError("the control service is stopping");
    } else if (it == actors_.end()) {
      now = absl::NotFoundError("no actor " + BinaryToHex(actor_id));
    } else if (it->second.info.version() > after_version) {
      now = it->second.info;
    } else {
      waiters_[wait_id] = Waiter{actor_id, after_version, std::move(answer)};
      return wait_id;
    }
  }
  answer(std::move(now));
  return wait_id;
}

void ActorDirectory::CancelWait(int64_t wait_id) {
  Answer answer;
  {
    absl::MutexLock lock(&mu_);
    auto it = waiters_.find(wait_id);
    if (it == waiters_.end()) return;  // answered already
    answer = std::move(it->second.answer);
    waiters_.erase(it);
  }
  answer(absl::CancelledError("the long poll was cancelled"));
}

absl::StatusOr<proto::ActorInfo> ActorDirectory::GetNamed(const std::string &name,
                                                          const std::string &ray_namespace) {
  absl::MutexLock lock(&mu_);
  auto it = names_.find({ray_namespace, name});
  if (it == names_.end()) {
    return absl::NotFoundError("no live actor named '" + name + "' in namespace '" + ray_namespace +
                               "'");
  }
  return actors_.at(it->second).info;
}

absl::StatusOr<proto::ActorInfo> ActorDirectory::Kill(const std::string &actor_id,
                                                      bool no_restart) {
  Work work;
  proto::ActorInfo info;
  {
    absl::MutexLock lock(&mu_);
    auto it = actors_.find(actor_id);
    if (it == actors_.end())
      return absl::NotFoundError("KillActor: no actor " + BinaryToHex(actor_id));
    Actor &actor = it->second;
    if (no_restart && actor.final_death.empty()) {
      actor.final_death = Describe(actor) + " was killed by ray::KillActor";
    }
    switch (actor.phase) {
      case Phase::kDead:
        break;
      case Phase::kQueued:
      case Phase::kLeasing:  // a lease granted later finds the actor dead and is killed
        if (no_restart) {
          DieLocked(actor, DiedError(actor.final_death), &work);
        } else {
          actor.kill_when_leased = true;
        }
        break;
      case Phase::kCreating:
      case Phase::kAlive:
        // The worker goes (its death report is ignored: it is forgotten
        // here), and the actor restarts or dies at once, so a caller's next
        // call, told this state, waits for the new worker.
        StopWorkerLocked(actor, actor.phase == Phase::kAlive, &work);
        WorkerGoneLocked(actor, "it was killed by ray::KillActor", &work);
        break;
    }
    info = actor.info;
  }
  for (auto &run : work) run();
  return info;
}

void ActorDirectory::OnWorkerDeath(const std::string &node_id, int64_t startup_token, int32_t pid,
                                   const std::string &reason) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    auto hosted = workers_.find({node_id, startup_token});
    if (hosted == workers_.end()) return;  // not an actor's worker (or one already handled)
    Actor &actor = actors_.at(hosted->second);
    WorkerGoneLocked(actor,
                     "its worker process " + std::to_string(pid != 0 ? pid : actor.pid) +
                         " on node " + BinaryToHex(node_id) + " " + reason,
                     &work);
  }
  for (auto &run : work) run();
}

void ActorDirectory::OnNodeDead(const std::string &node_id, const std::string &reason) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    for (auto &[id, actor] : actors_) {
      // A lease still out to the node fails on its own (the node fails
      // pending leases as it stops; a lost connection fails the call).
      if (actor.node_id != node_id) continue;
      if (actor.phase != Phase::kCreating && actor.phase != Phase::kAlive) continue;
      WorkerGoneLocked(actor, "its node " + BinaryToHex(node_id) + " died (" + reason + ")", &work);
    }
  }
  for (auto &run : work) run();
}

void ActorDirectory::OnNodeAdded() {
  absl::MutexLock lock(&mu_);
  for (const std::string &id : queued_) actors_.at(id).waiting_for_nodes = false;
  wake_.Signal();
}

void ActorDirectory::OnJobFinished(const std::string &job_id) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    for (auto &[id, actor] : actors_) {
      if (actor.info.job_id() != job_id || actor.info.detached() || actor.phase == Phase::kDead) {
        continue;
      }
      actor.final_death =
          Describe(actor) + " died because its owner (job " + BinaryToHex(job_id) + ") finished";
      if (actor.phase == Phase::kQueued || actor.phase == Phase::kLeasing) {
        DieLocked(actor, DiedError(actor.final_death), &work);
      } else {
        StopWorkerLocked(actor, /*graceful=*/false, &work);
      }
    }
  }
  for (auto &run : work) run();
}

void ActorDirectory::OnPlacementGroupRemoved(const std::string &group_id) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    for (auto &[id, actor] : actors_) {
      if (actor.spec.placement_group_id() != group_id || actor.phase == Phase::kDead) continue;
      actor.final_death = Describe(actor) + " died because its placement group " +
                          BinaryToHex(group_id) + " was removed";
      if (actor.phase == Phase::kQueued || actor.phase == Phase::kLeasing) {
        DieLocked(actor, DiedError(actor.final_death), &work);
      } else {
        StopWorkerLocked(actor, /*graceful=*/false, &work);
      }
    }
  }
  for (auto &run : work) run();
}

void ActorDirectory::Stop() {
  std::map<int64_t, Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !scheduler_.joinable()) return;
    stopping_ = true;
    waiters.swap(waiters_);
    wake_.Signal();
  }
  if (scheduler_.joinable()) scheduler_.join();
  // Completions arriving now see stopping_ and change nothing.
  calls_.Stop();
  for (auto &[id, waiter] : waiters) {
    waiter.answer(absl::UnavailableError("the control service is stopping"));
  }
}

// --- State changes -------------------------------------------------------

void ActorDirectory::WorkerGoneLocked(Actor &actor, const std::string &how, Work *work) {
  ForgetWorkerLocked(actor);
  const int max_restarts = actor.spec.max_restarts();
  if (!actor.final_death.empty()) {
    DieLocked(actor, DiedError(actor.final_death), work);
  } else if (max_restarts != -1 && actor.info.num_restarts() >= max_restarts) {
    std::string message = Describe(actor) + " died: " + how;
    if (max_restarts > 0) {
      message +=
          "; it was restarted " + std::to_string(max_restarts) + " time(s), its max_restarts";
    }
    DieLocked(actor, DiedError(message), work);
  } else {
    actor.info.set_num_restarts(actor.info.num_restarts() + 1);
    actor.info.set_state(proto::ActorInfo::RESTARTING);
    actor.info.clear_address();
    actor.info.clear_task_address();
    actor.phase = Phase::kQueued;
    actor.kill_when_leased = false;
    actor.not_before = Clock::now();
    queued_.insert(actor.info.actor_id());
    ChangedLocked(actor, work);
    wake_.Signal();
  }
}

void ActorDirectory::DieLocked(Actor &actor, const proto::ErrorInfo &cause, Work *work) {
  queued_.erase(actor.info.actor_id());
  actor.phase = Phase::kDead;
  actor.node_id.clear();
  actor.node_address.clear();
  actor.info.set_state(proto::ActorInfo::DEAD);
  *actor.info.mutable_death_cause() = cause;
  actor.info.clear_address();
  actor.info.clear_task_address();
  auto named = names_.find({actor.info.ray_namespace(), actor.info.name()});
  if (named != names_.end() && named->second == actor.info.actor_id()) names_.erase(named);
  ChangedLocked(actor, work);
}

void ActorDirectory::ChangedLocked(Actor &actor, Work *work) {
  actor.info.set_version(actor.info.version() + 1);
  proto::Notification notification;
  *notification.mutable_actor() = actor.info;
  // Published under the lock, so subscribers see versions in order.
  publisher_.Publish(notification);
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (it->second.actor_id != actor.info.actor_id() ||
        actor.info.version() <= it->second.after_version) {
      ++it;
      continue;
    }
    work->push_back([answer = std::move(it->second.answer), info = actor.info] { answer(info); });
    it = waiters_.erase(it);
  }
}

void ActorDirectory::ForgetWorkerLocked(Actor &actor) {
  if (actor.lease_id != 0) workers_.erase({actor.node_id, actor.lease_id});
  actor.node_id.clear();
  actor.node_address.clear();
  actor.lease_id = 0;
  actor.worker_address.clear();
  actor.worker_task_address.clear();
}

void ActorDirectory::StopWorkerLocked(const Actor &actor, bool graceful, Work *work) {
  work->push_back([this, graceful, node_id = actor.node_id, node_address = actor.node_address,
                   lease = actor.lease_id, worker = actor.worker_address] {
    if (!graceful) {
      KillLeasedWorker(node_id, node_address, lease);
      return;
    }
    // Best effort: ask the worker to exit, then make sure of it.
    proto::ExitRequest request;
    request.set_reason("killed by ray::KillActor");
    calls_.Call<proto::WorkerService>(
        worker, &proto::WorkerService::Stub::async::Exit, request, options_.kill_timeout,
        [this, node_id, node_address, lease](const grpc::Status &status, const proto::ExitReply &) {
          if (status.error_code() != grpc::StatusCode::CANCELLED) {
            KillLeasedWorker(node_id, node_address, lease);
          }
        });
  });
}

void ActorDirectory::KillLeasedWorker(const std::string &node_id, const std::string &node_address,
                                      int64_t lease_id) {
  proto::KillWorkerRequest request;
  request.set_startup_token(lease_id);
  request.set_force(true);
  calls_.Call<proto::NodeService>(
      node_address, &proto::NodeService::Stub::async::KillWorker, request, options_.kill_timeout,
      [this, node_id, lease_id](const grpc::Status &status, const proto::KillWorkerReply &) {
        // NOT_FOUND: the worker is gone already, and its death is reported.
        // Otherwise the node cannot tell us: count the worker as lost.
        const grpc::StatusCode code = status.error_code();
        if (code == grpc::StatusCode::OK || code == grpc::StatusCode::NOT_FOUND ||
            code == grpc::StatusCode::CANCELLED) {
          return;
        }
        OnWorkerDeath(
            node_id, lease_id, 0,
            "was lost: its node did not answer KillWorker (" + status.error_message() + ")");
      });
}

proto::ErrorInfo ActorDirectory::DiedError(const std::string &message) {
  proto::ErrorInfo error;
  error.set_type(proto::ACTOR_DIED);
  error.set_message(message);
  return error;
}

std::string ActorDirectory::Describe(const Actor &actor) {
  std::string text = "The actor " + BinaryToHex(actor.info.actor_id());
  if (!actor.info.class_name().empty()) text += " (" + actor.info.class_name() + ")";
  return text;
}

}  // namespace sunray
