// A thread pool for local-mode tasks that never deadlocks on nested Gets.
//
// At most `target_concurrency` tasks run at once. A task that blocks (in Get
// or Wait, announced with BlockedScope) stops counting, and if work is queued
// and no thread is idle, the pool starts one more thread — as a node daemon
// lends a blocked worker's CPU to another worker. Threads are kept until
// Stop.
//
// Thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace sunray {

class TaskPool {
 public:
  explicit TaskPool(int target_concurrency);
  ~TaskPool();
  TaskPool(const TaskPool &) = delete;
  TaskPool &operator=(const TaskPool &) = delete;

  // Queues `task`. After Stop, tasks are dropped.
  void Submit(std::function<void()> task);

  // Drops queued tasks, waits for running ones, joins every thread.
  // Idempotent.
  void Stop();

  // Marks the current thread as blocked while alive, if it is one of this
  // pool's threads (otherwise does nothing).
  class BlockedScope {
   public:
    BlockedScope();
    ~BlockedScope();
    BlockedScope(const BlockedScope &) = delete;
    BlockedScope &operator=(const BlockedScope &) = delete;

   private:
    TaskPool *pool_;
  };

  int NumThreads() const;

 private:
  static constexpr int kMaxThreads = 1024;

  void WorkerLoop();
  void StartThreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeStartThreadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CanTakeWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int target_concurrency_;
  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;  // running tasks that are not blocked
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sunray
