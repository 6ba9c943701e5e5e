#include "src/worker/normal_task_submitter.h"

#include "src/common/id.h"
#include "src/common/log.h"
#include "src/scheduling/bundles.h"

#include <algorithm>
#include <utility>

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.normal_tasks"));
  return **logger;
}

}  // namespace

struct NormalTaskSubmitter::Held {
  std::shared_ptr<PendingTask> task;
  SchedulingClass *cls = nullptr;
  bool resolved = false;   // its arguments are in: queued or pushed
  bool cancelled = false;  // ray::Cancel came
  std::string pushed_to;   // the worker's address while pushed
};

struct NormalTaskSubmitter::LeasedWorker {
  NodeClients::Node node;  // that granted the lease
  std::string node_name;   // its id in hex, for messages
  int64_t lease_id = 0;
  std::string address;       // its WorkerService
  std::string task_address;  // its task streams
  int pid = 0;
  std::shared_ptr<TaskSender> stream;  // until it ends
  // Tasks pushed and not answered, by return id.
  absl::flat_hash_map<std::string, std::shared_ptr<Held>> tasks;
  // It sent a task back (its running task waits in Get): no more tasks queue
  // behind it until one of its tasks finishes.
  bool bounced = false;
  bool dead = false;      // its stream ended: leaving the class
  bool returned = false;  // the lease went back to the node
  absl::Time idle_since;
};

struct NormalTaskSubmitter::SchedulingClass {
  std::string key;
  proto::ResourceMap resources;
  std::vector<std::string> env;  // NAME=value, for the workers it leases
  proto::SchedulingStrategy strategy;
  // The node its leases are asked of first (empty: the local one).
  std::string first_address;
  std::string first_name;
  std::deque<std::shared_ptr<Held>> queue;
  std::vector<std::shared_ptr<LeasedWorker>> workers;
  int pending_leases = 0;
  // Leases in a row whose task stream could not be opened.
  int failed_opens = 0;
};

namespace {

std::string ClassKey(const ResourceSet &resources, const std::vector<std::string> &env,
                     const proto::SchedulingStrategy &strategy) {
  std::string key;
  for (const auto &[name, amount] : resources) key += name + "=" + std::to_string(amount) + ";";
  for (const auto &entry : env) key += "\n" + entry;
  // The default strategy adds nothing (no serialization per task).
  if (strategy.ByteSizeLong() > 0) key += "\n" + strategy.SerializeAsString();
  return key;
}

void RunAll(std::vector<std::function<void()>> &work) {
  for (auto &item : work) item();
}

}  // namespace

NormalTaskSubmitter::NormalTaskSubmitter(Options options, NodeClients *nodes,
                                         TaskStreamOpener *streams, TaskOutcomes *outcomes)
    : options_(std::move(options)), nodes_(nodes), streams_(streams), outcomes_(outcomes) {}

NormalTaskSubmitter::~NormalTaskSubmitter() = default;

void NormalTaskSubmitter::Add(std::shared_ptr<PendingTask> task, const ResourceSet &resources,
                              const std::vector<std::string> &env,
                              const proto::SchedulingStrategy &strategy, const FirstNode &first) {
  std::string key = ClassKey(resources, env, strategy);
  if (!first.address.empty()) key += "\n@" + first.address;
  // (A placement group's bundles are on no node at start.)
  const ResourceSet plain = WithoutBundleResources(resources);
  const bool infeasible =
      std::none_of(options_.node_totals.begin(), options_.node_totals.end(),
                   [&](const ResourceSet &totals) { return Fits(plain, totals); });
  auto held = std::make_shared<Held>();
  held->task = std::move(task);
  Work settle;
  {
    absl::MutexLock lock(&mu_);
    auto &cls = classes_[key];
    if (cls == nullptr) {
      cls = std::make_unique<SchedulingClass>();
      cls->key = key;
      cls->env = env;
      cls->strategy = strategy;
      cls->first_address = first.address;
      cls->first_name = first.name;
      FillResourceMap(resources, &cls->resources);
    }
    held->cls = cls.get();
    held_[held->task->spec.return_id()] = held;
    if (shut_down_) {
      FailLocked(*held, ErrorInfo{ErrorType::kWorkerDied, "Sunray is shutting down.", "", "", ""},
                 &settle);
    } else if (infeasible && warned_infeasible_.insert(key).second) {
      Logger().warn(
          "the task {} asks for {}, more than any node in the cluster has; it waits until such a "
          "node joins (see `sunray status`)",
          held->task->spec.function_name(), ResourcesText(resources));
    }
  }
  RunAll(settle);
}

void NormalTaskSubmitter::ArgumentsResolved(const std::shared_ptr<PendingTask> &task,
                                            std::optional<ErrorInfo> error) {
  Work settle;
  Work work;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(task->spec.return_id());
    if (it == held_.end()) return;  // cancelled (and failed) while it resolved
    std::shared_ptr<Held> held = it->second;
    if (error) {
      FailLocked(*held, std::move(*error), &settle);
    } else {
      held->resolved = true;
      held->cls->queue.push_back(held);
      DispatchLocked(held->cls, &work);
    }
  }
  RunAll(settle);
  RunAll(work);
}

void NormalTaskSubmitter::DispatchLocked(SchedulingClass *cls, Work *work) {
  if (shut_down_) return;
  // First every idle worker gets a task; then, while the backlog is deeper
  // than the workers and the leases asked for can take one at a time,
  // workers get a few more queued behind (they run them in order, with no
  // round trip in between; a worker that blocks in Get sends back what it
  // had not started). So a task never waits behind another while a lease
  // that could run it may still come (an idle CPU, a worker starting).
  std::vector<std::pair<std::shared_ptr<LeasedWorker>, std::vector<std::shared_ptr<Held>>>> pushes;
  auto push = [&](const std::shared_ptr<LeasedWorker> &worker) {
    std::shared_ptr<Held> held = std::move(cls->queue.front());
    cls->queue.pop_front();
    held->pushed_to = worker->address;
    worker->tasks[held->task->spec.return_id()] = held;
    auto to = std::find_if(pushes.begin(), pushes.end(),
                           [&](const auto &entry) { return entry.first == worker; });
    if (to == pushes.end()) to = pushes.emplace(pushes.end(), worker, 0);
    to->second.push_back(std::move(held));
  };
  auto in_flight = [](const LeasedWorker &worker) { return worker.tasks.size(); };
  for (auto &worker : cls->workers) {
    if (cls->queue.empty()) break;
    if (in_flight(*worker) == 0 && !worker->dead) push(worker);
  }
  // SPREAD means one task per worker: none waits behind another.
  const size_t max_depth =
      cls->strategy.kind() == proto::SchedulingStrategy::SPREAD ? 1 : kMaxTasksInFlightPerWorker;
  for (size_t depth = 1; depth < max_depth; ++depth) {
    for (auto &worker : cls->workers) {
      if (cls->queue.size() <= cls->workers.size() + cls->pending_leases) break;
      if (in_flight(*worker) == depth && !worker->dead && !worker->bounced) push(worker);
    }
  }
  for (auto &[worker, tasks] : pushes) {
    work->push_back([this, worker = worker, tasks = std::move(tasks)] {
      // A task's spec does not change once it is resolved: copied without
      // the lock.
      std::vector<proto::TaskSpec> specs;
      specs.reserve(tasks.size());
      for (const auto &held : tasks) specs.push_back(held->task->spec);
      Push(worker, std::move(specs));
    });
  }
  // More workers while tasks wait (each pending lease covers one task).
  while (static_cast<int>(cls->queue.size()) > cls->pending_leases &&
         cls->pending_leases < kMaxPendingLeases) {
    ++cls->pending_leases;
    work->push_back([this, cls] {
      // The class's first node never changes once it is made.
      RequestLease(cls, cls->first_address.empty()
                            ? LeaseTarget{nodes_->Local(), options_.node_name, 0}
                            : LeaseTarget{nodes_->At(cls->first_address), cls->first_name, 0});
    });
  }
}

void NormalTaskSubmitter::RequestLease(SchedulingClass *cls, LeaseTarget target) {
  proto::RequestWorkerLeaseRequest request = options_.lease_template;
  {
    // The class's resources, env and strategy never change once it is made.
    *request.mutable_resources() = cls->resources;
    for (const auto &entry : cls->env) request.add_env(entry);
    *request.mutable_strategy() = cls->strategy;
  }
  request.set_spillback_count(target.spillback_count);
  NodeClient *client = target.node.client;
  client->RequestWorkerLease(request, [this, cls, target = std::move(target)](
                                          absl::StatusOr<proto::RequestWorkerLeaseReply> granted) {
    OnLeaseAnswer(cls, target, std::move(granted));
  });
}

void NormalTaskSubmitter::OnLeaseAnswer(SchedulingClass *cls, const LeaseTarget &target,
                                        absl::StatusOr<proto::RequestWorkerLeaseReply> granted) {
  absl::Status status = granted.status();
  // Where to ask next, if anywhere: the node a spillback names; or this
  // node again when the node a spillback named cannot be reached (it died
  // since the view was made), marked as sent on too often, so it waits here
  // (or fails once that node is known dead) instead of following the stale
  // view again.
  std::optional<LeaseTarget> next;
  if (status.ok() && !granted->spillback_address().empty()) {
    if (target.spillback_count < kMaxSpillbacksFollowed) {
      next = LeaseTarget{nodes_->At(granted->spillback_address()),
                         BinaryToHex(granted->spillback_node_id()), target.spillback_count + 1};
    } else {
      status = absl::UnavailableError("the lease request was sent on " +
                                      std::to_string(target.spillback_count) +
                                      " times without a node taking it");
    }
  } else if ((absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) &&
             target.spillback_count > 0 && target.spillback_count < kMaxSpillbacksFollowed) {
    Logger().warn(
        "the node {} that a lease request was sent on to cannot be reached ({}); asking this "
        "node again",
        target.node_name, status.message());
    next = LeaseTarget{nodes_->Local(), options_.node_name, kMaxSpillbacksFollowed};
  }
  if (next.has_value()) {
    bool shut_down;
    {
      absl::MutexLock lock(&mu_);
      shut_down = shut_down_;
    }
    if (!shut_down) {
      RequestLease(cls, *std::move(next));  // the request stays pending
      return;
    }
    if (status.ok()) status = absl::CancelledError("Sunray is shutting down");
  }
  std::shared_ptr<LeasedWorker> worker;
  if (status.ok()) {
    worker = std::make_shared<LeasedWorker>();
    worker->node = target.node;
    worker->node_name = target.node_name;
    worker->lease_id = granted->lease_id();
    worker->address = granted->worker_address();
    worker->task_address = granted->worker_task_address();
    worker->pid = granted->worker_pid();
    worker->idle_since = absl::Now();
    auto stream = streams_->Open(
        worker->task_address,
        [this, cls, worker](proto::TaskResults &results) { OnResults(cls, worker, results); },
        [this, cls, worker](const absl::Status &end) { OnStreamEnd(cls, worker, end); });
    absl::MutexLock lock(&mu_);
    worker->stream = std::move(stream);
  }
  Work settle;
  Work work;
  bool give_back = false;
  absl::Time granted_idle = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    --cls->pending_leases;
    if (status.ok()) {
      if (shut_down_ || worker->stream == nullptr) {
        if (!shut_down_ && !worker->dead) {
          Logger().warn("could not open a task stream to the worker at {}; its lease goes back",
                        worker->task_address);
          // Asking for worker after worker that cannot be reached would
          // never end: the waiting tasks fail after a few.
          if (++cls->failed_opens >= kMaxFailedStreamOpens) {
            cls->failed_opens = 0;
            FailQueueLocked(cls, "No task stream could be opened to a worker leased for task ",
                            " (" + std::to_string(kMaxFailedStreamOpens) +
                                " workers in a row; the last at " + worker->task_address + ").",
                            &settle);
          }
        }
        // A stream that ended already gave the lease back (dead).
        give_back = !worker->dead;
        worker->returned = true;
      } else if (!worker->dead) {
        cls->failed_opens = 0;
        cls->workers.push_back(worker);
        granted_idle = worker->idle_since;  // if no task is left for it
      }
    } else if (status.code() == absl::StatusCode::kFailedPrecondition) {
      // The strategy can never be met (hard affinity to a dead node): no
      // task of the class can run.
      std::deque<std::shared_ptr<Held>> failed;
      failed.swap(cls->queue);
      for (auto &held : failed) {
        FailLocked(*held,
                   ErrorInfo{ErrorType::kTaskUnschedulable, std::string(status.message()) + ".", "",
                             "", ""},
                   &settle);
      }
    } else if (cls->workers.empty()) {
      // The node refuses only for good (it stops, the job finished): no
      // worker will come for these tasks. Asking again, as each refusal
      // freed a pending lease, kept two or more tasks asking forever.
      FailQueueLocked(cls, "No worker could be leased for task ",
                      ": " + std::string(status.message()), &settle);
    }
    DispatchLocked(cls, &work);
  }
  if (give_back) ReturnLease(*worker, false);
  if (granted_idle != absl::InfiniteFuture() && options_.lease_went_idle) {
    options_.lease_went_idle(granted_idle);
  }
  RunAll(work);
  RunAll(settle);
}

void NormalTaskSubmitter::Push(const std::shared_ptr<LeasedWorker> &worker,
                               std::vector<proto::TaskSpec> specs) {
  std::shared_ptr<TaskSender> stream;
  {
    absl::MutexLock lock(&mu_);
    stream = worker->stream;
  }
  // Not sent: the stream has broken, and its end settles these tasks.
  if (stream != nullptr) (void)stream->Send(std::move(specs));
}

void NormalTaskSubmitter::OnResults(SchedulingClass *cls,
                                    const std::shared_ptr<LeasedWorker> &worker,
                                    proto::TaskResults &results) {
  Work settle;
  Work work;
  absl::Time idle_since = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    std::vector<std::shared_ptr<Held>> again;
    for (const auto &result : results.results()) {
      auto it = worker->tasks.find(result.return_id());
      if (it == worker->tasks.end()) continue;  // not one of its tasks: ignored
      std::shared_ptr<Held> held = std::move(it->second);
      worker->tasks.erase(it);
      // The worker's last word says whether it is blocked.
      worker->bounced = result.reply().bounced();
      if (SettleLocked(*held, *worker, absl::OkStatus(), &result.reply(), &settle)) {
        again.push_back(std::move(held));
      }
    }
    worker->idle_since = absl::Now();
    if (worker->tasks.empty()) idle_since = worker->idle_since;
    for (auto it = again.rbegin(); it != again.rend(); ++it) cls->queue.push_front(*it);
    DispatchLocked(cls, &work);
  }
  if (idle_since != absl::InfiniteFuture() && options_.lease_went_idle) {
    options_.lease_went_idle(idle_since);
  }
  // Answers first: a synchronous caller may be the thread reading them.
  RunAll(settle);
  RunAll(work);
}

void NormalTaskSubmitter::OnStreamEnd(SchedulingClass *cls,
                                      const std::shared_ptr<LeasedWorker> &worker,
                                      const absl::Status &status) {
  const absl::Status why =
      status.ok() ? absl::UnavailableError("the worker ended its task stream with tasks unanswered")
                  : status;
  Work settle;
  Work work;
  bool dead = false;
  {
    absl::MutexLock lock(&mu_);
    worker->stream = nullptr;
    if (!worker->returned && !worker->dead) {
      // Its worker (or the connection to it) is gone: the lease goes too.
      dead = true;
      worker->dead = true;
      std::erase(cls->workers, worker);
    }
    std::vector<std::shared_ptr<Held>> again;
    for (auto &[return_id, held] : worker->tasks) {
      if (SettleLocked(*held, *worker, why, nullptr, &settle)) again.push_back(std::move(held));
    }
    worker->tasks.clear();
    for (auto it = again.rbegin(); it != again.rend(); ++it) cls->queue.push_front(*it);
    DispatchLocked(cls, &work);
  }
  if (dead) ReturnLease(*worker, true);
  RunAll(settle);
  RunAll(work);
}

bool NormalTaskSubmitter::SettleLocked(Held &held, const LeasedWorker &worker,
                                       const absl::Status &status,
                                       const proto::PushTaskReply *reply, Work *settle) {
  PendingTask &task = *held.task;
  const bool bounced = reply != nullptr && reply->bounced();
  bool retry = false;
  if (bounced && !held.cancelled) retry = true;  // not run: not an attempt
  const bool threw = reply != nullptr && reply->result().is_error() &&
                     reply->result().error().type() == proto::TASK_EXECUTION_EXCEPTION;
  if (!bounced && RetriedFor(reply == nullptr, threw, task.retry_exceptions) && !held.cancelled &&
      !shut_down_ && task.retries.Spend()) {
    retry = true;
    if (reply == nullptr) {
      Logger().warn("the worker running {} (pid {}) died: {}; the task runs again",
                    task.spec.function_name(), worker.pid, status.message());
    }
  }
  if (retry) {
    held.pushed_to.clear();
  } else if (bounced) {  // and cancelled
    FailLocked(held,
               ErrorInfo{ErrorType::kTaskCancelled,
                         "The task was cancelled with ray::Cancel before it ran.", "", "", ""},
               settle);
  } else if (reply != nullptr) {
    SucceedLocked(held, reply->result(), settle);
  } else if (held.cancelled) {
    FailLocked(held,
               ErrorInfo{ErrorType::kTaskCancelled,
                         "The task was cancelled with ray::Cancel while it ran.", "", "", ""},
               settle);
  } else {
    FailLocked(held,
               ErrorInfo{ErrorType::kWorkerDied,
                         "The worker running " + task.spec.function_name() + " (pid " +
                             std::to_string(worker.pid) + ", node " + worker.node_name +
                             ") died before the task finished: " + std::string(status.message()),
                         "", "", ""},
               settle);
  }
  return retry;
}

void NormalTaskSubmitter::FailQueueLocked(SchedulingClass *cls, const std::string &before_name,
                                          const std::string &after_name, Work *settle) {
  std::deque<std::shared_ptr<Held>> failed;
  failed.swap(cls->queue);
  for (auto &held : failed) {
    FailLocked(*held,
               ErrorInfo{ErrorType::kWorkerDied,
                         before_name + held->task->spec.function_name() + after_name, "", "", ""},
               settle);
  }
}

void NormalTaskSubmitter::FailLocked(Held &held, ErrorInfo error, Work *settle) {
  std::shared_ptr<PendingTask> task = held.task;
  held_.erase(task->spec.return_id());
  settle->push_back([this, task = std::move(task), error = std::move(error)]() mutable {
    outcomes_->Failed(*task, std::move(error));
  });
}

void NormalTaskSubmitter::SucceedLocked(Held &held, const proto::ObjectValue &result,
                                        Work *settle) {
  std::shared_ptr<PendingTask> task = held.task;
  held_.erase(task->spec.return_id());
  // `result` lives in the answer being handled, until `settle` has run.
  settle->push_back(
      [this, task = std::move(task), &result] { outcomes_->Succeeded(*task, result); });
}

void NormalTaskSubmitter::ReturnLease(const LeasedWorker &worker, bool dead) {
  worker.node.returner->Return(worker.lease_id, dead, worker.pid);
}

absl::Time NormalTaskSubmitter::ReturnIdleLeases(bool all) {
  std::vector<std::shared_ptr<LeasedWorker>> idle;
  std::vector<std::shared_ptr<TaskSender>> streams;
  absl::Time next = absl::InfiniteFuture();
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = absl::Now();
    for (auto &[key, cls] : classes_) {
      // Busy workers (and those of a class with tasks waiting, which get
      // them) are looked at again a linger from now: going idle before
      // then (lease_went_idle) wakes nobody, which a synchronous caller
      // would otherwise pay for on every task.
      if (!all && !cls->queue.empty()) {
        if (!cls->workers.empty()) next = std::min(next, now + kLeaseLinger);
        continue;
      }
      std::erase_if(cls->workers, [&](const std::shared_ptr<LeasedWorker> &worker) {
        if (!all && !worker->tasks.empty()) {
          next = std::min(next, now + kLeaseLinger);
          return false;
        }
        if (!all && now - worker->idle_since < kLeaseLinger) {
          next = std::min(next, worker->idle_since + kLeaseLinger);
          return false;
        }
        worker->returned = true;
        idle.push_back(worker);
        if (worker->stream != nullptr) streams.push_back(worker->stream);
        return true;
      });
    }
  }
  for (const auto &stream : streams) stream->Close();
  for (const auto &worker : idle) ReturnLease(*worker, false);
  return next;
}

NormalTaskSubmitter::CancelOutcome NormalTaskSubmitter::Cancel(const std::string &return_id) {
  Work settle;
  CancelOutcome outcome;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(return_id);
    if (it == held_.end() || it->second->cancelled) return outcome;
    std::shared_ptr<Held> held = it->second;
    held->cancelled = true;
    if (!held->pushed_to.empty()) {
      outcome.kind = CancelOutcome::kPushed;
      outcome.worker_address = held->pushed_to;
      return outcome;
    }
    if (held->resolved) std::erase(held->cls->queue, held);
    FailLocked(*held,
               ErrorInfo{ErrorType::kTaskCancelled,
                         "The task was cancelled with ray::Cancel before it ran.", "", "", ""},
               &settle);
    outcome.kind = CancelOutcome::kFailed;
  }
  RunAll(settle);
  return outcome;
}

void NormalTaskSubmitter::Shutdown(bool return_leases) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (return_leases) ReturnIdleLeases(/*all=*/true);
}

NormalTaskSubmitter::Counts NormalTaskSubmitter::counts() const {
  absl::MutexLock lock(&mu_);
  Counts counts;
  counts.held = held_.size();
  for (const auto &[key, cls] : classes_) {
    counts.queued += cls->queue.size();
    counts.leases += cls->workers.size();
    counts.pending_leases += static_cast<size_t>(cls->pending_leases);
  }
  return counts;
}

}  // namespace sunray
