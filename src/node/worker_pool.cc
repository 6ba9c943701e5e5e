#include "src/node/worker_pool.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <string>

#include "src/common/environment.h"
#include "src/common/process.h"

namespace sunray {
namespace {

// The last few lines of a worker's log: why a worker that could not start
// did not (a missing shared library, a crash in static init, ...).
std::string LogTail(const std::string &path) {
  constexpr std::streamoff kTailBytes = 2048;
  std::ifstream log(path, std::ios::binary | std::ios::ate);
  if (!log) return "";
  const std::streamoff size = log.tellg();
  log.seekg(std::max<std::streamoff>(0, size - kTailBytes));
  std::string tail((std::istreambuf_iterator<char>(log)), {});
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  return tail;
}

}  // namespace

WorkerPool::WorkerPool(Options options) : options_(std::move(options)) {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

WorkerPool::~WorkerPool() { Stop(); }

void WorkerPool::WakeLocked() { waiter_.Wake(); }

int WorkerPool::BusyLocked() const {
  int busy = 0;
  for (const auto &[token, worker] : workers_) {
    if (!worker.uses_cpu) continue;
    if (worker.state == State::kStarting || (worker.state == State::kBusy && !worker.blocked)) {
      ++busy;
    }
  }
  return busy;
}

void WorkerPool::DispatchLocked(std::vector<std::function<void()>> *ready) {
  for (auto request = requests_.begin(); request != requests_.end();) {
    if (request->starting_token != 0) {  // its own process is starting
      ++request;
      continue;
    }
    auto idle = workers_.end();
    for (auto it = workers_.begin(); it != workers_.end(); ++it) {
      if (it->second.state == State::kIdle && !it->second.killed &&
          it->second.info.job_id == request->job_id && it->second.env == request->launch.env) {
        idle = it;
        break;
      }
    }
    if (idle != workers_.end()) {
      idle->second.state = State::kBusy;
      idle->second.uses_cpu = request->uses_cpu;
      idle->second.info.detached = request->detached;
      ready->push_back(
          [callback = std::move(request->callback), info = idle->second.info] { callback(info); });
      request = requests_.erase(request);
      continue;
    }
    if (request->uses_cpu && BusyLocked() >= options_.soft_limit) {
      ++request;  // waits for a slot; a request without CPU may still go
      continue;
    }
    const int64_t token = next_token_++;
    Worker worker;
    worker.info.startup_token = token;
    worker.info.job_id = request->job_id;
    worker.info.detached = request->detached;
    worker.uses_cpu = request->uses_cpu;
    worker.env = request->launch.env;
    worker.info.log_path = options_.logs_dir + "/worker-" + std::to_string(token) + ".out";
    worker.started = std::chrono::steady_clock::now();
    worker.argv = request->launch.argv;
    workers_.emplace(token, std::move(worker));
    to_spawn_.push_back(token);
    request->starting_token = token;
    WakeLocked();  // the pool's thread starts it
    ++request;
  }
}

void WorkerPool::SpawnQueuedLocked(std::vector<std::function<void()>> *ready) {
  while (!to_spawn_.empty()) {
    const int64_t token = to_spawn_.front();
    to_spawn_.pop_front();
    auto it = workers_.find(token);
    if (it == workers_.end()) continue;
    if (stopping_) {  // its request failed with the others
      RefuseEarly(it->second, "the node is stopping", ready);
      workers_.erase(it);
      continue;
    }
    SpawnOptions spawn;
    spawn.log_path = it->second.info.log_path;
    spawn.die_with_parent = true;  // workers never outlive their node daemon
    spawn.extra_env = it->second.env;
    spawn.extra_env.push_back(std::string(env::kStartupToken) + "=" + std::to_string(token));
    const std::vector<std::string> argv = std::move(it->second.argv);
    mu_.Unlock();
    auto pid = SpawnProcess(argv, spawn);
    mu_.Lock();
    it = workers_.find(token);  // nothing erases an unspawned worker but this
    if (!pid.ok()) {
      for (auto request = requests_.begin(); request != requests_.end(); ++request) {
        if (request->starting_token != token) continue;
        ready->push_back([callback = std::move(request->callback), status = pid.status()] {
          callback(absl::Status(status.code(),
                                "cannot start a worker: " + std::string(status.message())));
        });
        requests_.erase(request);
        break;
      }
      if (it != workers_.end()) {
        RefuseEarly(it->second, "its process did not start", ready);
        workers_.erase(it);
      }
      continue;
    }
    if (it == workers_.end()) {  // cannot happen; never leave a process unwatched
      kill(*pid, SIGKILL);
      continue;
    }
    it->second.info.pid = *pid;
    it->second.spawned = true;
    if (it->second.early.has_value()) {
      Worker::EarlyRegistration early = std::move(*it->second.early);
      it->second.early.reset();
      const absl::Status status =
          it->second.state == State::kStarting
              ? RegisterLocked(token, it->second, early.pid, early.address, early.task_address,
                               ready)
              : absl::NotFoundError("no worker is starting with token " + std::to_string(token));
      ready->push_back([done = std::move(early.done), status] { done(status); });
    }
    // Its exit wakes the pool's thread (-1 where pidfds are refused: then
    // that thread looks every kPollFallback).
    it->second.pidfd = OpenPidfd(*pid);
    if (it->second.killed || stopping_) kill(*pid, SIGKILL);
  }
}

void WorkerPool::SetExitCallback(ExitCallback callback) {
  absl::MutexLock lock(&mu_);
  on_exit_ = std::move(callback);
}

void WorkerPool::PopWorker(const JobID &job_id, const Launch &launch, bool detached, bool uses_cpu,
                           Callback callback) {
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      ready.push_back([callback] { callback(absl::UnavailableError("the node is stopping")); });
    } else {
      requests_.push_back(Request{job_id, launch, detached, uses_cpu, std::move(callback), 0});
      DispatchLocked(&ready);
    }
  }
  for (auto &run : ready) run();
}

void WorkerPool::PushWorker(int64_t startup_token) {
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(startup_token);
    if (it == workers_.end() || it->second.state != State::kBusy) return;
    it->second.state = State::kIdle;
    it->second.blocked = false;
    it->second.info.detached = false;  // it hosts no actor any more
    DispatchLocked(&ready);
  }
  for (auto &run : ready) run();
}

void WorkerPool::SetBlocked(int64_t startup_token, bool blocked) {
  std::vector<std::function<void()>> ready;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(startup_token);
    if (it == workers_.end()) return;
    it->second.blocked = blocked;
    DispatchLocked(&ready);
  }
  for (auto &run : ready) run();
}

void WorkerPool::RegisterWorker(int64_t startup_token, pid_t pid, const std::string &address,
                                const std::string &task_address, Registered done) {
  std::vector<std::function<void()>> ready;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    auto it = workers_.find(startup_token);
    if (it == workers_.end() || it->second.state != State::kStarting ||
        (!it->second.spawned && it->second.early.has_value())) {
      status =
          absl::NotFoundError("no worker is starting with token " + std::to_string(startup_token));
    } else if (!it->second.spawned) {
      // Its process registered before the pool's thread recorded its pid
      // (the fork has returned there, the lock not yet retaken): answered
      // from that thread (SpawnQueuedLocked).
      it->second.early = Worker::EarlyRegistration{pid, address, task_address, std::move(done)};
      return;
    } else {
      status = RegisterLocked(startup_token, it->second, pid, address, task_address, &ready);
    }
  }
  for (auto &run : ready) run();
  done(std::move(status));
}

absl::Status WorkerPool::RegisterLocked(int64_t startup_token, Worker &worker, pid_t pid,
                                        const std::string &address, const std::string &task_address,
                                        std::vector<std::function<void()>> *ready) {
  if (worker.info.pid != pid) {
    return absl::PermissionDeniedError("worker token " + std::to_string(startup_token) +
                                       " belongs to pid " + std::to_string(worker.info.pid) +
                                       ", not " + std::to_string(pid));
  }
  worker.info.address = address;
  worker.info.task_address = task_address;
  worker.state = State::kIdle;
  for (auto request = requests_.begin(); request != requests_.end(); ++request) {
    if (request->starting_token == startup_token) {
      worker.state = State::kBusy;
      ready->push_back(
          [callback = std::move(request->callback), info = worker.info] { callback(info); });
      requests_.erase(request);
      break;
    }
  }
  DispatchLocked(ready);
  return absl::OkStatus();
}

void WorkerPool::RefuseEarly(Worker &worker, const std::string &why,
                             std::vector<std::function<void()>> *ready) {
  if (!worker.early.has_value()) return;
  ready->push_back(
      [done = std::move(worker.early->done), why] { done(absl::UnavailableError(why)); });
  worker.early.reset();
}

absl::Status WorkerPool::KillWorker(int64_t startup_token, bool force) {
  absl::MutexLock lock(&mu_);
  auto it = workers_.find(startup_token);
  if (it == workers_.end()) {
    return absl::NotFoundError("no worker with token " + std::to_string(startup_token) +
                               " on this node");
  }
  KillLocked(it->second, force);
  return absl::OkStatus();
}

int WorkerPool::KillJobWorkers(const JobID &job_id) {
  std::vector<Callback> failed;
  int killed = 0;
  {
    absl::MutexLock lock(&mu_);
    for (auto request = requests_.begin(); request != requests_.end();) {
      if (request->job_id != job_id || request->detached) {
        ++request;
        continue;
      }
      failed.push_back(std::move(request->callback));
      request = requests_.erase(request);
    }
    for (auto &[token, worker] : workers_) {
      if (worker.info.job_id != job_id || worker.info.detached || worker.killed) continue;
      KillLocked(worker, /*force=*/false);
      ++killed;
    }
  }
  for (auto &callback : failed) {
    callback(absl::CancelledError("the job " + job_id.Hex() + " finished"));
  }
  return killed;
}

void WorkerPool::KillLocked(Worker &worker, bool force) {
  worker.killed = true;
  if (!worker.spawned) return;  // its process gets SIGKILL once started
  kill(worker.info.pid, force ? SIGKILL : SIGTERM);
  if (!force) {
    worker.sigkill_at =
        std::min(worker.sigkill_at, std::chrono::steady_clock::now() + options_.kill_grace);
  }
  WakeLocked();  // a new deadline
}

void WorkerPool::ReapLocked(pid_t pid, int status, std::vector<std::function<void()>> *ready) {
  for (auto it = workers_.begin(); it != workers_.end(); ++it) {
    if (it->second.info.pid != pid) continue;
    const std::string how = DescribeWaitStatus(status);
    if (it->second.state != State::kStarting) {
      if (on_exit_) {
        ready->push_back(
            [callback = on_exit_, info = it->second.info, how] { callback(info, how); });
      }
    } else {
      for (auto request = requests_.begin(); request != requests_.end(); ++request) {
        if (request->starting_token != it->first) continue;
        // The log is read outside the lock, when the callback runs.
        ready->push_back([callback = std::move(request->callback),
                          message = "the worker process " + std::to_string(pid) + " " + how +
                                    " before registering",
                          log_path = it->second.info.log_path] {
          const std::string said = LogTail(log_path);
          callback(absl::UnavailableError(
              message + (said.empty() ? "; its log " + log_path + " is empty"
                                      : "; the end of its log (" + log_path + "):\n" + said)));
        });
        requests_.erase(request);
        break;
      }
    }
    if (it->second.pidfd >= 0) close(it->second.pidfd);
    workers_.erase(it);
    return;
  }
}

void WorkerPool::WaitForEventLocked(std::chrono::steady_clock::time_point deadline) {
  if (!to_spawn_.empty()) return;
  std::vector<int> pidfds;
  for (const auto &[token, worker] : workers_) {
    if (worker.spawned) pidfds.push_back(worker.pidfd);
  }
  auto timeout = std::chrono::milliseconds::max();
  if (deadline != std::chrono::steady_clock::time_point::max()) {
    timeout =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  }
  // Only this thread closes pidfds, so they stay valid while it waits.
  mu_.Unlock();
  waiter_.Wait(pidfds, timeout, kPollFallback);
  mu_.Lock();
}

void WorkerPool::ReaperLoop() {
  absl::MutexLock lock(&mu_);
  auto next_deadline = std::chrono::steady_clock::time_point::max();
  while (!(stopping_ && workers_.empty())) {
    // Sleeps until a worker exits, something changes (a worker to start, a
    // kill, Stop) or a deadline comes: no polling while pidfds work.
    WaitForEventLocked(next_deadline);
    next_deadline = std::chrono::steady_clock::time_point::max();
    std::vector<std::function<void()>> ready;
    SpawnQueuedLocked(&ready);
    // Exited workers.
    while (true) {
      int status = 0;
      const pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      ReapLocked(pid, status, &ready);
    }
    const auto now = std::chrono::steady_clock::now();
    for (auto &[token, worker] : workers_) {
      if (!worker.spawned) continue;
      // Killed workers that outlived their grace; workers that never
      // registered (reaped, and their request failed, on a later round).
      const auto register_by = worker.state == State::kStarting && !worker.register_expired
                                   ? worker.started + options_.register_timeout
                                   : std::chrono::steady_clock::time_point::max();
      if (now >= worker.sigkill_at || now >= register_by) {
        kill(worker.info.pid, SIGKILL);
        worker.sigkill_at = std::chrono::steady_clock::time_point::max();
        if (now >= register_by) worker.register_expired = true;
        continue;
      }
      next_deadline = std::min({next_deadline, worker.sigkill_at, register_by});
    }
    if (!stopping_) DispatchLocked(&ready);
    if (!ready.empty()) {
      mu_.Unlock();
      for (auto &run : ready) run();
      mu_.Lock();
    }
  }
}

void WorkerPool::Stop() {
  std::vector<pid_t> pids;
  std::deque<Request> failed;
  // Stop may run twice (explicitly, then from the destructor).
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !reaper_.joinable()) return;
    stopping_ = true;
    failed.swap(requests_);
    for (const auto &[token, worker] : workers_) {
      if (worker.spawned) pids.push_back(worker.info.pid);  // others: SIGKILL once started
    }
    WakeLocked();
  }
  for (auto &request : failed) request.callback(absl::UnavailableError("the node is stopping"));
  for (pid_t pid : pids) kill(pid, SIGTERM);
  {
    absl::MutexLock lock(&mu_);
    auto gone = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return workers_.empty(); };
    mu_.AwaitWithDeadline(absl::Condition(&gone),
                          absl::FromChrono(std::chrono::system_clock::now() + options_.kill_grace));
    // Only those still not reaped: a reaped pid may already be reused.
    for (const auto &[token, worker] : workers_) {
      if (worker.spawned) kill(worker.info.pid, SIGKILL);
    }
  }
  if (reaper_.joinable()) reaper_.join();
}

int WorkerPool::NumProcesses() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(workers_.size());
}

}  // namespace sunray
