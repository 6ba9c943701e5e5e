// Objects between two stores over real gRPC on loopback: a source serving
// FetchObject in chunks, and a puller copying into another store — whole
// objects in many chunks, merged pulls, a missing object, a full store that
// waits for room, a source that lies about the size.
#include "src/node/object_transfer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <future>

#include "src/rpc/rpc.h"
#include "src/testing/eventually.h"

namespace sunray {
namespace {

constexpr char kToken[] = "transfer-test-token";

std::unique_ptr<ObjectStore> MakeStore(size_t capacity, const std::string &name) {
  auto store = ObjectStore::Create({capacity, name});
  EXPECT_TRUE(store.ok()) << store.status();
  (*store)->AddClient(1);
  (*store)->AddClient(kNodeStoreClient);  // as the node's ObjectPuller adds it
  return std::move(*store);
}

// Writes `data` as a sealed object of client 1.
void PutObject(ObjectStore &store, const ObjectID &id, const std::string &data) {
  auto location = store.CreateObject(id, data.size(), 0, 1);
  ASSERT_TRUE(location.ok()) << location.status();
  std::memcpy(store.segment().base() + location->offset, data.data(), data.size());
  ASSERT_TRUE(store.Seal(id).ok());
  ASSERT_TRUE(store.Release(id, 1).ok());
}

std::string Read(ObjectStore &store, const ObjectID &id) {
  auto location = store.Get(id, 1);
  if (!location.ok()) return "<" + std::string(location.status().message()) + ">";
  std::string data(store.segment().base() + location->offset, location->data_size);
  (void)store.Release(id, 1);
  return data;
}

// A node's FetchObject over `store` (or, with `lie`, a source whose second
// chunk claims another size); counts the fetches (streams from offset 0:
// one per pull) and every stream.
class SourceNode final : public proto::NodeService::CallbackService {
 public:
  explicit SourceNode(ObjectStore &store) : store_(store) {}
  grpc::ServerWriteReactor<proto::ObjectChunk> *FetchObject(
      grpc::CallbackServerContext *, const proto::FetchObjectRequest *request) override {
    if (request->offset() == 0) ++fetches;
    ++streams;
    if (lie) return new Liar();
    return ServeObject(store_, ObjectID::FromBinary(request->object_id()), request->chunk_bytes(),
                       request->offset(), request->length());
  }
  std::atomic<int> fetches{0};
  std::atomic<int> streams{0};
  bool lie = false;

 private:
  class Liar final : public grpc::ServerWriteReactor<proto::ObjectChunk> {
   public:
    Liar() {
      chunk_.set_data_size(10);
      chunk_.set_data("12345");
      StartWrite(&chunk_);
    }
    void OnWriteDone(bool ok) override {
      if (!ok || sent_++ > 0) {
        Finish(grpc::Status::OK);
        return;
      }
      chunk_.set_data_size(1000);  // the size changes
      chunk_.set_offset(5);
      StartWrite(&chunk_);
    }
    void OnDone() override { delete this; }

   private:
    proto::ObjectChunk chunk_;
    int sent_ = 0;
  };
  ObjectStore &store_;
};

class ObjectTransferTest : public ::testing::Test {
 protected:
  ObjectTransferTest()
      : source_store_(MakeStore(1 << 20, "transfer-source")),
        here_(MakeStore(64 << 10, "transfer-here")),
        source_(*source_store_) {
    auto port = server_.Start("127.0.0.1:0", {&source_});
    EXPECT_TRUE(port.ok()) << port.status();
    address_ = "127.0.0.1:" + std::to_string(port.value_or(0));
  }
  ~ObjectTransferTest() override {
    if (puller_ != nullptr) puller_->Stop();
    server_.Stop();
  }

  ObjectPuller &Puller(uint64_t chunk_bytes, absl::Duration room_timeout = absl::Seconds(5)) {
    ObjectPuller::Options options;
    options.token = kToken;
    options.chunk_bytes = chunk_bytes;
    options.room_timeout = room_timeout;
    puller_ = std::make_unique<ObjectPuller>(options, *here_);
    return *puller_;
  }

  absl::Status PullAndWait(const ObjectID &id) {
    std::promise<absl::Status> done;
    puller_->Pull(id, address_, "", [&](absl::Status status) { done.set_value(status); });
    auto future = done.get_future();
    if (future.wait_for(Deadline(std::chrono::seconds(20))) != std::future_status::ready) {
      return absl::DeadlineExceededError("no answer");
    }
    return future.get();
  }

  std::unique_ptr<ObjectStore> source_store_;
  std::unique_ptr<ObjectStore> here_;
  SourceNode source_;
  rpc::RpcServer server_;
  std::string address_;
  std::unique_ptr<ObjectPuller> puller_;
};

TEST_F(ObjectTransferTest, AnObjectArrivesWholeInManyChunks) {
  const ObjectID id = ObjectID::FromRandom();
  std::string data(10'000, ' ');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>('a' + i % 26);
  PutObject(*source_store_, id, data);
  Puller(/*chunk_bytes=*/999);
  ASSERT_TRUE(PullAndWait(id).ok());
  EXPECT_TRUE(Read(*here_, id) == data);
  // The first chunk alone, then the other ten over four streams at once.
  EXPECT_EQ(source_.streams.load(), 5);
  // Already here: answered at once, no fetch.
  ASSERT_TRUE(PullAndWait(id).ok());
  EXPECT_EQ(source_.fetches.load(), 1);
}

TEST_F(ObjectTransferTest, ARangePastTheEndIsRefused) {
  const ObjectID id = ObjectID::FromRandom();
  PutObject(*source_store_, id, std::string(100, 'x'));
  Puller(1000);
  auto stub = proto::NodeService::NewStub(rpc::MakeChannel(address_));
  grpc::ClientContext context;
  proto::FetchObjectRequest request;
  request.set_object_id(id.Binary());
  request.set_offset(101);
  auto reader = stub->FetchObject(&context, request);
  proto::ObjectChunk chunk;
  EXPECT_FALSE(reader->Read(&chunk));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
}

TEST_F(ObjectTransferTest, AnEmptyObjectArrives) {
  const ObjectID id = ObjectID::FromRandom();
  PutObject(*source_store_, id, "");
  Puller(1000);
  ASSERT_TRUE(PullAndWait(id).ok());
  EXPECT_EQ(Read(*here_, id), "");
}

TEST_F(ObjectTransferTest, ConcurrentPullsOfOneObjectAreOneFetch) {
  const ObjectID id = ObjectID::FromRandom();
  PutObject(*source_store_, id, std::string(30'000, 'm'));
  ObjectPuller &puller = Puller(100);  // many chunks: the pulls overlap
  std::atomic<int> ok{0};
  for (int i = 0; i < 5; ++i) {
    puller.Pull(id, address_, "", [&](absl::Status status) { ok += status.ok(); });
  }
  ASSERT_TRUE(Eventually([&] { return ok.load() == 5; }));
  EXPECT_EQ(source_.fetches.load(), 1);
  EXPECT_TRUE(Read(*here_, id) == std::string(30'000, 'm'));
}

TEST_F(ObjectTransferTest, AnObjectTheSourceDoesNotHaveIsNotFound) {
  Puller(1000);
  const absl::Status pulled = PullAndWait(ObjectID::FromRandom());
  EXPECT_TRUE(absl::IsNotFound(pulled)) << pulled;
  EXPECT_NE(pulled.message().find("is not in this node's store"), std::string::npos) << pulled;
}

TEST_F(ObjectTransferTest, APullWaitsForRoomAndFailsOnlyAfterItsTimeout) {
  const ObjectID id = ObjectID::FromRandom();
  PutObject(*source_store_, id, std::string(40'000, 'r'));
  // Most of this store is taken.
  const ObjectID big = ObjectID::FromRandom();
  PutObject(*here_, big, std::string(50'000, 'b'));
  Puller(4096, absl::Seconds(10));
  std::promise<absl::Status> done;
  puller_->Pull(id, address_, "", [&](absl::Status status) { done.set_value(status); });
  auto future = done.get_future();
  // Waits (the store is not failed) until room appears.
  EXPECT_EQ(future.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  ASSERT_TRUE(here_->Delete(big).ok());
  ASSERT_EQ(future.wait_for(Deadline(std::chrono::seconds(10))), std::future_status::ready);
  EXPECT_TRUE(future.get().ok());
  EXPECT_TRUE(Read(*here_, id) == std::string(40'000, 'r'));

  // No room within the timeout: DeadlineExceeded, nothing left behind.
  const ObjectID second = ObjectID::FromRandom();
  PutObject(*source_store_, second, std::string(40'000, 's'));
  Puller(4096, absl::Milliseconds(100));
  const absl::Status pulled = PullAndWait(second);
  EXPECT_TRUE(absl::IsDeadlineExceeded(pulled)) << pulled;
  EXPECT_FALSE(here_->ContainsSealed(second));
}

TEST_F(ObjectTransferTest, ASourceThatLiesAboutTheSizeFailsThePullAndLeavesNothing) {
  source_.lie = true;
  Puller(1000);
  const ObjectID id = ObjectID::FromRandom();
  const absl::Status pulled = PullAndWait(id);
  EXPECT_TRUE(absl::IsInternal(pulled)) << pulled;
  EXPECT_NE(pulled.message().find("does not fit it"), std::string::npos) << pulled;
  EXPECT_FALSE(here_->ContainsSealed(id));
  EXPECT_EQ(here_->GetStats().num_objects, 0u);
}

}  // namespace
}  // namespace sunray
