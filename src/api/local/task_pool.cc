#include "src/api/local/task_pool.h"

#include <algorithm>

namespace sunray {
namespace {
thread_local TaskPool *current_pool = nullptr;
}  // namespace

TaskPool::TaskPool(int target_concurrency) : target_concurrency_(std::max(1, target_concurrency)) {}

TaskPool::~TaskPool() { Stop(); }

void TaskPool::Submit(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  queue_.push_back(std::move(task));
  MaybeStartThreadLocked();
  work_cv_.Signal();
}

bool TaskPool::CanTakeWorkLocked() const {
  return stopping_ || (!queue_.empty() && running_ < target_concurrency_);
}

void TaskPool::MaybeStartThreadLocked() {
  const int threads = static_cast<int>(threads_.size());
  if (idle_ == 0 && running_ < target_concurrency_ && !queue_.empty() && threads < kMaxThreads) {
    StartThreadLocked();
  }
}

void TaskPool::StartThreadLocked() {
  ++idle_;  // counts as idle from now, so a burst of Submits starts one thread
  threads_.emplace_back([this] { WorkerLoop(); });
}

void TaskPool::WorkerLoop() {
  current_pool = this;
  absl::MutexLock lock(&mu_);
  while (true) {
    while (!CanTakeWorkLocked()) work_cv_.Wait(&mu_);
    --idle_;
    if (stopping_) return;
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    ++running_;
    MaybeStartThreadLocked();  // more queued work and no idle thread: add one
    mu_.Unlock();
    task();
    task = nullptr;  // destroy captures outside the lock
    mu_.Lock();
    --running_;
    ++idle_;
    if (CanTakeWorkLocked()) work_cv_.Signal();
  }
}

TaskPool::BlockedScope::BlockedScope() : pool_(current_pool) {
  if (pool_ == nullptr) return;
  absl::MutexLock lock(&pool_->mu_);
  --pool_->running_;
  if (!pool_->queue_.empty()) {
    if (pool_->idle_ > 0) {
      pool_->work_cv_.Signal();
    } else {
      pool_->MaybeStartThreadLocked();
    }
  }
}

TaskPool::BlockedScope::~BlockedScope() {
  if (pool_ == nullptr) return;
  absl::MutexLock lock(&pool_->mu_);
  ++pool_->running_;
}

void TaskPool::Stop() {
  std::vector<std::thread> threads;
  std::deque<std::function<void()>> dropped;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    dropped.swap(queue_);
    threads.swap(threads_);
    work_cv_.SignalAll();
  }
  dropped.clear();
  for (auto &thread : threads) {
    if (thread.get_id() == std::this_thread::get_id()) {
      thread.detach();  // Stop called from a task: cannot join ourselves
    } else {
      thread.join();
    }
  }
}

int TaskPool::NumThreads() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(threads_.size());
}

}  // namespace sunray
