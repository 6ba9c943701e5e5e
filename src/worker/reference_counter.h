// The worker library's reference counting: which objects this process can
// still reach, and for owned objects, which other processes can (Ray: the
// core worker's reference counter).
//
// What it owns.
//  - Borrowed objects: ids this process holds refs to but does not own. Per
//    id: the owner's address, the local count (ObjectRefs, arguments in
//    flight, values holding it), how many times the owner counted this
//    process as a borrower ("registrations", returned in one RemoveBorrower
//    when the local count reaches zero), and the value once fetched.
//  - Borrowers of owned objects: per borrower address, how many
//    registrations of each owned object it holds. The first registration of
//    an address starts watching it (OwnerClient::WatchExit); when it exits,
//    everything it held is released.
// Owned objects' own counts stay in the MemoryStore it is given (its
// entries' references, contained refs included): this class adds and
// removes references there on borrowers' behalf. Object locations and
// lineage pins will live beside the borrower records.
//
// Thread-safety. Thread-safe; one mutex of its own, never held while it
// calls the OwnerClient, the MemoryStore or a callback.
//
// Errors. What cannot be reached becomes the object's value: a borrowed ref
// whose owner did not register it (unreachable, or freed already) reads as
// an ObjectLost error naming the owner, and nothing counts a registration
// the owner never made.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/core/memory_store.h"
#include "worker.pb.h"

namespace sunray {

// The calls reference counting makes to other processes (their
// WorkerService). Implementations are asynchronous where they take a
// callback; callbacks may run on any thread, also before the call returns.
class OwnerClient {
 public:
  virtual ~OwnerClient() = default;
  // Asks `owner` to count `borrower` as a borrower of `id` (blocking).
  // NotFound: the owner no longer has it; other errors: unreachable.
  virtual absl::Status AddBorrower(const std::string &owner, const std::string &id,
                                   const std::string &borrower) = 0;
  // Tells `owner` that `borrower` releases `count` registrations of `id`.
  virtual void RemoveBorrower(const std::string &owner, const std::string &id,
                              const std::string &borrower, int64_t count) = 0;
  // `done` runs when the process at `address` exits or cannot be reached
  // (an error), or with Cancelled when this process shuts down.
  virtual void WatchExit(const std::string &address, std::function<void(absl::Status)> done) = 0;
  // The value of `id` from its owner, once it is ready. NotFound: the owner
  // no longer has it.
  virtual void GetOwnedObject(const std::string &owner, const std::string &id,
                              std::function<void(absl::StatusOr<proto::ObjectValue>)> done) = 0;
};

class ReferenceCounter {
 public:
  // `owned` holds this process's owned objects; `client` reaches other
  // processes. Both must outlive this object.
  ReferenceCounter(std::string my_address, MemoryStore *owned, OwnerClient *client);
  ReferenceCounter(const ReferenceCounter &) = delete;
  ReferenceCounter &operator=(const ReferenceCounter &) = delete;

  const std::string &my_address() const { return my_address_; }

  // --- local references (ObjectRefs, arguments in flight) ---
  void AddLocalReference(const std::string &id);
  // The last local reference to a borrowed id releases its registrations
  // at the owner and drops its record (waiting fetches see it unknown).
  void RemoveLocalReference(const std::string &id);
  bool Owns(const std::string &id) const { return owned_->Contains(id); }
  bool IsBorrowed(const std::string &id) const;
  // The owner's address: ours for owned ids, empty for unknown ones.
  std::string OwnerOf(const std::string &id) const;

  // --- borrowing ---
  // A ref to `id` owned at `owner` arrived here (deserialized): holds one
  // local reference, registering with the owner first unless this process
  // holds a registration already. A failed registration makes the ref read
  // as lost.
  void AddBorrowedReference(const std::string &id, const std::string &owner);
  // A ref that arrived inside a value with `registrations` made for us by
  // its sender (0 or 1): holds one local reference.
  void AddBorrowed(const std::string &id, const std::string &owner, int64_t registrations);
  // A borrowed ref without a registration: it reads as ObjectLost naming
  // `reason` (unless a registration exists after all).
  void MarkBorrowedLost(const std::string &id, const std::string &reason);
  // Fetches the value of borrowed `id` from its owner (merged with a fetch
  // in flight); runs `done` once it is here, at once if it is or if `id` is
  // not borrowed.
  void FetchBorrowed(const std::string &id, std::function<void()> done);
  // The fetched value of borrowed `id`; nullopt if not borrowed or not
  // fetched yet.
  std::optional<proto::ObjectValue> BorrowedValue(const std::string &id) const;

  // --- the owner's side ---
  // Counts `borrower` as a borrower of owned `id` (one more reference on
  // it). False if `id` is not owned here. Our own address counts nothing
  // (our holds are local references).
  bool RegisterBorrower(const std::string &borrower, const std::string &id);
  // `borrower` releases `count` registrations of `id`: at most what it
  // holds (0 for one never registered or already dropped). Returns how many
  // were released.
  int64_t ReleaseBorrower(const std::string &borrower, const std::string &id, int64_t count);
  // The borrower is gone: everything it held is released.
  void DropBorrower(const std::string &borrower);

  // For tests.
  int64_t LocalCountForTest(const std::string &id) const;
  int64_t RegistrationsForTest(const std::string &id) const;
  int64_t BorrowerCountForTest(const std::string &borrower, const std::string &id) const;

 private:
  struct Borrowed {
    std::string owner;
    int64_t local = 0;
    int64_t registrations = 0;
    bool fetching = false;
    bool fetched = false;
    proto::ObjectValue value;  // once fetched
    std::vector<std::function<void()>> waiters;
  };

  void OnFetched(const std::string &id, const std::string &owner,
                 absl::StatusOr<proto::ObjectValue> value);

  const std::string my_address_;
  MemoryStore *const owned_;
  OwnerClient *const client_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Borrowed>> borrowed_ ABSL_GUARDED_BY(mu_);
  // Registrations per borrower address, per owned object; an address stays
  // (watched) after its counts reach zero, until it exits.
  absl::flat_hash_map<std::string, absl::flat_hash_map<std::string, int64_t>> borrowers_
      ABSL_GUARDED_BY(mu_);
};

// Why a borrowed ref has no registration at `owner`, from the owner's
// answer to AddBorrower (or GetOwnedObject).
std::string BorrowFailureReason(const std::string &owner, const absl::Status &status);

// An ObjectLost error value naming `id` and why it is lost.
proto::ObjectValue LostValue(const std::string &id, const std::string &reason);

}  // namespace sunray
