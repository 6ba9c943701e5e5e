#include "src/node/object_transfer.h"

#include <algorithm>
#include <cstring>

#include "src/common/log.h"
#include "src/rpc/rpc.h"
#include "worker.grpc.pb.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

// This file's logger.
spdlog::logger &Logger() {
  static const auto *logger = new std::shared_ptr<spdlog::logger>(log::Get("node.transfer"));
  return **logger;
}

// One chunk's bytes at most in flight per fetch; a whole object's worth of
// time to arrive (a slow link gets long; a dead one errors at once).
constexpr milliseconds kFetchTimeout{10 * 60 * 1000};
constexpr milliseconds kOwnerTimeout{5000};

}  // namespace

// --- Serving ----------------------------------------------------------------

namespace {

class ObjectWriter final : public grpc::ServerWriteReactor<proto::ObjectChunk> {
 public:
  ObjectWriter(ObjectStore &store, const ObjectID &id, uint64_t chunk_bytes)
      : store_(store), id_(id), chunk_bytes_(chunk_bytes) {
    absl::StatusOr<ObjectStore::Location> pinned = store_.Get(id_, kNodeStoreClient);
    if (!pinned.ok()) {
      Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "object " + id_.Hex() + " is not in this node's store (" +
                              std::string(pinned.status().message()) + ")"));
      return;
    }
    pinned_ = true;
    location_ = *pinned;
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the reader went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override {
    if (pinned_) (void)store_.Release(id_, kNodeStoreClient);
    delete this;
  }

 private:
  void WriteNext() {
    const uint64_t total = location_.data_size + location_.metadata_size;
    if (sent_ > 0 && sent_ >= total) {
      Finish(grpc::Status::OK);
      return;
    }
    const uint64_t length = std::min<uint64_t>(chunk_bytes_, total - sent_);
    chunk_.Clear();
    chunk_.set_data_size(location_.data_size);
    chunk_.set_metadata_size(location_.metadata_size);
    chunk_.set_offset(sent_);
    chunk_.set_data(store_.segment().base() + location_.offset + sent_, length);
    // An empty object is one empty chunk.
    sent_ += std::max<uint64_t>(length, 1);
    StartWrite(&chunk_);
  }

  ObjectStore &store_;
  const ObjectID id_;
  const uint64_t chunk_bytes_;
  bool pinned_ = false;
  ObjectStore::Location location_;
  uint64_t sent_ = 0;
  proto::ObjectChunk chunk_;  // being written
};

}  // namespace

grpc::ServerWriteReactor<proto::ObjectChunk> *ServeObject(ObjectStore &store, const ObjectID &id,
                                                          uint64_t chunk_bytes) {
  return new ObjectWriter(store, id, chunk_bytes == 0 ? 4 << 20 : chunk_bytes);
}

// --- Pulling ----------------------------------------------------------------

ObjectPuller::ObjectPuller(Options options, ObjectStore &store)
    : options_(std::move(options)), store_(store) {
  store_.AddClient(kNodeStoreClient);
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { Loop(); });
  }
}

ObjectPuller::~ObjectPuller() { Stop(); }

void ObjectPuller::Stop() {
  std::vector<Done> cancelled;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (grpc::ClientContext *fetch : fetching_) fetch->TryCancel();
    for (const ObjectID &id : queue_) {
      auto it = pending_.find(id);
      if (it == pending_.end()) continue;
      for (auto &done : it->second.waiters) cancelled.push_back(std::move(done));
      pending_.erase(it);
    }
    queue_.clear();
  }
  for (auto &done : cancelled) done(absl::CancelledError("the node is stopping"));
  for (auto &thread : threads_) thread.join();
}

void ObjectPuller::SetNodeAddress(std::string address) {
  absl::MutexLock lock(&mu_);
  node_address_ = std::move(address);
}

void ObjectPuller::Pull(const ObjectID &id, const std::string &from, const std::string &owner,
                        Done done) {
  if (store_.ContainsSealed(id)) {
    done(absl::OkStatus());
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) {
      auto [it, added] = pending_.try_emplace(id);
      it->second.waiters.push_back(std::move(done));
      if (added) {
        it->second.from = from;
        it->second.owner = owner;
        queue_.push_back(id);
      }
      return;
    }
  }
  done(absl::CancelledError("the node is stopping"));
}

void ObjectPuller::Loop() {
  while (true) {
    ObjectID id;
    std::string from, owner;
    {
      absl::MutexLock lock(&mu_);
      auto due = [this]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&due));
      if (stopping_) return;
      id = queue_.front();
      queue_.pop_front();
      from = pending_.at(id).from;
      owner = pending_.at(id).owner;
    }
    const absl::Status pulled = Fetch(id, from, owner);
    if (!pulled.ok()) {
      Logger().warn("could not pull object {} from {}: {}", id.Hex(), from, pulled.message());
    }
    std::vector<Done> waiters;
    {
      absl::MutexLock lock(&mu_);
      auto it = pending_.find(id);
      if (it != pending_.end()) {
        waiters = std::move(it->second.waiters);
        pending_.erase(it);
      }
    }
    for (auto &done : waiters) done(pulled);
  }
}

absl::StatusOr<ObjectStore::Location> ObjectPuller::CreateWithRoom(const ObjectID &id,
                                                                   uint64_t data_size,
                                                                   uint64_t metadata_size,
                                                                   const std::string &owner) {
  const absl::Time give_up = absl::Now() + options_.room_timeout;
  absl::Duration pause = absl::Milliseconds(10);
  while (true) {
    absl::StatusOr<ObjectStore::Location> created =
        store_.CreateObject(id, data_size, metadata_size, kNodeStoreClient, owner);
    // Full (it waits for room) or being written by another (it waits for
    // that copy): both may clear up.
    if (created.ok() ||
        !(absl::IsResourceExhausted(created.status()) || absl::IsAborted(created.status()))) {
      return created;
    }
    if (absl::Now() + pause > give_up) {
      return absl::DeadlineExceededError("no room for it in this node's store within " +
                                         absl::FormatDuration(options_.room_timeout) + ": " +
                                         std::string(created.status().message()));
    }
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
    if (mu_.AwaitWithTimeout(absl::Condition(&stopping), pause)) {
      return absl::CancelledError("the node is stopping");
    }
    pause = std::min(pause * 2, absl::Milliseconds(500));
  }
}

absl::Status ObjectPuller::Fetch(const ObjectID &id, const std::string &from,
                                 const std::string &owner) {
  auto stub = proto::NodeService::NewStub(rpc::MakeChannel(from));
  auto context = rpc::MakeClientContext(options_.token, kFetchTimeout);
  proto::FetchObjectRequest request;
  request.set_object_id(id.Binary());
  request.set_chunk_bytes(options_.chunk_bytes);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::CancelledError("the node is stopping");
    fetching_.insert(context.get());
  }
  struct Unregister {
    ObjectPuller *puller;
    grpc::ClientContext *context;
    ~Unregister() {
      absl::MutexLock lock(&puller->mu_);
      puller->fetching_.erase(context);
    }
  } unregister{this, context.get()};
  std::unique_ptr<grpc::ClientReader<proto::ObjectChunk>> reader =
      stub->FetchObject(context.get(), request);
  proto::ObjectChunk chunk;
  bool created = false;
  ObjectStore::Location location;
  uint64_t total = 0, received = 0;
  absl::Status failed;
  while (reader->Read(&chunk)) {
    if (!created) {
      total = chunk.data_size() + chunk.metadata_size();
      absl::StatusOr<ObjectStore::Location> made =
          CreateWithRoom(id, chunk.data_size(), chunk.metadata_size(), owner);
      if (absl::IsAlreadyExists(made.status())) {  // pulled meanwhile another way
        context->TryCancel();
        while (reader->Read(&chunk)) {
        }
        (void)reader->Finish();
        return absl::OkStatus();
      }
      if (!made.ok()) {
        failed = made.status();
        break;
      }
      created = true;
      location = *made;
    }
    if (chunk.data_size() + chunk.metadata_size() != total || chunk.offset() != received ||
        chunk.offset() + chunk.data().size() > total) {
      failed =
          absl::InternalError("node " + from + " sent a chunk of object " + id.Hex() +
                              " that does not fit it (offset " + std::to_string(chunk.offset()) +
                              ", " + std::to_string(chunk.data().size()) + " bytes, object " +
                              std::to_string(total) + " bytes)");
      break;
    }
    std::memcpy(store_.segment().base() + location.offset + chunk.offset(), chunk.data().data(),
                chunk.data().size());
    received += chunk.data().size();
  }
  if (!failed.ok()) context->TryCancel();
  const grpc::Status ended = reader->Finish();
  if (failed.ok() && !ended.ok()) failed = rpc::FromGrpcStatus(ended);
  if (failed.ok() && !created) {
    failed = absl::InternalError("node " + from + " sent no chunk of object " + id.Hex());
  }
  if (failed.ok() && received != total) {
    failed = absl::InternalError("node " + from + " sent " + std::to_string(received) + " of " +
                                 std::to_string(total) + " bytes of object " + id.Hex());
  }
  if (!failed.ok()) {
    if (created) (void)store_.Abort(id, kNodeStoreClient);
    return failed;
  }
  if (absl::Status sealed = store_.Seal(id); !sealed.ok()) {
    (void)store_.Abort(id, kNodeStoreClient);
    return sealed;
  }
  (void)store_.Release(id, kNodeStoreClient);  // the creator's pin
  TellOwner(id, owner);
  return absl::OkStatus();
}

void ObjectPuller::TellOwner(const ObjectID &id, const std::string &owner) {
  if (owner.empty()) return;
  auto stub = proto::WorkerService::NewStub(rpc::MakeChannel(owner));
  proto::AddObjectLocationRequest request;
  request.set_object_id(id.Binary());
  {
    absl::MutexLock lock(&mu_);
    request.set_node_address(node_address_);
  }
  proto::AddObjectLocationReply reply;
  const grpc::Status told = stub->AddObjectLocation(
      rpc::MakeClientContext(options_.token, kOwnerTimeout).get(), request, &reply);
  if (!told.ok()) {
    // Kept: the readers here need it; it goes when this node stops (or
    // with the owner, if the owner runs here).
    Logger().warn("could not tell the owner {} of object {} about the copy here: {}", owner,
                  id.Hex(), told.error_message());
    return;
  }
  if (!reply.kept()) (void)store_.Delete(id);  // the owner freed it meanwhile
}

}  // namespace sunray
