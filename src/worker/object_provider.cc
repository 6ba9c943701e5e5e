#include "src/worker/object_provider.h"

#include <algorithm>

#include "absl/random/random.h"
#include "src/common/log.h"
#include "src/core/execution_context.h"
#include "src/objstore/store_client.h"
#include "src/rpc/frame_loop.h"
#include "src/worker/task_stream.h"

namespace sunray {

namespace {

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("worker.objects"));
  return **logger;
}

// A put the node store refused, with its reason (and code).
absl::Status PutFailed(const absl::Status &why) {
  return absl::Status(why.code(), "Put failed: " + std::string(why.message()));
}

// Cleanup that may fail without harm to the caller, which is failing
// already: logged, not dropped.
void LogIfFailed(const absl::Status &status, const char *what, const std::string &id) {
  if (!status.ok()) {
    Logger().warn("could not {} {}: {}", what, BinaryToHex(id), status.message());
  }
}

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

class StoreClientNodeStore : public NodeStore {
 public:
  explicit StoreClientNodeStore(StoreClient *client) : client_(client) {}
  absl::Status Put(const ObjectID &id, std::string_view data, const std::string &owner) override {
    return client_->Put(id, data, {}, owner);
  }
  absl::Status PutIdempotent(const ObjectID &id, std::string_view data,
                             const std::string &owner) override {
    return client_->PutIdempotent(id, data, owner);
  }
  absl::StatusOr<char *> Create(const ObjectID &id, size_t size,
                                const std::string &owner) override {
    return client_->Create(id, size, 0, owner);
  }
  absl::Status Seal(const ObjectID &id) override { return client_->Seal(id); }
  absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> Get(const ObjectID &id) override {
    auto view = client_->Get(id);
    if (!view.ok()) return view.status();
    return std::make_shared<StoreViewObject>(std::move(*view));
  }
  absl::Status Delete(const std::vector<ObjectID> &ids) override { return client_->Delete(ids); }

 private:
  StoreClient *const client_;
};

}  // namespace

std::unique_ptr<NodeStore> NodeStoreOf(StoreClient *client) {
  return std::make_unique<StoreClientNodeStore>(client);
}

// Where an owned object's free actions go until Shutdown, nowhere after
// (values may outlive the provider inside the memory store).
struct ObjectProvider::DeferTarget {
  absl::Mutex mu;
  Defer defer ABSL_GUARDED_BY(mu);
  std::function<void(const std::string &)> result_freed ABSL_GUARDED_BY(mu);
};

namespace {

// Runs what must happen when an object is freed, from the destructor of the
// last copy of its value, unless the provider was shut down: `result_freed`
// of `report` at once (when set), `later` deferred (never under the memory
// store's lock).
template <typename Target>
class FreeHook {
 public:
  FreeHook(std::shared_ptr<Target> target, std::string report, std::function<void()> later)
      : target_(std::move(target)), report_(std::move(report)), later_(std::move(later)) {}
  ~FreeHook() {
    absl::MutexLock lock(&target_->mu);
    if (!report_.empty() && target_->result_freed) target_->result_freed(report_);
    if (later_ && target_->defer) target_->defer(std::move(later_));
  }

 private:
  std::shared_ptr<Target> target_;
  std::string report_;  // empty: none
  std::function<void()> later_;
};

}  // namespace

ObjectProvider::ObjectProvider(Options options, MemoryStore *owned, ReferenceCounter *refs,
                               NodeStore *node_store, RemoteStores *remote)
    : options_(std::move(options)),
      owned_(owned),
      refs_(refs),
      node_store_(node_store),
      remote_(remote),
      defer_target_(std::make_shared<DeferTarget>()),
      put_index_(RandomPutIndex()) {
  absl::MutexLock lock(&defer_target_->mu);
  defer_target_->defer = options_.defer;
  defer_target_->result_freed = options_.result_freed;
}

uint32_t ObjectProvider::RandomPutIndex() {
  return absl::Uniform<uint32_t>(absl::BitGen(), 0, kPutIndexRange);
}

std::string ObjectProvider::NewRandomPutId() {
  put_index_ = RandomPutIndex();
  return NewPutId();
}

std::string ObjectProvider::NewPutId() {
  const ExecutionContext *context = CurrentExecutionContext();
  const TaskID task = context != nullptr ? context->task_id : options_.driver_task_id;
  return ObjectID::ForTask(task, kFirstPutIndex + put_index_.fetch_add(1)).Binary();
}

std::shared_ptr<void> ObjectProvider::MakeFreeHook(const std::string &id, bool in_node_store,
                                                   std::vector<std::string> borrowed_contained,
                                                   bool result) {
  std::string report = result && options_.result_freed ? id : std::string();
  if (!in_node_store && borrowed_contained.empty()) {
    if (report.empty()) return nullptr;
    return std::make_shared<FreeHook<DeferTarget>>(defer_target_, std::move(report), nullptr);
  }
  return std::make_shared<FreeHook<DeferTarget>>(
      defer_target_, std::move(report),
      [this, id, in_node_store, borrowed = std::move(borrowed_contained)] {
        if (in_node_store) {
          std::map<std::string, std::vector<std::string>> by_node;
          {
            absl::MutexLock lock(&mu_);
            auto it = copies_.find(id);
            if (it != copies_.end()) {
              for (const auto &node : it->second) by_node[node].push_back(id);
              copies_.erase(it);
            }
          }
          DeleteCopies(by_node);
        }
        for (const auto &inner : borrowed) refs_->RemoveLocalReference(inner);
      });
}

void ObjectProvider::DeleteCopies(
    const std::map<std::string, std::vector<std::string>> &by_node) const {
  for (const auto &[node, ids] : by_node) {
    if (node == options_.node_address || remote_ == nullptr) {
      std::vector<ObjectID> here;
      for (const auto &id : ids) here.push_back(ObjectID::FromBinary(id));
      if (absl::Status deleted = node_store_->Delete(here); !deleted.ok()) {
        Logger().warn("could not delete {} freed object(s) from the node store: {}", ids.size(),
                      deleted.message());
      }
    } else {
      remote_->Delete(node, ids);
    }
  }
}

bool ObjectProvider::AddLocation(const std::string &id, const std::string &node_address) {
  absl::MutexLock lock(&mu_);
  auto it = copies_.find(id);
  if (it == copies_.end()) return false;
  if (std::find(it->second.begin(), it->second.end(), node_address) == it->second.end()) {
    it->second.push_back(node_address);
  }
  return true;
}

absl::StatusOr<std::string> ObjectProvider::Put(std::shared_ptr<msgpack::sbuffer> data,
                                                const std::vector<std::string> &contained_ids) {
  std::string id = NewPutId();
  MemoryStore::Value value;
  const bool large = data->size() > kMaxInlineObjectBytes;
  if (large) {
    const absl::Status stored = WriteUnderFreePutId(
        &id, [this] { return NewRandomPutId(); },
        [&](const std::string &at) {
          return node_store_->Put(ObjectID::FromBinary(at),
                                  std::string_view(data->data(), data->size()),
                                  options_.my_address);
        });
    if (!stored.ok()) return PutFailed(stored);
  } else {
    value.data = std::make_shared<SharedSbufferObject>(std::move(data));
  }
  return RegisterPut(id, std::move(value), large, contained_ids);
}

absl::StatusOr<std::string> ObjectProvider::PutDirect(
    size_t size, const std::function<void(char *)> &write,
    const std::vector<std::string> &contained_ids) {
  if (size <= kMaxInlineObjectBytes) return std::string();
  std::string id = NewPutId();
  auto destination = WriteUnderFreePutId(
      &id, [this] { return NewRandomPutId(); },
      [&](const std::string &at) {
        return node_store_->Create(ObjectID::FromBinary(at), size, options_.my_address);
      });
  const ObjectID object = ObjectID::FromBinary(id);
  if (!destination.ok()) return PutFailed(destination.status());
  try {
    write(*destination);
  } catch (...) {
    // Then gone: nobody refers to it (the user's exception goes on).
    LogIfFailed(node_store_->Seal(object), "seal the unfinished put", id);
    LogIfFailed(node_store_->Delete({object}), "delete the unfinished put", id);
    throw;
  }
  absl::Status sealed = node_store_->Seal(object);
  if (!sealed.ok()) {
    LogIfFailed(node_store_->Delete({object}), "delete the put that did not seal", id);
    return PutFailed(sealed);
  }
  return RegisterPut(id, MemoryStore::Value(), /*in_store=*/true, contained_ids);
}

absl::StatusOr<std::string> ObjectProvider::RegisterPut(
    const std::string &id, MemoryStore::Value value, bool in_store,
    const std::vector<std::string> &contained_ids) {
  if (in_store) {
    absl::MutexLock lock(&mu_);
    copies_[id] = {options_.node_address};
    value.in_node_store = true;
  }
  std::vector<std::string> owned_contained, borrowed_contained;
  for (const auto &inner : contained_ids) {
    if (Owns(inner)) {
      owned_contained.push_back(inner);
    } else {
      refs_->AddLocalReference(inner);  // the value holds the borrow
      borrowed_contained.push_back(inner);
    }
  }
  value.on_free = MakeFreeHook(id, in_store, std::move(borrowed_contained));
  owned_->CreatePending(id);
  if (!owned_->Seal(id, std::move(value), owned_contained)) {
    return absl::CancelledError("Put failed: Sunray is shutting down.");
  }
  return id;
}

bool ObjectProvider::SealFromProto(const std::string &id, const proto::ObjectValue &value,
                                   bool report_free) {
  MemoryStore::Value sealed;
  std::vector<std::string> owned_contained, borrowed_contained;
  if (value.is_error()) {
    sealed.error = std::make_shared<ErrorInfo>(ErrorFromProto(value.error()));
  } else {
    // Each contained ref arrives with one registration made for us by the
    // worker (see ClusterRuntime::Encode).
    for (const auto &inner : value.contained()) {
      if (inner.owner_address().empty()) continue;  // no owner known: nothing to hold
      if (inner.owner_address() == options_.my_address) {
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
      copies_[id] = {value.node_address().empty() ? options_.node_address : value.node_address()};
    } else {
      sealed.data = std::make_shared<StringObject>(value.data());
    }
  }
  sealed.on_free = MakeFreeHook(id, sealed.in_node_store, std::move(borrowed_contained),
                                /*result=*/report_free && !value.is_error());
  const bool kept = owned_->Seal(id, std::move(sealed), owned_contained);
  // The worker's registrations on our own objects now live as the value's
  // references.
  for (const auto &inner : owned_contained) owned_->RemoveReference(inner);
  return kept;
}

void ObjectProvider::OwnedValueToProto(const std::string &id, proto::ObjectValue *out) const {
  absl::StatusOr<std::vector<MemoryStore::Value>> values = owned_->Get({id}, 0);
  if (!values.ok()) {
    out->set_is_error(true);
    ErrorToProto(
        ErrorInfo{ErrorType::kObjectLost, std::string(values.status().message()), "", "", ""},
        out->mutable_error());
    return;
  }
  const MemoryStore::Value &value = values->at(0);
  if (value.error) {
    out->set_is_error(true);
    ErrorToProto(*value.error, out->mutable_error());
  } else if (value.in_node_store) {
    out->set_in_store(true);
    out->set_owner_address(options_.my_address);
    absl::MutexLock lock(&mu_);
    auto it = copies_.find(id);
    if (it == copies_.end() || it->second.empty()) {
      out->set_node_address(options_.node_address);
    } else {
      out->set_node_address(it->second.front());
      for (size_t i = 1; i < it->second.size(); ++i) {
        out->add_other_node_addresses(it->second[i]);
      }
    }
  } else {
    out->set_data(value.data->Data(), value.data->Size());
  }
}

// Counts ready objects for one Get or Wait.
struct ObjectProvider::Waiter {
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

std::vector<bool> ObjectProvider::WaitReady(const std::vector<std::string> &ids, size_t num,
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
      owned_->OnSealed({ids[i]}, std::move(mark));  // unknown ids count as ready
    }
  }
  const absl::Time deadline =
      timeout_ms < 0 ? absl::InfiniteFuture() : absl::Now() + absl::Milliseconds(timeout_ms);
  if (!waiter->Enough(num)) {
    std::shared_ptr<void> blocked = options_.blocking ? options_.blocking() : nullptr;
    if (timeout_ms != 0) ReadAnswersHere(*waiter, num, deadline);
    absl::MutexLock lock(&waiter->mu);
    while (waiter->ready < num) {
      if (waiter->changed.WaitWithDeadline(&waiter->mu, deadline)) break;
    }
  }
  absl::MutexLock lock(&waiter->mu);
  return waiter->done;
}

void ObjectProvider::ReadAnswersHere(Waiter &waiter, size_t num, absl::Time deadline) {
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

std::vector<std::string> ObjectProvider::Holders(const proto::ObjectValue &value) {
  std::vector<std::string> holders;
  if (!value.node_address().empty()) holders.push_back(value.node_address());
  holders.insert(holders.end(), value.other_node_addresses().begin(),
                 value.other_node_addresses().end());
  return holders;
}

absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> ObjectProvider::ReadNodeStore(
    const std::string &id, const std::vector<std::string> &from, const std::string &owner) const {
  auto view = node_store_->Get(ObjectID::FromBinary(id));
  std::string failures;  // "node A (why); node B (why)"
  bool tried = false;
  for (const std::string &holder : from) {
    if (!absl::IsNotFound(view.status()) || remote_ == nullptr) break;
    if (holder.empty() || holder == options_.node_address) continue;
    // Held by another node: this node pulls a copy first; a holder that
    // cannot serve it (it died) gives way to the next copy.
    tried = true;
    absl::Status pulled = remote_->Pull(id, holder, owner);
    if (!pulled.ok()) {
      failures +=
          (failures.empty() ? "" : "; ") + holder + " (" + std::string(pulled.message()) + ")";
      continue;
    }
    view = node_store_->Get(ObjectID::FromBinary(id));
  }
  if (tried && !view.ok() && !failures.empty()) {
    return ObjectErrorStatus(ErrorInfo{ErrorType::kObjectLost,
                                       "Object " + BinaryToHex(id) +
                                           " is lost: it could not be pulled from node " +
                                           failures + ".",
                                       "", "", ""});
  }
  if (!view.ok()) {
    return ObjectErrorStatus(ErrorInfo{ErrorType::kObjectLost,
                                       "Object " + BinaryToHex(id) +
                                           " is lost: it is not in the node's object store (" +
                                           std::string(view.status().message()) + ").",
                                       "", "", ""});
  }
  return std::move(*view);
}

absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> ObjectProvider::ReadValue(
    const std::string &id) {
  if (std::optional<proto::ObjectValue> borrowed = refs_->BorrowedValue(id)) {
    if (borrowed->is_error()) return ObjectErrorStatus(ErrorFromProto(borrowed->error()));
    if (borrowed->in_store()) {
      return ReadNodeStore(id, Holders(*borrowed), borrowed->owner_address());
    }
    return std::make_shared<StringObject>(std::move(*borrowed->mutable_data()));
  }
  absl::StatusOr<std::vector<MemoryStore::Value>> values = owned_->Get({id}, 0);
  if (!values.ok()) return values.status();  // e.g. an id not in the store
  MemoryStore::Value &value = values->at(0);
  if (value.error) return ObjectErrorStatus(*value.error);
  if (value.in_node_store) {
    std::vector<std::string> from;
    {
      absl::MutexLock lock(&mu_);
      auto it = copies_.find(id);
      if (it != copies_.end()) from = it->second;
    }
    return ReadNodeStore(id, from, options_.my_address);
  }
  return std::move(value.data);
}

absl::StatusOr<std::vector<std::shared_ptr<ray::internal::ObjectBuffer>>> ObjectProvider::Get(
    const std::vector<std::string> &ids, int timeout_ms) {
  std::vector<bool> ready = WaitReady(ids, ids.size(), timeout_ms);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!ready[i]) {
      return absl::DeadlineExceededError("Get timed out: object " + BinaryToHex(ids[i]) +
                                         " was not ready within " + std::to_string(timeout_ms) +
                                         " ms.");
    }
  }
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> buffers;
  buffers.reserve(ids.size());
  for (const auto &id : ids) {
    absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> value = ReadValue(id);
    if (!value.ok()) return value.status();
    buffers.push_back(*std::move(value));
  }
  return buffers;
}

std::vector<bool> ObjectProvider::Wait(const std::vector<std::string> &ids, int num_objects,
                                       int timeout_ms) {
  return WaitReady(ids, static_cast<size_t>(std::max(num_objects, 0)), timeout_ms);
}

void ObjectProvider::Shutdown() {
  {
    absl::MutexLock lock(&defer_target_->mu);
    defer_target_->defer = nullptr;
    defer_target_->result_freed = nullptr;
  }
  // Objects this process put in node stores go with it.
  std::map<std::string, std::vector<std::string>> by_node;
  {
    absl::MutexLock lock(&mu_);
    for (const auto &[id, nodes] : copies_) {
      for (const auto &node : nodes) by_node[node].push_back(id);
    }
    copies_.clear();
  }
  DeleteCopies(by_node);
}

size_t ObjectProvider::NodeStoreCopies() const {
  absl::MutexLock lock(&mu_);
  return copies_.size();
}

}  // namespace sunray
