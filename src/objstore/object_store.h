// The node's object store: sealed, immutable objects in one shared-memory
// segment, allocated by Boost.Interprocess's best-fit allocator.
//
// Lifecycle of an object:
//   CreateObject (unsealed; the creator writes data+metadata at the returned
//   offset) -> Seal (immutable, readable) -> Get/Release by readers (each Get
//   pins it for that client) -> Delete (freed as soon as nobody pins it).
// An unsealed object can be Aborted by its creator. Clients are known by id
// from AddClient (their handshake) to ReleaseClient (they went away), which
// drops their pins and aborts what they were still writing; a call naming
// any other client is refused, so a late request of a gone client cannot
// leave an object nobody will ever seal or release.
//
// Sizes in errors are exact so users can act on them: a full store answers
// ResourceExhausted "object store full: ...".
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "src/common/id.h"
#include "src/objstore/shared_memory.h"

namespace sunray {

class ObjectStore {
 public:
  using ClientId = uint64_t;

  struct Options {
    // Bytes available for objects.
    size_t capacity_bytes = 0;
    // Label of the shared-memory segment.
    std::string segment_name = "sunray-object-store";
  };

  // Where an object lives in the segment.
  struct Location {
    size_t offset = 0;
    size_t data_size = 0;
    size_t metadata_size = 0;
  };

  struct Stats {
    size_t capacity_bytes = 0;
    size_t used_bytes = 0;    // data + metadata of every object held
    size_t pinned_bytes = 0;  // of objects some client pins
    size_t num_objects = 0;
  };

  static absl::StatusOr<std::unique_ptr<ObjectStore>> Create(Options options);
  ~ObjectStore();
  ObjectStore(const ObjectStore &) = delete;
  ObjectStore &operator=(const ObjectStore &) = delete;

  // A client connected; its id may now create, pin and release objects.
  void AddClient(ClientId client);

  // Allocates an unsealed object of data_size + metadata_size bytes, pinned by
  // `creator`, owned by the process at `owner_address` (see DeleteOwnedBy).
  // AlreadyExists if a sealed object (or one of `creator`'s own) has the id;
  // Aborted while another client is still writing it (it ends sealed, or
  // aborted when that client goes away); ResourceExhausted when it does not
  // fit; InvalidArgument for a size beyond the capacity; FailedPrecondition
  // for a client that is not connected.
  absl::StatusOr<Location> CreateObject(const ObjectID &id, size_t data_size, size_t metadata_size,
                                        ClientId creator, const std::string &owner_address = {});
  // Makes the object immutable and readable; the creator's pin stays until it
  // calls Release. NotFound; FailedPrecondition if already sealed.
  absl::Status Seal(const ObjectID &id);
  // Frees an unsealed object. NotFound; FailedPrecondition if sealed or not
  // created by `creator`.
  absl::Status Abort(const ObjectID &id, ClientId creator);

  // Pins a sealed object for `client`. NotFound if absent; Unavailable if it is
  // not sealed yet; FailedPrecondition for a client that is not connected.
  absl::StatusOr<Location> Get(const ObjectID &id, ClientId client);
  // Drops one pin of `client`. NotFound if the client holds none.
  absl::Status Release(const ObjectID &id, ClientId client);
  // Frees the object once nobody pins it. NotFound if absent.
  absl::Status Delete(const ObjectID &id);
  // The client went away: drops every pin it held, aborts the objects it had
  // not sealed, and refuses its id from now on.
  void ReleaseClient(ClientId client);
  // The owner at `owner_address` died: Deletes every object it owned (each
  // freed once nobody pins it). Returns how many. An empty address matches
  // nothing.
  int DeleteOwnedBy(const std::string &owner_address);

  bool ContainsSealed(const ObjectID &id) const;
  Stats GetStats() const;
  const SharedMemorySegment &segment() const { return *segment_; }

 private:
  struct Entry {
    Location location;
    bool sealed = false;
    bool delete_requested = false;
    ClientId creator = 0;
    std::string owner;  // its owner's address; empty if not told
    // client -> pins held
    absl::flat_hash_map<ClientId, int> pins;
  };
  class Allocator;

  ObjectStore(Options options, std::unique_ptr<SharedMemorySegment> segment,
              std::unique_ptr<Allocator> allocator);

  void FreeLocked(absl::flat_hash_map<ObjectID, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFreeLocked(absl::flat_hash_map<ObjectID, Entry>::iterator it)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string UsageLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckClientLocked(ClientId client) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t PinnedBytesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  std::unique_ptr<SharedMemorySegment> segment_;
  mutable absl::Mutex mu_;
  std::unique_ptr<Allocator> allocator_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<ObjectID, Entry> objects_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<ClientId> clients_ ABSL_GUARDED_BY(mu_);
  size_t used_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sunray
