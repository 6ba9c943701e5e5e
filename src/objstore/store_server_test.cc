#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include <chrono>
#include <filesystem>
#include <thread>

#include "src/common/unix_socket.h"
#include "src/objstore/object_store.h"
#include "src/objstore/store_client.h"
#include "src/objstore/store_server.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

constexpr char kToken[] = "store-test-token";
constexpr size_t kMiB = 1 << 20;

ObjectID RandomObject() { return ObjectID::ForTask(TaskID::FromRandom(), 1); }

class StoreServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sunray-store-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    directory_ = pattern;
    auto store = ObjectStore::Create({64 * kMiB, "sunray-store-test"});
    ASSERT_TRUE(store.ok());
    store_ = *std::move(store);
    server_ = std::make_unique<StoreServer>(*store_, kToken, directory_ + "/store.sock");
    ASSERT_TRUE(server_->Start().ok());
    auto port = rpc_.Start("127.0.0.1:0", {server_.get()});
    ASSERT_TRUE(port.ok());
    options_ = {directory_ + "/store.sock", "127.0.0.1:" + std::to_string(*port), kToken};
  }
  void TearDown() override {
    rpc_.Stop();
    server_.reset();
    store_.reset();
    std::filesystem::remove_all(directory_);
  }

  std::unique_ptr<StoreClient> Connect() {
    auto client = StoreClient::Connect(options_);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? *std::move(client) : nullptr;
  }

  // A handshake without a StoreClient: returns the socket (or -1) and sets
  // the client id. Closing the socket is how such a client dies.
  int RawHandshake(uint64_t *client_id) {
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto address = UnixSocketAddress(options_.socket_path);
    const std::string hello = std::string(kToken) + "\n";
    if (fd < 0 || !address.ok() ||
        connect(fd, reinterpret_cast<const sockaddr *>(&address->address), address->length) != 0 ||
        write(fd, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size()) ||
        read(fd, client_id, sizeof(*client_id)) != static_cast<ssize_t>(sizeof(*client_id)) ||
        *client_id == 0) {
      if (fd >= 0) close(fd);
      return -1;
    }
    return fd;
  }

  // Waits (with a deadline) until the store holds `count` objects.
  bool WaitForObjectCount(size_t count) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (store_->GetStats().num_objects != count) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  }

  std::string directory_;
  std::unique_ptr<ObjectStore> store_;
  std::unique_ptr<StoreServer> server_;
  rpc::RpcServer rpc_;
  StoreClient::Options options_;
};

TEST_F(StoreServerTest, PutThenGetReadsTheBytesInPlaceThroughTheClientsOwnMapping) {
  auto writer = Connect();
  auto reader = Connect();
  ASSERT_NE(writer, nullptr);
  ASSERT_NE(reader, nullptr);
  EXPECT_NE(writer->client_id(), reader->client_id());
  std::string payload(8 * kMiB, '\0');
  for (size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 31);
  const ObjectID id = RandomObject();
  ASSERT_TRUE(writer->Put(id, payload, "meta").ok());
  auto view = reader->Get(id);
  ASSERT_TRUE(view.ok()) << view.status();
  ASSERT_EQ((*view)->size(), payload.size());
  EXPECT_EQ(std::string_view((*view)->data(), (*view)->size()), payload);
  EXPECT_EQ((*view)->metadata(), "meta");
  // The reader's pointer is into its own mapping, not the store's.
  const char *store_base = store_->segment().base();
  EXPECT_FALSE((*view)->data() >= store_base &&
               (*view)->data() < store_base + store_->segment().size());
}

TEST_F(StoreServerTest, AViewPinsItsObjectUntilDestroyed) {
  auto client = Connect();
  const ObjectID id = RandomObject();
  ASSERT_TRUE(client->Put(id, "value").ok());
  auto view = client->Get(id);
  ASSERT_TRUE(view.ok());
  ASSERT_TRUE(client->Delete({id}).ok());
  EXPECT_EQ(store_->GetStats().num_objects, 1u);
  view->reset();
  EXPECT_EQ(store_->GetStats().num_objects, 0u);
}

TEST_F(StoreServerTest, WrongTokenIsRefusedAtTheHandshake) {
  StoreClient::Options options = options_;
  options.token = "not-the-token";
  auto client = StoreClient::Connect(options);
  EXPECT_TRUE(absl::IsPermissionDenied(client.status())) << client.status();
}

TEST_F(StoreServerTest, RpcWithoutTokenIsRefused) {
  auto stub = proto::ObjectStoreService::NewStub(rpc::MakeChannel(options_.rpc_address));
  grpc::ClientContext context;
  proto::GetObjectRequest request;
  proto::GetObjectReply reply;
  EXPECT_EQ(stub->GetObject(&context, request, &reply).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(StoreServerTest, FullStoreErrorReachesTheClientWithSizes) {
  auto client = Connect();
  auto result = client->Create(RandomObject(), 100 * kMiB, 0);
  ASSERT_TRUE(absl::IsResourceExhausted(result.status())) << result.status();
  EXPECT_NE(result.status().message().find("object store full"), std::string::npos);
  EXPECT_NE(result.status().message().find(std::to_string(100 * kMiB)), std::string::npos);
}

TEST_F(StoreServerTest, MissingAndMalformedIdsGetClearErrors) {
  auto client = Connect();
  EXPECT_TRUE(absl::IsNotFound(client->Get(RandomObject()).status()));
  auto stub = proto::ObjectStoreService::NewStub(rpc::MakeChannel(options_.rpc_address));
  proto::GetObjectRequest request;
  request.set_object_id("short");
  proto::GetObjectReply reply;
  grpc::Status status = stub->GetObject(
      rpc::MakeClientContext(kToken, std::chrono::seconds(5)).get(), request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(StoreServerTest, AClientThatGoesAwayReleasesItsPinsAndUnsealedObjects) {
  // A raw handshake, as a dying process would leave it: the socket simply
  // closes, with no further call.
  uint64_t client_id = 0;
  const int socket_fd = RawHandshake(&client_id);
  ASSERT_GE(socket_fd, 0);

  auto other = Connect();
  const ObjectID sealed = RandomObject();
  ASSERT_TRUE(other->Put(sealed, "kept only by the dying client's pin").ok());
  ASSERT_TRUE(store_->Get(sealed, client_id).ok());
  ASSERT_TRUE(store_->Delete(sealed).ok());
  ASSERT_TRUE(store_->CreateObject(RandomObject(), 1024, 0, client_id).ok());  // never sealed
  EXPECT_EQ(store_->GetStats().num_objects, 2u);
  close(socket_fd);
  EXPECT_TRUE(WaitForObjectCount(0));
}

// Regression: a retried task whose result goes to the store failed with
// "object ... already exists in the store" when an earlier attempt of the
// task had written its return object before dying.
TEST_F(StoreServerTest, AnIdempotentPutTakesAnEarlierSealedCopyAsItsOwn) {
  auto earlier = Connect();
  auto retry = Connect();
  const ObjectID id = RandomObject();
  ASSERT_TRUE(earlier->Put(id, "first attempt").ok());
  EXPECT_TRUE(absl::IsAlreadyExists(retry->Put(id, "second attempt")));
  ASSERT_TRUE(retry->PutIdempotent(id, "second attempt", "").ok());
  auto view = retry->Get(id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(std::string((*view)->data(), (*view)->size()), "first attempt");
}

TEST_F(StoreServerTest, AnIdempotentPutWaitsForAnEarlierWriterThatDiesThenWrites) {
  // The earlier attempt's worker, mid-write: a raw handshake whose socket
  // closes when the process dies.
  uint64_t client_id = 0;
  const int socket_fd = RawHandshake(&client_id);
  ASSERT_GE(socket_fd, 0);
  const ObjectID id = RandomObject();
  ASSERT_TRUE(store_->CreateObject(id, 1024, 0, client_id).ok());  // never sealed

  auto retry = Connect();
  EXPECT_TRUE(
      absl::IsDeadlineExceeded(retry->PutIdempotent(id, "retry", "", absl::Milliseconds(50))));
  absl::Status put;
  std::thread writer([&] { put = retry->PutIdempotent(id, "retry", "", absl::Seconds(20)); });
  close(socket_fd);  // the earlier writer dies: its object is aborted
  writer.join();
  ASSERT_TRUE(put.ok()) << put;
  auto view = retry->Get(id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(std::string((*view)->data(), (*view)->size()), "retry");
}

// Regression: requests naming a client id the store never handed out were
// answered OK.
TEST_F(StoreServerTest, RequestsFromUnknownClientIdsAreRefused) {
  auto client = Connect();
  proto::CreateObjectRequest request;
  request.set_object_id(RandomObject().Binary());
  request.set_data_size(16);
  request.set_client_id(client->client_id() + 1000);
  proto::CreateObjectReply reply;
  auto stub = proto::ObjectStoreService::NewStub(rpc::MakeChannel(options_.rpc_address));
  auto context = rpc::MakeClientContext(kToken, std::chrono::seconds(5));
  grpc::Status status = stub->CreateObject(context.get(), request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("is not connected"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(store_->GetStats().num_objects, 0u);
}

TEST(UnixSocketPathTest, AFileInItsDirWhenItFitsElseAnAbstractName) {
  EXPECT_EQ(UnixSocketPath("/tmp/s", "store.sock", "sunray-store-x"), "/tmp/s/store.sock");
  const std::string deep = "/tmp/" + std::string(120, 'd');
  EXPECT_EQ(UnixSocketPath(deep, "store.sock", "sunray-store-x"), "@sunray-store-x");
  auto address = UnixSocketAddress("@sunray-store-x");
  ASSERT_TRUE(address.ok());
  EXPECT_TRUE(address->abstract);
  EXPECT_EQ(address->address.sun_path[0], '\0');
  EXPECT_FALSE(UnixSocketAddress(std::string(1, '@') + std::string(108, 'n')).ok());
  EXPECT_FALSE(UnixSocketAddress("").ok());
}

TEST_F(StoreServerTest, AServerOnAnAbstractNameServesClientsAndLeavesNoFile) {
  const std::string name = "@sunray-store-test-" + RandomObject().Hex().substr(0, 16);
  StoreServer server(*store_, kToken, name);
  ASSERT_TRUE(server.Start().ok());
  auto client = StoreClient::Connect({name, options_.rpc_address, kToken});
  ASSERT_TRUE(client.ok()) << client.status();
  const ObjectID id = RandomObject();
  ASSERT_TRUE((*client)->Put(id, "through an abstract socket").ok());
  EXPECT_TRUE(store_->ContainsSealed(id));
  // Without the token, no descriptor.
  EXPECT_FALSE(StoreClient::Connect({name, options_.rpc_address, "wrong-token"}).ok());
  server.Stop();
  EXPECT_FALSE(std::filesystem::exists(name));
  EXPECT_FALSE(StoreClient::Connect({name, options_.rpc_address, kToken}).ok());
}

}  // namespace
}  // namespace sunray
