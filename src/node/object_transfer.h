// Objects between nodes (Ray: the object manager): this node's store serves
// its copies to other nodes in chunks (FetchObject), and pulls copies of
// objects held elsewhere into this store for the processes on this node
// (PullObject).
//
//   ObjectPuller puller({token}, store);
//   puller.SetNodeAddress("10.0.0.1:7000");  // once it serves
//   puller.Pull(id, "10.0.0.2:7000", owner, [](absl::Status pulled) { ... });
//
// A pull streams the object from the source node's FetchObject in chunks
// (`chunk_bytes`, Ray's 5 MiB default) straight into a new object in this
// store: the first chunk's range on one stream (it tells the size), the
// rest split over up to `streams` streams at once, each on its own
// connection (several chunks in flight). Then it seals the copy and tells
// the owner where it is
// (WorkerService.AddObjectLocation: it deletes the copy when it frees the
// object; an owner that no longer has it gets the copy deleted at once).
// Pulls of one object are merged: every caller waits for the one pull. At
// most `threads` pulls run at once; the others wait in arrival order. A
// pull the store has no room for waits (`room_timeout`), retrying as room
// appears, instead of failing the store. A source that answers wrongly (a
// size that changes, a chunk past the end, too few bytes) fails the pull
// with InternalError naming it; nothing half-written stays in the store.
//
// Threads: `threads` pull threads, owned, joined by Stop; Pull never blocks
// (callers on gRPC callback threads). Callbacks run on a pull thread, or
// at once for an object already here, or with Cancelled at Stop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/objstore/object_store.h"

namespace sunray {

// The node's own client of its store (for serving and pulling copies).
inline constexpr ObjectStore::ClientId kNodeStoreClient = ~ObjectStore::ClientId{0};

class ObjectPuller {
 public:
  struct Options {
    std::string token;
    uint64_t chunk_bytes = 5 << 20;
    int streams = 4;  // per pull, at most
    int threads = 2;
    absl::Duration room_timeout = absl::Seconds(30);
  };
  using Done = std::function<void(absl::Status)>;

  // `store` must outlive this object; its kNodeStoreClient is added here.
  ObjectPuller(Options options, ObjectStore &store);
  ~ObjectPuller();  // Stop()
  ObjectPuller(const ObjectPuller &) = delete;
  ObjectPuller &operator=(const ObjectPuller &) = delete;

  // Gets `id` into this store from the store at `from`; `owner` (may be
  // empty) is told where the copy is. `done` runs once.
  void Pull(const ObjectID &id, const std::string &from, const std::string &owner, Done done);
  // Waiting pulls end Cancelled, running ones when their stream ends.
  // Idempotent.
  void Stop();
  // This node's NodeService address, told to owners.
  void SetNodeAddress(std::string address);

 private:
  struct Pending {
    std::string from;
    std::string owner;
    std::vector<Done> waiters;
  };

  void Loop();
  // Copies `id` from `from`; OK once it is sealed here.
  absl::Status Fetch(const ObjectID &id, const std::string &from, const std::string &owner);
  // Where a pull writes: the object once created, and its whole size.
  struct Target {
    bool created = false;
    ObjectStore::Location location;
    uint64_t total = 0;
  };
  // Streams the bytes [offset, offset + length) (length 0: to the end) of
  // `id` from `from` into `target`; creates the object from the first
  // chunk when `target` is not created yet (AlreadyExists: a copy came
  // another way). Checks every chunk against the range and the size.
  absl::Status FetchRange(const ObjectID &id, const std::string &from, const std::string &owner,
                          uint64_t offset, uint64_t length, Target *target);
  // Creates the object, waiting for room up to the room timeout.
  absl::StatusOr<ObjectStore::Location> CreateWithRoom(const ObjectID &id, uint64_t data_size,
                                                       uint64_t metadata_size,
                                                       const std::string &owner);
  void TellOwner(const ObjectID &id, const std::string &owner);

  const Options options_;
  ObjectStore &store_;
  absl::Mutex mu_;
  std::deque<ObjectID> queue_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<ObjectID, Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::string node_address_ ABSL_GUARDED_BY(mu_);
  // The fetches under way, cancelled by Stop.
  absl::flat_hash_set<grpc::ClientContext *> fetching_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;
};

// FetchObject's answer: the bytes [offset, offset + length) (length 0: to
// the end) of the sealed copy of the object in `store` (which knows
// kNodeStoreClient: the node's ObjectPuller adds it), pinned while it is
// written in chunks of `chunk_bytes`. Finishes NOT_FOUND when the store
// has no sealed copy, OUT_OF_RANGE for an offset past its end, CANCELLED
// when the reader goes away.
grpc::ServerWriteReactor<proto::ObjectChunk> *ServeObject(ObjectStore &store, const ObjectID &id,
                                                          uint64_t chunk_bytes, uint64_t offset = 0,
                                                          uint64_t length = 0);

}  // namespace sunray
