// In-process object store with reference counting: where local mode keeps
// every object (and, later, where an owner keeps its small objects).
//
// An entry is pending until Put seals it with a value or an error. Each
// entry counts references: ObjectRefs in this process, tasks that take it
// as an argument, and other objects whose values contain it. When the count
// drops to zero the entry is freed (also while still pending: the value that
// arrives later is dropped), and the objects it contained lose a reference.
//
// Thread-safe. Get and Wait block the calling thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "ray/api/serializer.h"
#include "src/core/object_error.h"

namespace sunray {

// Keeps a Put's serialized buffer alive as the object's value (no copy).
class SharedSbufferObject : public ray::internal::ObjectBuffer {
 public:
  explicit SharedSbufferObject(std::shared_ptr<msgpack::sbuffer> buffer)
      : buffer_(std::move(buffer)) {}
  const char *Data() const override { return buffer_->data(); }
  size_t Size() const override { return buffer_->size(); }

 private:
  std::shared_ptr<msgpack::sbuffer> buffer_;
};

// An object value held in a std::string (a value that arrived inline).
class StringObject : public ray::internal::ObjectBuffer {
 public:
  explicit StringObject(std::string data) : data_(std::move(data)) {}
  const char *Data() const override { return data_.data(); }
  size_t Size() const override { return data_.size(); }

 private:
  std::string data_;
};

class MemoryStore {
 public:
  struct Value {
    std::shared_ptr<ray::internal::ObjectBuffer> data;  // set for values
    std::shared_ptr<const ErrorInfo> error;             // set for errors
    // Cluster runtime: the value is in the node's shared-memory store under
    // the entry's id (data and error unset).
    bool in_node_store = false;
    // Released with the last copy of the value: the cluster runtime hangs
    // what must happen when an object is freed here (its shared-memory copy
    // deleted, borrowed refs inside it released). Its destructor may run
    // under the store's lock, so it must not call back into the store.
    std::shared_ptr<void> on_free;
  };

  MemoryStore() = default;
  MemoryStore(const MemoryStore &) = delete;
  MemoryStore &operator=(const MemoryStore &) = delete;

  // Adds a pending entry with no references.
  void CreatePending(const std::string &id);

  // Seals `id`. `contained` are ids serialized inside the value; each gains a
  // reference while this entry lives. Returns false (and drops the value) if
  // the entry was freed or already sealed.
  bool Seal(const std::string &id, Value value, const std::vector<std::string> &contained);

  // Blocks until every id is sealed; returns their values in order.
  // timeout_ms < 0 waits forever. DeadlineExceeded on expiry, an ObjectLost
  // error (ObjectErrorStatus) for an id that is not in the store, Cancelled
  // once the store is shut down.
  [[nodiscard]] absl::StatusOr<std::vector<Value>> Get(const std::vector<std::string> &ids,
                                                       int timeout_ms);

  // Blocks until `num_objects` of `ids` are sealed or the timeout passed;
  // returns which are sealed. Unknown ids count as sealed (Get reports them).
  // Cancelled once the store is shut down.
  [[nodiscard]] absl::StatusOr<std::vector<bool>> Wait(const std::vector<std::string> &ids,
                                                       int num_objects, int timeout_ms);

  // Runs `callback` once every id is sealed or unknown (at once if they all
  // are already). Runs it on the thread that seals the last one.
  void OnSealed(const std::vector<std::string> &ids, std::function<void()> callback);

  // False (and nothing counted) for an id not in the store.
  bool AddReference(const std::string &id);
  void RemoveReference(const std::string &id);

  bool Contains(const std::string &id) const;
  size_t Size() const;

  // Wakes every blocked Get and Wait with an error; later calls fail too.
  void Shutdown();

 private:
  struct Entry {
    bool sealed = false;
    Value value;
    int64_t references = 0;
    std::vector<std::string> contained;
    std::vector<std::function<void()>> on_sealed;
  };

  bool AllSealedLocked(const std::vector<std::string> &ids) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  size_t CountSealedLocked(const std::vector<std::string> &ids) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops one reference; frees entries that reach zero (and, in turn, what
  // they contained). Callbacks of freed entries go to *orphaned.
  void ReleaseLocked(const std::string &id, std::vector<std::function<void()>> *orphaned)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // An entry's id, kept in the table's slot when it is short (object ids
  // are 28 bytes): a lookup then compares within the slot it probes
  // instead of following each candidate's heap string (a cache miss per
  // probe, which Get of a value holding 10,000 refs paid 20,000 times).
  class Key {
   public:
    explicit Key(std::string_view id);
    std::string_view view() const {
      return size_ <= kInlineBytes ? std::string_view(inline_, size_) : std::string_view(long_);
    }

   private:
    static constexpr size_t kInlineBytes = 32;
    uint32_t size_;
    char inline_[kInlineBytes];
    std::string long_;  // longer ids (none of the runtimes makes one)
  };
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return absl::Hash<std::string_view>()(id); }
    size_t operator()(const Key &key) const { return (*this)(key.view()); }
  };
  struct KeyEq {
    using is_transparent = void;
    static std::string_view View(std::string_view id) { return id; }
    static std::string_view View(const Key &key) { return key.view(); }
    template <typename A, typename B>
    bool operator()(const A &a, const B &b) const {
      return View(a) == View(b);
    }
  };

  mutable absl::Mutex mu_;
  absl::CondVar sealed_cv_;
  absl::flat_hash_map<Key, Entry, KeyHash, KeyEq> entries_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sunray
