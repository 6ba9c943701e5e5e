// The actor directory's scheduler thread: places queued actors on nodes,
// leases their workers, pushes their creation tasks, and retries failed
// leases (the rest of ActorDirectory is in actor_directory.cc).
#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/log.h"
#include "src/common/resources.h"
#include "src/control/actor_directory.h"
#include "src/scheduling/label_selector.h"
#include "worker.grpc.pb.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("control.actors"));
  return **logger;
}

using Clock = std::chrono::steady_clock;

// How often an actor looks again for its placement group's bundle while
// the group is not placed yet.
constexpr std::chrono::milliseconds kGroupRetry{100};

std::string AddressOf(const proto::NodeInfo &node) {
  return node.address().ip() + ":" + std::to_string(node.address().port());
}

}  // namespace

// --- Scheduling ----------------------------------------------------------

void ActorDirectory::ScheduleLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      absl::Duration wait;
      while (!stopping_ && !HasDueWorkLocked(&wait)) wake_.WaitWithTimeout(&mu_, wait);
      if (stopping_) return;
    }
    // Listed without our lock: the node table has its own.
    const std::vector<proto::NodeInfo> nodes = list_nodes_();
    Work work;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      PlaceQueuedLocked(nodes, &work);
    }
    for (auto &run : work) run();
  }
}

bool ActorDirectory::HasDueWorkLocked(absl::Duration *wait) const {
  const auto now = Clock::now();
  auto next = Clock::time_point::max();
  for (const std::string &id : queued_) {
    const Actor &actor = actors_.at(id);
    if (actor.waiting_for_nodes) continue;
    if (actor.not_before <= now) return true;
    next = std::min(next, actor.not_before);
  }
  *wait =
      next == Clock::time_point::max() ? absl::InfiniteDuration() : absl::FromChrono(next - now);
  return false;
}

void ActorDirectory::PlaceQueuedLocked(const std::vector<proto::NodeInfo> &nodes, Work *work) {
  // Each actor goes to the feasible node hosting the fewest actors (actors
  // hold no CPU by default, so use says little), among those its strategy
  // allows: its label selector's, its affinity's node.
  std::map<std::string, int> hosted;
  for (const auto &[id, actor] : actors_) {
    if (!actor.node_id.empty()) ++hosted[actor.node_id];
  }
  const auto now = Clock::now();
  for (auto it = queued_.begin(); it != queued_.end();) {
    Actor &actor = actors_.at(*it);
    if (actor.waiting_for_nodes || actor.not_before > now) {
      ++it;
      continue;
    }
    const proto::SchedulingStrategy &strategy = actor.spec.strategy();
    const ResourceSet resources = ResourceSetOf(actor.spec.resources());
    // In a placement group: only the nodes holding its bundle, which check
    // the bundle's resources themselves (their reports may lag).
    std::optional<std::vector<std::string>> bundle_nodes;
    std::string unschedulable;
    if (!actor.spec.placement_group_id().empty()) {
      absl::StatusOr<std::vector<std::string>> located =
          options_.locate_bundle
              ? options_.locate_bundle(actor.spec.placement_group_id(), actor.spec.bundle_index())
              : absl::UnavailableError("no placement groups here");
      if (absl::IsUnavailable(located.status())) {
        actor.not_before = now + kGroupRetry;  // not placed yet
        ++it;
        continue;
      }
      if (!located.ok()) {
        unschedulable = std::string(located.status().message());
      } else {
        bundle_nodes = *std::move(located);
      }
    }
    auto usable = [&](const proto::NodeInfo &node) {
      if (node.state() != proto::NodeInfo::ALIVE) return false;
      if (bundle_nodes) {
        return std::find(bundle_nodes->begin(), bundle_nodes->end(), node.node_id()) !=
               bundle_nodes->end();
      }
      return Fits(resources, ResourceSetOf(node.total())) &&
             LabelsMatch(strategy.label_selector(),
                         Labels(node.labels().begin(), node.labels().end()));
    };
    const proto::NodeInfo *best = nullptr;
    if (!unschedulable.empty()) {
      // Dies below.
    } else if (strategy.kind() == proto::SchedulingStrategy::NODE_AFFINITY) {
      auto target = std::find_if(nodes.begin(), nodes.end(), [&](const proto::NodeInfo &node) {
        return node.node_id() == strategy.node_id();
      });
      if (target != nodes.end() && usable(*target)) {
        best = &*target;
      } else if (!strategy.soft() &&
                 (target == nodes.end() || target->state() != proto::NodeInfo::ALIVE)) {
        unschedulable = "it asks to run on node " + BinaryToHex(strategy.node_id()) +
                        " (hard affinity), which " +
                        (target == nodes.end() ? "is not in this cluster" : "is dead");
      }
    }
    if (best == nullptr && unschedulable.empty() &&
        (strategy.kind() != proto::SchedulingStrategy::NODE_AFFINITY || strategy.soft())) {
      for (const proto::NodeInfo &node : nodes) {
        if (!usable(node)) continue;
        if (best == nullptr || hosted[node.node_id()] < hosted[best->node_id()]) best = &node;
      }
    }
    if (!unschedulable.empty()) {
      it = queued_.erase(it);
      DieLocked(actor, DiedError(Describe(actor) + " cannot be placed: " + unschedulable + "."),
                work);
      continue;
    }
    if (best == nullptr) {
      actor.waiting_for_nodes = true;
      if (!actor.infeasible_logged) {
        actor.infeasible_logged = true;
        std::string labels = LabelTermsText(strategy.label_selector());
        Logger().warn("{} needs {}{}; no alive node has that. It waits for a node that does.",
                      Describe(actor), ResourcesText(resources),
                      labels.empty() ? "" : " on a node labeled " + labels);
      }
      ++it;
      continue;
    }
    ++hosted[best->node_id()];
    it = queued_.erase(it);
    LeaseLocked(actor, *best, work);
  }
}

void ActorDirectory::LeaseLocked(Actor &actor, const proto::NodeInfo &node, Work *work) {
  actor.phase = Phase::kLeasing;
  const uint64_t attempt = ++actor.attempt;
  actor.node_id = node.node_id();
  actor.node_address = AddressOf(node);
  proto::RequestWorkerLeaseRequest request;
  request.set_job_id(actor.info.job_id());
  *request.mutable_resources() = actor.spec.resources();
  *request.mutable_argv() = actor.spec.argv();
  *request.mutable_env() = actor.spec.env();
  request.set_detached(actor.spec.detached());
  // Placed already: the node grants it or waits, never sends it on.
  request.mutable_strategy()->set_kind(proto::SchedulingStrategy::NODE_AFFINITY);
  request.mutable_strategy()->set_node_id(node.node_id());
  work->push_back([this, request, id = actor.info.actor_id(), attempt, node_id = actor.node_id,
                   address = actor.node_address] {
    // Answered when granted, however long that takes.
    calls_.Call<proto::NodeService>(
        address, &proto::NodeService::Stub::async::RequestWorkerLease, request,
        rpc::AsyncCaller::kNoDeadline,
        [this, id, attempt, node_id, address](const grpc::Status &status,
                                              const proto::RequestWorkerLeaseReply &reply) {
          OnLeaseReply(id, attempt, node_id, address, status, reply);
        });
  });
}

void ActorDirectory::OnLeaseReply(const std::string &actor_id, uint64_t attempt,
                                  const std::string &node_id, const std::string &node_address,
                                  const grpc::Status &given_status,
                                  const proto::RequestWorkerLeaseReply &reply) {
  // A node asked for a lease on itself answers with one (affinity); a
  // spillback from it is a failure to lease there.
  const grpc::Status status =
      given_status.ok() && !reply.spillback_address().empty()
          ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                         "the node sent the actor's lease on to " + reply.spillback_address())
          : given_status;
  Work work;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    auto it = actors_.find(actor_id);
    const bool current =
        it != actors_.end() && it->second.attempt == attempt && it->second.phase == Phase::kLeasing;
    if (!current) {
      // The actor died (or was killed) meanwhile: nobody uses this worker.
      if (status.ok()) {
        work.push_back([this, node_id, node_address, lease = reply.lease_id()] {
          KillLeasedWorker(node_id, node_address, lease);
        });
      }
    } else if (!status.ok()) {
      LeaseFailedLocked(it->second, status, &work);
    } else {
      Actor &actor = it->second;
      actor.lease_failures = 0;
      actor.lease_id = reply.lease_id();
      actor.pid = reply.worker_pid();
      actor.worker_address = reply.worker_address();
      actor.worker_task_address = reply.worker_task_address();
      actor.phase = Phase::kCreating;
      workers_[{actor.node_id, actor.lease_id}] = actor_id;
      if (actor.kill_when_leased) {
        actor.kill_when_leased = false;
        StopWorkerLocked(actor, /*graceful=*/false, &work);
      } else {
        PushCreationLocked(actor, &work);
      }
    }
  }
  for (auto &run : work) run();
}

void ActorDirectory::LeaseFailedLocked(Actor &actor, const grpc::Status &status, Work *work) {
  const std::string failure = "could not get a worker on node " + BinaryToHex(actor.node_id) +
                              ": " + status.error_message();
  actor.node_id.clear();
  actor.node_address.clear();
  // The actor never ran on this worker: no restart is used up. A request the
  // node refuses, or repeated failures (a worker command that cannot
  // start), end it.
  if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
      ++actor.lease_failures >= options_.max_lease_failures) {
    DieLocked(actor,
              DiedError(Describe(actor) + " could not be created: " + failure +
                        (actor.lease_failures > 1
                             ? " (" + std::to_string(actor.lease_failures) + " attempts)"
                             : "")),
              work);
    return;
  }
  Logger().warn("{} {}; trying again", Describe(actor), failure);
  actor.phase = Phase::kQueued;
  actor.not_before = Clock::now() + options_.lease_retry_delay;
  queued_.insert(actor.info.actor_id());
  wake_.Signal();
}

void ActorDirectory::PushCreationLocked(const Actor &actor, Work *work) {
  proto::PushTaskRequest push;
  *push.mutable_task() = actor.spec.creation_task();
  push.mutable_task()->set_restart_count(actor.info.num_restarts());
  work->push_back([this, push, id = actor.info.actor_id(), attempt = actor.attempt,
                   address = actor.worker_address] {
    // The constructor may run for long: no deadline.
    calls_.Call<proto::WorkerService>(
        address, &proto::WorkerService::Stub::async::PushTask, push, rpc::AsyncCaller::kNoDeadline,
        [this, id, attempt](const grpc::Status &status, const proto::PushTaskReply &reply) {
          OnCreationReply(id, attempt, status, reply);
        });
  });
}

void ActorDirectory::OnCreationReply(const std::string &actor_id, uint64_t attempt,
                                     const grpc::Status &status,
                                     const proto::PushTaskReply &reply) {
  Work work;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    auto it = actors_.find(actor_id);
    if (it == actors_.end() || it->second.attempt != attempt ||
        it->second.phase != Phase::kCreating) {
      return;  // the worker's death was handled already
    }
    Actor &actor = it->second;
    if (!status.ok()) {
      // The worker died or became unreachable while creating the actor.
      // Make sure it is gone; its death report will then find nothing.
      StopWorkerLocked(actor, /*graceful=*/false, &work);
      WorkerGoneLocked(actor,
                       "its worker process " + std::to_string(actor.pid) + " on node " +
                           BinaryToHex(actor.node_id) +
                           " failed while creating it: " + status.error_message(),
                       &work);
    } else if (reply.result().is_error()) {
      StopWorkerLocked(actor, /*graceful=*/false, &work);
      ForgetWorkerLocked(actor);
      DieLocked(actor, reply.result().error(), &work);
    } else {
      actor.phase = Phase::kAlive;
      actor.info.set_state(proto::ActorInfo::ALIVE);
      actor.info.set_address(actor.worker_address);
      actor.info.set_task_address(actor.worker_task_address);
      actor.info.set_pid(actor.pid);
      actor.info.set_node_id(actor.node_id);
      ChangedLocked(actor, &work);
    }
  }
  for (auto &run : work) run();
}

}  // namespace sunray
