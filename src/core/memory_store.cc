#include "src/core/memory_store.h"

#include <atomic>
#include <cstring>

#include "src/common/id.h"
#include "src/core/object_error.h"

namespace sunray {

MemoryStore::Key::Key(std::string_view id) : size_(static_cast<uint32_t>(id.size())) {
  if (id.size() <= kInlineBytes) {
    std::memcpy(inline_, id.data(), id.size());
  } else {
    long_ = std::string(id);
  }
}

namespace {

absl::Status ShutDownStatus() {
  return absl::CancelledError("Sunray is shutting down: the call was abandoned.");
}

absl::Time DeadlineAfter(int timeout_ms) {
  return timeout_ms < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(timeout_ms);
}

}  // namespace

void MemoryStore::CreatePending(const std::string &id) {
  absl::MutexLock lock(&mu_);
  entries_.try_emplace(Key(id));
}

bool MemoryStore::Seal(const std::string &id, Value value,
                       const std::vector<std::string> &contained) {
  std::vector<std::function<void()>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return false;
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.sealed) return false;
    Entry &entry = it->second;
    entry.sealed = true;
    entry.value = std::move(value);
    for (const auto &inner : contained) {
      auto inner_it = entries_.find(inner);
      if (inner_it == entries_.end()) continue;  // already gone; nothing to keep alive
      ++inner_it->second.references;
      entry.contained.push_back(inner);
    }
    callbacks.swap(entry.on_sealed);
    sealed_cv_.SignalAll();
  }
  for (auto &callback : callbacks) callback();
  return true;
}

bool MemoryStore::AllSealedLocked(const std::vector<std::string> &ids) const {
  for (const auto &id : ids) {
    auto it = entries_.find(id);
    if (it != entries_.end() && !it->second.sealed) return false;
  }
  return true;
}

size_t MemoryStore::CountSealedLocked(const std::vector<std::string> &ids) const {
  size_t sealed = 0;
  for (const auto &id : ids) {
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second.sealed) ++sealed;
  }
  return sealed;
}

absl::StatusOr<std::vector<MemoryStore::Value>> MemoryStore::Get(
    const std::vector<std::string> &ids, int timeout_ms) {
  const absl::Time deadline = DeadlineAfter(timeout_ms);
  absl::MutexLock lock(&mu_);
  while (!shut_down_ && !AllSealedLocked(ids)) {
    if (sealed_cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  if (shut_down_) return ShutDownStatus();
  std::vector<Value> values;
  values.reserve(ids.size());
  for (const auto &id : ids) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      return ObjectErrorStatus(ErrorInfo{
          ErrorType::kObjectLost,
          "Object " + BinaryToHex(id) +
              " is not available: it was freed (no reference to it was left) or never existed in "
              "this runtime.",
          "", "", ""});
    }
    if (!it->second.sealed) {
      return absl::DeadlineExceededError("Get timed out: object " + BinaryToHex(id) +
                                         " was not ready within " + std::to_string(timeout_ms) +
                                         " ms.");
    }
    values.push_back(it->second.value);
  }
  return values;
}

absl::StatusOr<std::vector<bool>> MemoryStore::Wait(const std::vector<std::string> &ids,
                                                    int num_objects, int timeout_ms) {
  const absl::Time deadline = DeadlineAfter(timeout_ms);
  absl::MutexLock lock(&mu_);
  const size_t wanted = static_cast<size_t>(std::max(num_objects, 0));
  while (!shut_down_ && CountSealedLocked(ids) < wanted) {
    if (sealed_cv_.WaitWithDeadline(&mu_, deadline)) break;  // timed out
  }
  if (shut_down_) return ShutDownStatus();
  std::vector<bool> ready;
  ready.reserve(ids.size());
  for (const auto &id : ids) {
    auto it = entries_.find(id);
    ready.push_back(it == entries_.end() || it->second.sealed);
  }
  return ready;
}

void MemoryStore::OnSealed(const std::vector<std::string> &ids, std::function<void()> callback) {
  auto remaining = std::make_shared<std::atomic<size_t>>(ids.size() + 1);
  auto shared_callback = std::make_shared<std::function<void()>>(std::move(callback));
  auto arrive = [remaining, shared_callback] {
    if (remaining->fetch_sub(1) == 1) (*shared_callback)();
  };
  {
    absl::MutexLock lock(&mu_);
    for (const auto &id : ids) {
      auto it = entries_.find(id);
      if (it == entries_.end() || it->second.sealed) {
        remaining->fetch_sub(1);
      } else {
        it->second.on_sealed.push_back(arrive);
      }
    }
  }
  arrive();  // the extra count keeps the callback from running mid-registration
}

bool MemoryStore::AddReference(const std::string &id) {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return false;
  ++it->second.references;
  return true;
}

void MemoryStore::RemoveReference(const std::string &id) {
  std::vector<std::function<void()>> orphaned;
  {
    absl::MutexLock lock(&mu_);
    ReleaseLocked(id, &orphaned);
  }
  // Callbacks of a freed pending entry still run: they see the id as unknown
  // and report the loss.
  for (auto &callback : orphaned) callback();
}

void MemoryStore::ReleaseLocked(const std::string &id,
                                std::vector<std::function<void()>> *orphaned) {
  std::vector<std::string> pending{id};
  while (!pending.empty()) {
    std::string current = std::move(pending.back());
    pending.pop_back();
    auto it = entries_.find(current);
    if (it == entries_.end()) continue;
    if (--it->second.references > 0) continue;
    for (auto &callback : it->second.on_sealed) orphaned->push_back(std::move(callback));
    for (auto &inner : it->second.contained) pending.push_back(std::move(inner));
    entries_.erase(it);
  }
}

bool MemoryStore::Contains(const std::string &id) const {
  absl::MutexLock lock(&mu_);
  return entries_.contains(id);
}

size_t MemoryStore::Size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

void MemoryStore::Shutdown() {
  std::vector<std::function<void()>> callbacks;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    for (auto &[id, entry] : entries_) {
      for (auto &callback : entry.on_sealed) callbacks.push_back(std::move(callback));
      entry.on_sealed.clear();
    }
    sealed_cv_.SignalAll();
  }
  for (auto &callback : callbacks) callback();
}

}  // namespace sunray
