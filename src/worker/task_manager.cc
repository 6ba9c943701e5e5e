#include "src/worker/task_manager.h"
#include "src/common/log.h"

namespace sunray {
namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.tasks"));
  return **logger;
}

}  // namespace

bool TaskManager::Add(std::shared_ptr<PendingTask> task) {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return false;
  const std::string &return_id = task->spec.return_id();
  return tasks_.try_emplace(return_id, std::move(task)).second;
}

std::shared_ptr<PendingTask> TaskManager::Find(const std::string &return_id) const {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(return_id);
  return it == tasks_.end() ? nullptr : it->second;
}

bool TaskManager::SettleOnce(PendingTask &task, std::shared_ptr<PendingTask> *record) {
  absl::MutexLock lock(&mu_);
  if (task.settled) {
    Logger().warn("the task {} settled a second time; the second outcome is ignored",
                  task.spec.function_name());
    return false;
  }
  task.settled = true;
  auto it = tasks_.find(task.spec.return_id());
  // Another record under the same id (one refused by Add) stays.
  if (it != tasks_.end() && it->second.get() == &task) {
    if (record != nullptr) *record = std::move(it->second);
    tasks_.erase(it);
  }
  return true;
}

void TaskManager::Succeeded(PendingTask &task, const proto::ObjectValue &result) {
  std::shared_ptr<PendingTask> record;
  if (!SettleOnce(task, &record)) return;
  // Kept before the result is stored: it may be freed as soon as it is.
  const bool keep = record != nullptr && task.spec.type() == proto::TaskSpec::NORMAL &&
                    !result.is_error() && task.retries.CanRetry();
  const std::string return_id = task.spec.return_id();
  if (keep) KeepLineage(std::move(record));
  if (!sink_->StoreResult(return_id, result, keep) && keep) ReleaseLineage(return_id);
  sink_->Release(std::exchange(task.held, {}));
}

void TaskManager::KeepLineage(std::shared_ptr<PendingTask> task) {
  size_t bytes = 256 + task->spec.function_name().size();
  for (const auto &arg : task->spec.args()) bytes += arg.value().data().size();
  const std::string &return_id = task->spec.return_id();
  absl::MutexLock lock(&mu_);
  const uint64_t order = next_order_++;
  if (!lineage_.try_emplace(return_id, Kept{std::move(task), order, bytes}).second) return;
  lineage_order_.emplace(order, return_id);
  lineage_bytes_ += bytes;
  while (lineage_bytes_ > max_lineage_bytes_ && !lineage_order_.empty()) {
    auto oldest = lineage_order_.begin();
    auto it = lineage_.find(oldest->second);
    lineage_bytes_ -= it->second.bytes;
    lineage_.erase(it);
    lineage_order_.erase(oldest);
  }
}

std::shared_ptr<const proto::TaskSpec> TaskManager::Lineage(const std::string &return_id) const {
  absl::MutexLock lock(&mu_);
  auto it = lineage_.find(return_id);
  if (it == lineage_.end()) return nullptr;
  return std::shared_ptr<const proto::TaskSpec>(it->second.task, &it->second.task->spec);
}

void TaskManager::ReleaseLineage(const std::string &return_id) {
  std::shared_ptr<PendingTask> released;  // destroyed outside the lock
  absl::MutexLock lock(&mu_);
  auto it = lineage_.find(return_id);
  if (it == lineage_.end()) return;
  released = std::move(it->second.task);
  lineage_bytes_ -= it->second.bytes;
  lineage_order_.erase(it->second.order);
  lineage_.erase(it);
}

size_t TaskManager::lineage_size() const {
  absl::MutexLock lock(&mu_);
  return lineage_.size();
}

size_t TaskManager::lineage_bytes() const {
  absl::MutexLock lock(&mu_);
  return lineage_bytes_;
}

void TaskManager::Failed(PendingTask &task, ErrorInfo error) {
  if (!SettleOnce(task)) return;
  if (error.function_name.empty()) error.function_name = task.spec.function_name();
  sink_->StoreError(task.spec.return_id(), std::move(error));
  sink_->Release(std::exchange(task.held, {}));
}

void TaskManager::Release(PendingTask &task) {
  if (!SettleOnce(task)) return;
  sink_->Release(std::exchange(task.held, {}));
}

void TaskManager::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

size_t TaskManager::pending() const {
  absl::MutexLock lock(&mu_);
  return tasks_.size();
}

}  // namespace sunray
