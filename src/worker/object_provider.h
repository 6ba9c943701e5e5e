// This process's side of objects (Ray: the core worker's Put, Get and Wait
// over its memory store and its plasma provider): puts — small values
// inline in the memory store, larger ones in the node's shared-memory store
// with a marker inline — the results of tasks sealed as they arrive, values
// read for Get (owned: from the memory store or the node store; borrowed:
// fetched from their owner), and waiting for Get and Wait.
//
// Owns: put ids (the running task's id and a per-process index from a
// random place, drawn again when an earlier attempt of the task took one),
// which owned objects have node-store copies and on which nodes (where a
// task's result was stored, and where other nodes pulled copies: deleted
// on every node when they are freed, and at Shutdown), and what happens
// when an owned object is freed (its copies deleted, the borrowed refs
// inside it released — run later through `Defer`, never under the memory
// store's lock). A node-store value not on this node is pulled here by this
// node (RemoteStores) before it is read.
// Collaborators: the MemoryStore of owned objects and the ReferenceCounter
// (borrowed refs), both shared with the runtime; the node store behind
// `NodeStore` (the StoreClient in production, a map in
// object_provider_test.cc).
//
// Thread-safety: thread-safe; one lock (which ids have node-store copies),
// never held while calling out.
// Errors (absl::Status; the runtime's API edge throws them, ThrowStatus):
// Put and PutDirect fail with the store's reason (and leave nothing behind);
// Get fails DeadlineExceeded naming the first id not ready, or with the
// object's error (ObjectErrorStatus; ObjectLost for a node-store copy that
// is gone) for one that failed.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ray/api/serializer.h"
#include "src/common/id.h"
#include "src/core/memory_store.h"
#include "src/worker/reference_counter.h"
#include "worker.pb.h"

namespace sunray {

class StoreClient;

// Objects up to this size travel inline; larger ones go through the node's
// shared-memory store.
inline constexpr size_t kMaxInlineObjectBytes = 100 * 1024;

// The node's shared-memory store, as this process uses it.
class NodeStore {
 public:
  virtual ~NodeStore() = default;
  // Creates, fills and seals `id`. AlreadyExists (or Aborted) for an id
  // taken by another writer; ResourceExhausted when it does not fit.
  virtual absl::Status Put(const ObjectID &id, std::string_view data, const std::string &owner) = 0;
  // Put of a task's return value, which every attempt of the task shares:
  // an earlier attempt's sealed copy counts as this one.
  virtual absl::Status PutIdempotent(const ObjectID &id, std::string_view data,
                                     const std::string &owner) = 0;
  // Where `size` bytes of a new object go, written in place, then Seal.
  virtual absl::StatusOr<char *> Create(const ObjectID &id, size_t size,
                                        const std::string &owner) = 0;
  virtual absl::Status Seal(const ObjectID &id) = 0;
  // A sealed object, pinned while the buffer lives. NotFound if absent.
  virtual absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> Get(const ObjectID &id) = 0;
  // Frees the objects once nobody pins them.
  virtual absl::Status Delete(const std::vector<ObjectID> &ids) = 0;
};

// The NodeStore of a StoreClient (which must outlive it).
std::unique_ptr<NodeStore> NodeStoreOf(StoreClient *client);

// Other nodes' stores, as this process reaches them.
class RemoteStores {
 public:
  virtual ~RemoteStores() = default;
  // Has this process's node pull a copy of `id` from the store of the node
  // at `from`, telling `owner` (may be empty) where the copy is; returns
  // once the copy is here (blocking, bounded).
  virtual absl::Status Pull(const std::string &id, const std::string &from,
                            const std::string &owner) = 0;
  // Deletes the copies of `ids` in the store of the node at `node_address`
  // (asynchronous; a failure is logged).
  virtual void Delete(const std::string &node_address, const std::vector<std::string> &ids) = 0;
};

class ObjectProvider {
 public:
  // Runs work soon, off every lock (the runtime's housekeeping thread).
  using Defer = std::function<void(std::function<void()>)>;
  // Called when a Get or Wait is about to block; the running task counts
  // as blocked until the returned guard is destroyed (may be null).
  using Blocking = std::function<std::shared_ptr<void>()>;

  struct Options {
    std::string my_address;    // this process's owner address
    std::string node_address;  // its node's (NodeService) address
    TaskID driver_task_id;     // put ids outside tasks
    Defer defer;
    Blocking blocking;
    // Runs when an owned task result sealed by SealFromProto with
    // `report_free` (a value, not an error) is freed, at once on the
    // freeing thread (perhaps under the memory store's lock: it must not
    // call into it); never after Shutdown. May be empty.
    std::function<void(const std::string &return_id)> result_freed;
  };

  // `owned`, `refs`, `node_store` and `remote` (may be null: one node) must
  // outlive this object.
  ObjectProvider(Options options, MemoryStore *owned, ReferenceCounter *refs, NodeStore *node_store,
                 RemoteStores *remote = nullptr);
  ObjectProvider(const ObjectProvider &) = delete;
  ObjectProvider &operator=(const ObjectProvider &) = delete;

  // --- puts ---
  [[nodiscard]] absl::StatusOr<std::string> Put(std::shared_ptr<msgpack::sbuffer> data,
                                                const std::vector<std::string> &contained_ids);
  // A value of `size` bytes written in place by `write` (empty for sizes
  // that travel inline: the caller puts them with Put). An exception from
  // `write` goes on to the caller, the object gone.
  [[nodiscard]] absl::StatusOr<std::string> PutDirect(
      size_t size, const std::function<void(char *)> &write,
      const std::vector<std::string> &contained_ids);

  // --- owned objects ---
  bool Owns(const std::string &id) const { return owned_->Contains(id); }
  // Seals owned `id` (a task's return) from its value on the wire; the refs
  // inside arrive with one registration each made for this process. False
  // (the value dropped) when nothing refers to `id` any more. With
  // `report_free`, Options::result_freed hears when it is freed.
  bool SealFromProto(const std::string &id, const proto::ObjectValue &value,
                     bool report_free = false);
  // What owned `id`'s value is on the wire (for a borrower or a task
  // argument; a node-store copy with where it is and who owns it); an
  // ObjectLost error once it is gone.
  void OwnedValueToProto(const std::string &id, proto::ObjectValue *out) const;
  // Another node pulled a copy of owned `id`: deleted there when `id` is
  // freed. False if `id` is not (or no longer) owned here with a copy.
  bool AddLocation(const std::string &id, const std::string &node_address);
  // Marks `out` as a value in this node's store (a task's large result).
  void MarkInThisNodeStore(proto::ObjectValue *out) const {
    out->set_in_store(true);
    out->set_node_address(options_.node_address);
  }

  // --- reading ---
  [[nodiscard]] absl::StatusOr<std::vector<std::shared_ptr<ray::internal::ObjectBuffer>>> Get(
      const std::vector<std::string> &ids, int timeout_ms);
  std::vector<bool> Wait(const std::vector<std::string> &ids, int num_objects, int timeout_ms);
  // `id`'s copy in this node's store; when it is not here, pulled first
  // from the first of `from` (the nodes holding a copy, in order) that can
  // serve it, `owner` told. An ObjectLost error naming `id` and every node
  // tried if it cannot be had.
  [[nodiscard]] absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> ReadNodeStore(
      const std::string &id, const std::vector<std::string> &from = {},
      const std::string &owner = {}) const;
  // The nodes holding a copy of a value in store: its node, then the others.
  static std::vector<std::string> Holders(const proto::ObjectValue &value);
  // A task's large result under its return id (see NodeStore::PutIdempotent).
  absl::Status PutResult(const std::string &return_id, std::string_view data,
                         const std::string &owner) {
    return node_store_->PutIdempotent(ObjectID::FromBinary(return_id), data, owner);
  }

  // Free actions no longer run; the node-store copies of owned objects are
  // deleted. Call after the memory store's Shutdown. Idempotent.
  void Shutdown();

  // For tests: owned objects with a node-store copy.
  size_t NodeStoreCopies() const;

 private:
  struct Waiter;
  struct DeferTarget;

  std::string NewPutId();
  // A put id from a new random place (the index was taken).
  std::string NewRandomPutId();
  static uint32_t RandomPutIndex();
  // Records a new put (its value inline, or `in_store`) as owned here;
  // Cancelled once the memory store is shut down.
  absl::StatusOr<std::string> RegisterPut(const std::string &id, MemoryStore::Value value,
                                          bool in_store,
                                          const std::vector<std::string> &contained_ids);
  // What to do when an owned object is freed (`result`: a task result whose
  // freeing `result_freed` hears of).
  std::shared_ptr<void> MakeFreeHook(const std::string &id, bool in_node_store,
                                     std::vector<std::string> borrowed_contained,
                                     bool result = false);
  // Deletes the copies at `copies` (node addresses) of `ids`.
  void DeleteCopies(const std::map<std::string, std::vector<std::string>> &by_node) const;
  // Blocks until `num` of `ids` are ready (or the deadline); fetches
  // borrowed values from their owners. Returns which are ready.
  std::vector<bool> WaitReady(const std::vector<std::string> &ids, size_t num, int timeout_ms);
  // Reads the task stream this thread last sent on until `num` are ready,
  // the deadline, or the answer comes another way (see ReadHere).
  void ReadAnswersHere(Waiter &waiter, size_t num, absl::Time deadline);
  // A ready object's value, or its error.
  absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> ReadValue(const std::string &id);

  const Options options_;
  MemoryStore *const owned_;
  ReferenceCounter *const refs_;
  NodeStore *const node_store_;
  RemoteStores *const remote_;
  // Where free actions go until Shutdown (shared with the hooks, which may
  // outlive this object inside values still held).
  std::shared_ptr<DeferTarget> defer_target_;
  std::atomic<uint32_t> put_index_;

  mutable absl::Mutex mu_;
  // Owned objects with node-store copies: the nodes holding one (the first
  // where it was made; node addresses, this node's for its own store).
  absl::flat_hash_map<std::string, std::vector<std::string>> copies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
