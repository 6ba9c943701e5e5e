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

// A channel with a TCP connection of its own (gRPC shares one per address
// among channels otherwise): a pull's extra streams each get one.
std::shared_ptr<grpc::Channel> TransferChannel(const std::string &address) {
  grpc::ChannelArguments arguments;
  arguments.SetMaxReceiveMessageSize(512 << 20);
  arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
}

}  // namespace

// --- Serving ----------------------------------------------------------------

namespace {

class ObjectWriter final : public grpc::ServerWriteReactor<proto::ObjectChunk> {
 public:
  ObjectWriter(ObjectStore &store, const ObjectID &id, uint64_t chunk_bytes, uint64_t offset,
               uint64_t length)
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
    const uint64_t total = location_.data_size + location_.metadata_size;
    if (offset > total) {
      Finish(grpc::Status(grpc::StatusCode::OUT_OF_RANGE,
                          "offset " + std::to_string(offset) + " is past the end of object " +
                              id_.Hex() + " (" + std::to_string(total) + " bytes)"));
      return;
    }
    sent_ = offset;
    end_ = length == 0 ? total : std::min(total, offset + length);
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
    // An empty range is one empty chunk (it still tells the sizes).
    if (started_ && sent_ >= end_) {
      Finish(grpc::Status::OK);
      return;
    }
    started_ = true;
    const uint64_t length = std::min<uint64_t>(chunk_bytes_, end_ - sent_);
    chunk_.Clear();
    chunk_.set_data_size(location_.data_size);
    chunk_.set_metadata_size(location_.metadata_size);
    chunk_.set_offset(sent_);
    chunk_.set_data(store_.segment().base() + location_.offset + sent_, length);
    sent_ += length;
    StartWrite(&chunk_);
  }

  ObjectStore &store_;
  const ObjectID id_;
  const uint64_t chunk_bytes_;
  bool pinned_ = false;
  ObjectStore::Location location_;
  uint64_t sent_ = 0;  // next byte to send
  uint64_t end_ = 0;   // past the range's last byte
  bool started_ = false;
  proto::ObjectChunk chunk_;  // being written
};

}  // namespace

grpc::ServerWriteReactor<proto::ObjectChunk> *ServeObject(ObjectStore &store, const ObjectID &id,
                                                          uint64_t chunk_bytes, uint64_t offset,
                                                          uint64_t length) {
  return new ObjectWriter(store, id, chunk_bytes == 0 ? 4 << 20 : chunk_bytes, offset, length);
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
  Target target;
  const uint64_t chunk = std::max<uint64_t>(1, options_.chunk_bytes);
  // The first chunk on one stream: it tells the size and makes the object.
  absl::Status failed = FetchRange(id, from, owner, 0, chunk, &target);
  if (absl::IsAlreadyExists(failed)) return absl::OkStatus();  // a copy came another way
  if (failed.ok() && target.total > chunk) {
    // The rest in whole chunks, split over up to `streams` streams at once.
    const uint64_t chunks = (target.total - chunk + chunk - 1) / chunk;
    const uint64_t streams = std::min<uint64_t>(std::max(1, options_.streams), chunks);
    const uint64_t per_stream = (chunks + streams - 1) / streams * chunk;
    std::vector<absl::Status> statuses(streams);
    std::vector<std::thread> readers;
    for (uint64_t i = 0; i < streams; ++i) {
      const uint64_t begin = chunk + i * per_stream;
      if (begin >= target.total) break;
      const uint64_t length = std::min(per_stream, target.total - begin);
      readers.emplace_back([&, i, begin, length] {
        statuses[i] = FetchRange(id, from, owner, begin, length, &target);
      });
    }
    for (auto &reader : readers) reader.join();
    for (const absl::Status &status : statuses) {
      if (!status.ok()) {
        failed = status;
        break;
      }
    }
  }
  if (!failed.ok()) {
    if (target.created) (void)store_.Abort(id, kNodeStoreClient);
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

absl::Status ObjectPuller::FetchRange(const ObjectID &id, const std::string &from,
                                      const std::string &owner, uint64_t offset, uint64_t length,
                                      Target *target) {
  // The first range shares the node's connection to `from`; the others run
  // beside it, each on a connection of its own.
  auto stub =
      proto::NodeService::NewStub(offset == 0 ? rpc::MakeChannel(from) : TransferChannel(from));
  auto context = rpc::MakeClientContext(options_.token, kFetchTimeout);
  proto::FetchObjectRequest request;
  request.set_object_id(id.Binary());
  request.set_chunk_bytes(options_.chunk_bytes);
  request.set_offset(offset);
  request.set_length(length);
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
  uint64_t received = offset;  // the next byte expected
  uint64_t end = 0;            // known from the first chunk
  bool any = false;
  absl::Status failed;
  while (reader->Read(&chunk)) {
    if (!target->created) {  // only the first range creates (alone)
      absl::StatusOr<ObjectStore::Location> made =
          CreateWithRoom(id, chunk.data_size(), chunk.metadata_size(), owner);
      if (absl::IsAlreadyExists(made.status())) {
        context->TryCancel();
        while (reader->Read(&chunk)) {
        }
        (void)reader->Finish();
        return made.status();
      }
      if (!made.ok()) {
        failed = made.status();
        break;
      }
      target->created = true;
      target->location = *made;
      target->total = chunk.data_size() + chunk.metadata_size();
    }
    if (!any) {
      any = true;
      end = length == 0 ? target->total : std::min(target->total, offset + length);
    }
    if (chunk.data_size() + chunk.metadata_size() != target->total || chunk.offset() != received ||
        chunk.offset() + chunk.data().size() > end) {
      failed =
          absl::InternalError("node " + from + " sent a chunk of object " + id.Hex() +
                              " that does not fit it (offset " + std::to_string(chunk.offset()) +
                              ", " + std::to_string(chunk.data().size()) + " bytes, object " +
                              std::to_string(target->total) + " bytes)");
      break;
    }
    std::memcpy(store_.segment().base() + target->location.offset + chunk.offset(),
                chunk.data().data(), chunk.data().size());
    received += chunk.data().size();
  }
  if (!failed.ok()) context->TryCancel();
  const grpc::Status ended = reader->Finish();
  if (failed.ok() && !ended.ok()) failed = rpc::FromGrpcStatus(ended);
  if (failed.ok() && !any) {
    failed = absl::InternalError("node " + from + " sent no chunk of object " + id.Hex());
  }
  if (failed.ok() && received != end) {
    failed = absl::InternalError("node " + from + " sent " + std::to_string(received - offset) +
                                 " of the " + std::to_string(end - offset) + " bytes at offset " +
                                 std::to_string(offset) + " of object " + id.Hex());
  }
  return failed;
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
