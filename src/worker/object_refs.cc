// The cluster runtime's objects: puts (inline, or in the node store),
// sealing results, and Get and Wait. Reference counting (local refs,
// borrowing, the owner's borrowers) is the ReferenceCounter's.
#include <algorithm>

#include "absl/random/random.h"
#include "ray/api/logging.h"
#include "ray/api/ray_exception.h"
#include "src/core/execution_context.h"
#include "src/rpc/frame_loop.h"
#include "src/worker/runtime_state.h"
#include "src/worker/task_stream.h"

namespace sunray {

using ray::internal::RayException;

namespace {

// Puts count their index from here so they never collide with returns.
constexpr uint32_t kFirstPutIndex = 1u << 31;

// Put ids are the running task's id and a per-process index. A retry of a
// task in another worker must not draw the ids its earlier attempt drew
// (that attempt's objects may still be in the store), so each process starts
// its index at a random place; should an id be taken all the same, the put
// draws a new place. Nobody knows a put's id before it returns.
constexpr int kPutIdAttempts = 8;
constexpr uint32_t kPutIndexRange = 1u << 30;  // leaves 2^30 puts per process
bool TakenByAnEarlierAttempt(const absl::Status &status) {
  return absl::IsAlreadyExists(status) || absl::IsAborted(status);
}
template <typename T>
bool TakenByAnEarlierAttempt(const absl::StatusOr<T> &result) {
  return TakenByAnEarlierAttempt(result.status());
}

// Runs `write(*id)` (a store write under put id *id) again under a new id
// from `next_id` while an earlier attempt of the task took the id.
template <typename Write, typename NextId>
auto WriteUnderFreePutId(std::string *id, NextId next_id, Write write) {
  auto result = write(*id);
  for (int attempt = 1; attempt < kPutIdAttempts && TakenByAnEarlierAttempt(result); ++attempt) {
    *id = next_id();
    result = write(*id);
  }
  return result;
}

// A value read in place from the node's shared-memory store; pins it.
class StoreViewObject : public ray::internal::ObjectBuffer {
 public:
  explicit StoreViewObject(std::shared_ptr<StoreClient::ObjectView> view)
      : view_(std::move(view)) {}
  const char *Data() const override { return view_->data(); }
  size_t Size() const override { return view_->size(); }

 private:
  std::shared_ptr<StoreClient::ObjectView> view_;
};

// Runs a release action from the destructor of the last copy of an object's
// value (never under the memory store's lock: the action is deferred).
class FreeHook {
 public:
  FreeHook(std::shared_ptr<FreeTarget> target, std::function<void()> action)
      : target_(std::move(target)), action_(std::move(action)) {}
  ~FreeHook();

 private:
  std::shared_ptr<FreeTarget> target_;
  std::function<void()> action_;
};

}  // namespace

FreeHook::~FreeHook() {
  absl::MutexLock lock(&target_->mu);
  if (target_->runtime != nullptr) target_->runtime->RunDeferred(std::move(action_));
}

uint32_t ClusterRuntime::RandomPutIndex() {
  return absl::Uniform<uint32_t>(absl::BitGen(), 0, kPutIndexRange);
}

std::string ClusterRuntime::NewRandomPutId() {
  put_index_ = RandomPutIndex();
  return NewPutId();
}

std::string ClusterRuntime::NewPutId() {
  const ExecutionContext *context = CurrentExecutionContext();
  const TaskID task = context != nullptr ? context->task_id : driver_task_id_;
  return ObjectID::ForTask(task, kFirstPutIndex + put_index_.fetch_add(1)).Binary();
}

std::shared_ptr<void> ClusterRuntime::MakeFreeHook(const std::string &id, bool in_node_store,
                                                   std::vector<std::string> borrowed_contained) {
  if (!in_node_store && borrowed_contained.empty()) return nullptr;
  return std::make_shared<FreeHook>(
      free_target_, [this, id, in_node_store, borrowed = std::move(borrowed_contained)] {
        if (in_node_store) {
          {
            absl::MutexLock lock(&mu_);
            in_store_owned_.erase(id);
          }
          (void)store_->Delete({ObjectID::FromBinary(id)});
        }
        for (const auto &inner : borrowed) RemoveLocalReference(inner);
      });
}

std::string ClusterRuntime::Put(std::shared_ptr<msgpack::sbuffer> data,
                                const std::vector<std::string> &contained_ids) {
  std::string id = NewPutId();
  MemoryStore::Value value;
  const bool large = data->size() > kMaxInlineObjectBytes;
  if (large) {
    const absl::Status stored = WriteUnderFreePutId(
        &id, [this] { return NewRandomPutId(); },
        [&](const std::string &at) {
          return store_->Put(ObjectID::FromBinary(at), std::string_view(data->data(), data->size()),
                             {}, my_address_);
        });
    if (!stored.ok()) {
      throw RayException("Put failed: " + std::string(stored.message()));
    }
  } else {
    value.data = std::make_shared<SharedSbufferObject>(std::move(data));
  }
  return RegisterPut(id, std::move(value), large, contained_ids);
}

std::string ClusterRuntime::PutDirect(size_t size, const std::function<void(char *)> &write,
                                      const std::vector<std::string> &contained_ids) {
  if (size <= kMaxInlineObjectBytes) return {};
  std::string id = NewPutId();
  auto destination = WriteUnderFreePutId(
      &id, [this] { return NewRandomPutId(); },
      [&](const std::string &at) {
        return store_->Create(ObjectID::FromBinary(at), size, 0, my_address_);
      });
  const ObjectID object = ObjectID::FromBinary(id);
  if (!destination.ok()) {
    throw RayException("Put failed: " + std::string(destination.status().message()));
  }
  try {
    write(*destination);
  } catch (...) {
    (void)store_->Seal(object);  // then gone: nobody refers to it
    (void)store_->Delete({object});
    throw;
  }
  absl::Status sealed = store_->Seal(object);
  if (!sealed.ok()) throw RayException("Put failed: " + std::string(sealed.message()));
  return RegisterPut(id, MemoryStore::Value(), /*large=*/true, contained_ids);
}

std::string ClusterRuntime::RegisterPut(const std::string &id, MemoryStore::Value value,
                                        bool in_store,
                                        const std::vector<std::string> &contained_ids) {
  if (in_store) {
    absl::MutexLock lock(&mu_);
    in_store_owned_.insert(id);
    value.in_node_store = true;
  }
  std::vector<std::string> owned_contained, borrowed_contained;
  for (const auto &inner : contained_ids) {
    if (Owns(inner)) {
      owned_contained.push_back(inner);
    } else {
      AddLocalReference(inner);  // the value holds the borrow
      borrowed_contained.push_back(inner);
    }
  }
  value.on_free = MakeFreeHook(id, in_store, std::move(borrowed_contained));
  owned_.CreatePending(id);
  if (!owned_.Seal(id, std::move(value), owned_contained)) {
    throw RayException("Put failed: Sunray is shutting down.");
  }
  return id;
}

void ClusterRuntime::SealFromProto(const std::string &id, const proto::ObjectValue &value) {
  MemoryStore::Value sealed;
  std::vector<std::string> owned_contained, borrowed_contained;
  if (value.is_error()) {
    sealed.error = std::make_shared<ErrorInfo>(ErrorFromProto(value.error()));
  } else {
    // Each contained ref arrives with one registration made for us by the
    // worker (see ResultToProto).
    for (const auto &inner : value.contained()) {
      if (inner.owner_address().empty()) continue;  // no owner known: nothing to hold
      if (inner.owner_address() == my_address_) {
        owned_contained.push_back(inner.object_id());
      } else if (inner.lost_reason().empty()) {
        refs_->AddBorrowed(inner.object_id(), inner.owner_address(), 1);
        borrowed_contained.push_back(inner.object_id());
      } else {
        refs_->AddBorrowed(inner.object_id(), inner.owner_address(), 0);
        refs_->MarkBorrowedLost(inner.object_id(), inner.lost_reason());
        borrowed_contained.push_back(inner.object_id());
      }
    }
    if (value.in_store()) {
      sealed.in_node_store = true;
      absl::MutexLock lock(&mu_);
      in_store_owned_.insert(id);
    } else {
      sealed.data = std::make_shared<StringBuffer>(value.data());
    }
  }
  sealed.on_free = MakeFreeHook(id, sealed.in_node_store, std::move(borrowed_contained));
  owned_.Seal(id, std::move(sealed), owned_contained);
  // The worker's registrations on our own objects now live as the value's
  // references.
  for (const auto &inner : owned_contained) owned_.RemoveReference(inner);
}

void ClusterRuntime::OwnedValueToProto(const std::string &id, proto::ObjectValue *out) {
  std::vector<MemoryStore::Value> values;
  try {
    values = owned_.Get({id}, 0);
  } catch (const RayException &e) {
    out->set_is_error(true);
    ErrorToProto(ErrorInfo{ErrorType::kObjectLost, e.what(), "", "", ""}, out->mutable_error());
    return;
  }
  const MemoryStore::Value &value = values[0];
  if (value.error) {
    out->set_is_error(true);
    ErrorToProto(*value.error, out->mutable_error());
  } else if (value.in_node_store) {
    out->set_in_store(true);
  } else {
    out->set_data(value.data->Data(), value.data->Size());
  }
}

void ClusterRuntime::AddLocalReference(const std::string &id) { refs_->AddLocalReference(id); }

void ClusterRuntime::RemoveLocalReference(const std::string &id) {
  refs_->RemoveLocalReference(id);
}

std::string ClusterRuntime::GetOwnershipInfo(const std::string &id) { return refs_->OwnerOf(id); }

void ClusterRuntime::AddBorrowedReference(const std::string &id, const std::string &owner_info) {
  refs_->AddBorrowedReference(id, owner_info);
}

// Counts ready objects for one Get or Wait.
struct ClusterRuntime::Waiter {
  absl::Mutex mu;
  absl::CondVar changed;
  size_t ready ABSL_GUARDED_BY(mu) = 0;
  std::vector<bool> done ABSL_GUARDED_BY(mu);
  // Set while the waiting thread reads a task stream itself.
  rpc::ReadWaker *reading ABSL_GUARDED_BY(mu) = nullptr;

  bool Enough(size_t num) {
    absl::MutexLock lock(&mu);
    return ready >= num;
  }
};

std::vector<bool> ClusterRuntime::WaitReady(const std::vector<std::string> &ids, size_t num,
                                            int timeout_ms) {
  auto waiter = std::make_shared<Waiter>();
  {
    absl::MutexLock lock(&waiter->mu);
    waiter->done.assign(ids.size(), false);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    auto mark = [waiter, i] {
      absl::MutexLock lock(&waiter->mu);
      if (waiter->done[i]) return;
      waiter->done[i] = true;
      ++waiter->ready;
      waiter->changed.Signal();
      if (waiter->reading != nullptr) waiter->reading->Wake();
    };
    if (refs_->IsBorrowed(ids[i])) {
      refs_->FetchBorrowed(ids[i], std::move(mark));
    } else {
      owned_.OnSealed({ids[i]}, std::move(mark));  // unknown ids count as ready
    }
  }
  const absl::Time deadline =
      timeout_ms < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(timeout_ms);
  if (!waiter->Enough(num)) {
    BlockedScope blocked(this);
    if (timeout_ms != 0) ReadAnswersHere(*waiter, num, deadline);
    absl::MutexLock lock(&waiter->mu);
    while (waiter->ready < num) {
      if (waiter->changed.WaitWithDeadline(&waiter->mu, deadline)) break;
    }
  }
  absl::MutexLock lock(&waiter->mu);
  return waiter->done;
}

void ClusterRuntime::ReadAnswersHere(Waiter &waiter, size_t num, absl::Time deadline) {
  // The stream this thread sent its last tasks on most likely brings what
  // it waits for (a synchronous call: the one task it just sent). Reading
  // it here saves waking the loop thread and then this one; should the
  // answer come another way, the mark above wakes this thread.
  std::shared_ptr<rpc::FrameConnection> stream = TaskStreamClient::LastSentFromThisThread();
  if (stream == nullptr) return;
  rpc::ReadWaker &waker = rpc::ReadWaker::ForThisThread();
  {
    absl::MutexLock lock(&waiter.mu);
    waiter.reading = &waker;
  }
  while (!waiter.Enough(num)) {
    const auto read = stream->ReadHere(waker, deadline, [&] { return waiter.Enough(num); });
    if (read != rpc::FrameConnection::ReadHereResult::kWoken) break;
  }
  absl::MutexLock lock(&waiter.mu);
  waiter.reading = nullptr;
}

std::shared_ptr<ray::internal::ObjectBuffer> ClusterRuntime::ReadNodeStore(const std::string &id) {
  auto view = store_->Get(ObjectID::FromBinary(id));
  if (!view.ok()) {
    ThrowObjectError(ErrorInfo{ErrorType::kObjectLost,
                               "Object " + BinaryToHex(id) +
                                   " is lost: it is not in the node's object store (" +
                                   std::string(view.status().message()) + ").",
                               "", "", ""});
  }
  return std::make_shared<StoreViewObject>(std::move(*view));
}

std::shared_ptr<ray::internal::ObjectBuffer> ClusterRuntime::ReadValue(const std::string &id) {
  if (std::optional<proto::ObjectValue> borrowed = refs_->BorrowedValue(id)) {
    if (borrowed->is_error()) ThrowObjectError(ErrorFromProto(borrowed->error()));
    if (borrowed->in_store()) return ReadNodeStore(id);
    return std::make_shared<StringBuffer>(std::move(*borrowed->mutable_data()));
  }
  MemoryStore::Value value = owned_.Get({id}, 0).at(0);  // throws for unknown ids
  if (value.error) ThrowObjectError(*value.error);
  if (value.in_node_store) return ReadNodeStore(id);
  return value.data;
}

std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> ClusterRuntime::Get(
    const std::vector<std::string> &ids, int timeout_ms) {
  std::vector<bool> ready = WaitReady(ids, ids.size(), timeout_ms);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ready[i]) {
      throw ray::internal::RayTimeoutException("Get timed out: object " + BinaryToHex(ids[i]) +
                                               " was not ready within " +
                                               std::to_string(timeout_ms) + " ms.");
    }
  }
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> buffers;
  buffers.reserve(ids.size());
  for (const auto &id : ids) buffers.push_back(ReadValue(id));
  return buffers;
}

std::vector<bool> ClusterRuntime::Wait(const std::vector<std::string> &ids, int num_objects,
                                       int timeout_ms) {
  return WaitReady(ids, static_cast<size_t>(std::max(num_objects, 0)), timeout_ms);
}

}  // namespace sunray
