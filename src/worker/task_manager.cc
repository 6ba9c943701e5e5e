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

bool TaskManager::SettleOnce(PendingTask &task) {
  absl::MutexLock lock(&mu_);
  if (task.settled) {
    Logger().warn("the task {} settled a second time; the second outcome is ignored",
                  task.spec.function_name());
    return false;
  }
  task.settled = true;
  auto it = tasks_.find(task.spec.return_id());
  // Another record under the same id (one refused by Add) stays.
  if (it != tasks_.end() && it->second.get() == &task) tasks_.erase(it);
  return true;
}

void TaskManager::Succeeded(PendingTask &task, const proto::ObjectValue &result) {
  if (!SettleOnce(task)) return;
  sink_->StoreResult(task.spec.return_id(), result);
  sink_->Release(std::exchange(task.held, {}));
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
