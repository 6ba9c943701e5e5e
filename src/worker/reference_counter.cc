#include "src/worker/reference_counter.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "src/common/id.h"
#include "src/core/object_error.h"

namespace sunray {
std::string BorrowFailureReason(const std::string &owner, const absl::Status &status) {
  if (absl::IsNotFound(status)) return "its owner at " + owner + " no longer has it";
  return "its owner at " + owner + " cannot be reached (" + std::string(status.message()) + ")";
}

proto::ObjectValue LostValue(const std::string &id, const std::string &reason) {
  proto::ObjectValue value;
  value.set_is_error(true);
  proto::ErrorInfo *error = value.mutable_error();
  error->set_type(proto::OBJECT_LOST);
  error->set_message("Object " + BinaryToHex(id) + " is lost: " + reason + ".");
  return value;
}

ReferenceCounter::ReferenceCounter(std::string my_address, MemoryStore *owned, OwnerClient *client)
    : my_address_(std::move(my_address)), owned_(owned), client_(client) {}

void ReferenceCounter::AddLocalReference(const std::string &id) {
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowed_.find(id);
    if (it != borrowed_.end()) {
      ++it->second->local;
      return;
    }
  }
  owned_->AddReference(id);
}

void ReferenceCounter::RemoveLocalReference(const std::string &id) {
  std::unique_ptr<Borrowed> released;
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowed_.find(id);
    if (it != borrowed_.end()) {
      if (--it->second->local > 0) return;
      released = std::move(it->second);
      borrowed_.erase(it);
    }
  }
  if (released == nullptr) {
    owned_->RemoveReference(id);
    return;
  }
  for (auto &waiter : released->waiters) waiter();
  if (released->registrations > 0) {
    client_->RemoveBorrower(released->owner, id, my_address_, released->registrations);
  }
}

bool ReferenceCounter::IsBorrowed(const std::string &id) const {
  absl::MutexLock lock(&mu_);
  return borrowed_.contains(id);
}

std::string ReferenceCounter::OwnerOf(const std::string &id) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowed_.find(id);
    if (it != borrowed_.end()) return it->second->owner;
  }
  return Owns(id) ? my_address_ : std::string();
}

void ReferenceCounter::AddBorrowedReference(const std::string &id, const std::string &owner) {
  if (owner.empty() || owner == my_address_) {
    AddLocalReference(id);
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowed_.find(id);
    if (it != borrowed_.end() && it->second->registrations > 0) {
      ++it->second->local;
      return;
    }
  }
  // First use here: the owner must count us before the ref we came from can
  // go away.
  const absl::Status registered = client_->AddBorrower(owner, id, my_address_);
  AddBorrowed(id, owner, registered.ok() ? 1 : 0);
  if (!registered.ok()) MarkBorrowedLost(id, BorrowFailureReason(owner, registered));
}

void ReferenceCounter::AddBorrowed(const std::string &id, const std::string &owner,
                                   int64_t registrations) {
  absl::MutexLock lock(&mu_);
  auto &entry = borrowed_[id];
  if (entry == nullptr) {
    entry = std::make_unique<Borrowed>();
    entry->owner = owner;
  }
  entry->local += 1;
  entry->registrations += registrations;
}

void ReferenceCounter::MarkBorrowedLost(const std::string &id, const std::string &reason) {
  absl::MutexLock lock(&mu_);
  auto it = borrowed_.find(id);
  if (it == borrowed_.end() || it->second->registrations > 0) return;  // registered otherwise
  it->second->fetched = true;
  it->second->value = LostValue(id, reason);
}

void ReferenceCounter::FetchBorrowed(const std::string &id, std::function<void()> done) {
  std::string owner;
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowed_.find(id);
    if (it != borrowed_.end() && !it->second->fetched) {
      it->second->waiters.push_back(std::move(done));
      if (it->second->fetching) return;
      it->second->fetching = true;
      owner = it->second->owner;
    }
  }
  if (owner.empty()) {  // fetched already, or not borrowed (the caller reports it)
    done();
    return;
  }
  client_->GetOwnedObject(owner, id, [this, id, owner](absl::StatusOr<proto::ObjectValue> value) {
    OnFetched(id, owner, std::move(value));
  });
}

void ReferenceCounter::OnFetched(const std::string &id, const std::string &owner,
                                 absl::StatusOr<proto::ObjectValue> value) {
  std::vector<std::function<void()>> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowed_.find(id);
    if (it == borrowed_.end()) return;  // released meanwhile; its waiters ran
    Borrowed &entry = *it->second;
    entry.fetching = false;
    entry.fetched = true;
    entry.value =
        value.ok() ? std::move(*value) : LostValue(id, BorrowFailureReason(owner, value.status()));
    waiters.swap(entry.waiters);
  }
  for (auto &waiter : waiters) waiter();
}

std::optional<proto::ObjectValue> ReferenceCounter::BorrowedValue(const std::string &id) const {
  absl::MutexLock lock(&mu_);
  auto it = borrowed_.find(id);
  if (it == borrowed_.end() || !it->second->fetched) return std::nullopt;
  return it->second->value;
}

bool ReferenceCounter::RegisterBorrower(const std::string &borrower, const std::string &id) {
  if (borrower.empty()) return false;
  if (!owned_->AddReference(id)) return false;  // not owned (any more)
  // Our own holds are plain references, released by whoever took them.
  if (borrower == my_address_) return true;
  bool first = false;
  {
    absl::MutexLock lock(&mu_);
    auto [it, inserted] = borrowers_.try_emplace(borrower);
    first = inserted;
    ++it->second[id];
  }
  if (first) {
    client_->WatchExit(borrower, [this, borrower](absl::Status status) {
      if (absl::IsCancelled(status)) return;  // we are shutting down
      DropBorrower(borrower);
    });
  }
  return true;
}

int64_t ReferenceCounter::ReleaseBorrower(const std::string &borrower, const std::string &id,
                                          int64_t count) {
  if (borrower.empty() || borrower == my_address_ || count <= 0) return 0;
  int64_t released = 0;
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowers_.find(borrower);
    if (it == borrowers_.end()) return 0;  // never registered, or seen gone
    auto held = it->second.find(id);
    if (held == it->second.end()) return 0;
    released = std::min(count, held->second);
    held->second -= released;
    if (held->second == 0) it->second.erase(held);  // the address stays watched
  }
  for (int64_t i = 0; i < released; ++i) owned_->RemoveReference(id);
  return released;
}

void ReferenceCounter::DropBorrower(const std::string &borrower) {
  absl::flat_hash_map<std::string, int64_t> held;
  {
    absl::MutexLock lock(&mu_);
    auto it = borrowers_.find(borrower);
    if (it == borrowers_.end()) return;
    held = std::move(it->second);
    borrowers_.erase(it);
  }
  for (const auto &[id, count] : held) {
    for (int64_t i = 0; i < count; ++i) owned_->RemoveReference(id);
  }
}

int64_t ReferenceCounter::LocalCountForTest(const std::string &id) const {
  absl::MutexLock lock(&mu_);
  auto it = borrowed_.find(id);
  return it == borrowed_.end() ? 0 : it->second->local;
}

int64_t ReferenceCounter::RegistrationsForTest(const std::string &id) const {
  absl::MutexLock lock(&mu_);
  auto it = borrowed_.find(id);
  return it == borrowed_.end() ? 0 : it->second->registrations;
}

int64_t ReferenceCounter::BorrowerCountForTest(const std::string &borrower,
                                               const std::string &id) const {
  absl::MutexLock lock(&mu_);
  auto it = borrowers_.find(borrower);
  if (it == borrowers_.end()) return 0;
  auto held = it->second.find(id);
  return held == it->second.end() ? 0 : held->second;
}

}  // namespace sunray
