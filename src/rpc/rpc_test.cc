#include "src/rpc/rpc.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <grpcpp/generic/generic_stub.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "objstore.grpc.pb.h"
#include "src/rpc/async_caller.h"

namespace sunray::rpc {
namespace {

constexpr char kToken[] = "rpc-test-token";

// Any unary service will do; this one counts the calls its handler saw.
class CountingService final : public proto::ObjectStoreService::CallbackService {
 public:
  grpc::ServerUnaryReactor *CreateObject(grpc::CallbackServerContext *context,
                                         const proto::CreateObjectRequest *,
                                         proto::CreateObjectReply *) override {
    return HandleUnary(context, kToken, [&] {
      ++handled;
      return absl::OkStatus();
    });
  }
  std::atomic<int> handled{0};
};

class RpcServerTest : public ::testing::Test {
 protected:
  void Start(RpcServer::Options options) {
    server_ = std::make_unique<RpcServer>(options);
    auto port = server_->Start("127.0.0.1:0", {&service_});
    ASSERT_TRUE(port.ok()) << port.status();
    port_ = *port;
    stub_ = proto::ObjectStoreService::NewStub(MakeChannel("127.0.0.1:" + std::to_string(port_)));
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Stop();
  }

  grpc::Status Create(size_t id_bytes, const std::string &token) {
    proto::CreateObjectRequest request;
    request.set_object_id(std::string(id_bytes, 'i'));
    proto::CreateObjectReply reply;
    auto context = MakeClientContext(token, std::chrono::seconds(10));
    return stub_->CreateObject(context.get(), request, &reply);
  }

  CountingService service_;
  std::unique_ptr<RpcServer> server_;
  int port_ = 0;
  std::unique_ptr<proto::ObjectStoreService::Stub> stub_;
};

// Regression: every daemon took messages up to 512 MiB, and gRPC reads a
// unary request whole before the token is checked: one 256 MiB request
// without a token grew the node daemon by 640 MiB before it was refused.
TEST_F(RpcServerTest, ARequestOverTheLimitIsRefusedBeforeAnyHandlerRuns) {
  Start({.max_receive_message_bytes = 1 << 20});
  EXPECT_TRUE(Create(100, kToken).ok());
  for (const std::string token : {kToken, ""}) {
    const grpc::Status status = Create(2 << 20, token);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();
  }
  EXPECT_EQ(service_.handled, 1);
}

// Regression: connections that never opened HTTP/2 were held for gRPC's
// default two minutes (200 idle ones still there after 25 s).
TEST_F(RpcServerTest, AConnectionThatSaysNothingIsClosedAfterTheHandshakeTimeout) {
  Start({.handshake_timeout = std::chrono::milliseconds(300)});
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port_));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<const sockaddr *>(&address), sizeof(address)), 0);
  // The server writes its own settings first; the connection is closed
  // when the read side sees end of file.
  bool closed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!closed && std::chrono::steady_clock::now() < deadline) {
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, 100) <= 0) continue;
    char buffer[256];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    closed = n <= 0;
  }
  close(fd);
  EXPECT_TRUE(closed) << "the idle connection was still open after 10 s";
  EXPECT_TRUE(Create(100, kToken).ok());  // the server goes on serving
}

// Regression: a request whose body does not parse got UNIMPLEMENTED with an
// empty message.
TEST_F(RpcServerTest, AnUnparseableRequestIsAnsweredMalformedRequest) {
  Start({});
  grpc::GenericStub stub(MakeChannel("127.0.0.1:" + std::to_string(port_)));
  for (const std::string token : {kToken, ""}) {
    grpc::ClientContext context;
    context.AddMetadata(kTokenHeader, token);
    grpc::Slice garbage(std::string("\xff\xff\xff\xff\x0f", 5));
    grpc::ByteBuffer request(&garbage, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, "/sunray.proto.ObjectStoreService/CreateObject", grpc::StubOptions(),
                   &request, &response,
                   [&](grpc::Status status) { done.set_value(std::move(status)); });
    const grpc::Status status = done.get_future().get();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(status.error_message().find("malformed request"), std::string::npos)
        << status.error_message();
  }
  EXPECT_EQ(service_.handled, 0);
  EXPECT_TRUE(Create(100, kToken).ok());
}

// Stop meeting calls in every stage of finishing: each `done` runs once, and
// Stop returns only after all of them. (It once cancelled the context of a
// call whose callback had destroyed it and not yet left the in-flight set:
// the node daemon crashed in grpc_call_cancel at exit. That window is too
// narrow for this test to hit reliably; the fix is by construction, see End.)
TEST_F(RpcServerTest, StopWhileCallsFinishRunsEveryDoneOnce) {
  Start({});
  const std::string address = "127.0.0.1:" + std::to_string(port_);
  std::atomic<int> answered{0};
  for (int round = 0; round < 200; ++round) {
    AsyncCaller calls(kToken);
    for (int i = 0; i < 10; ++i) {
      calls.Call<proto::ObjectStoreService>(
          address, &proto::ObjectStoreService::Stub::async::CreateObject,
          proto::CreateObjectRequest(), std::chrono::seconds(10),
          [&](const grpc::Status &, const proto::CreateObjectReply &) { ++answered; });
    }
    // Let some of them finish, so Stop meets calls in their last steps.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (answered.load() < round * 10 + 5 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
    calls.Stop();
    EXPECT_EQ(answered.load(), (round + 1) * 10);  // every done ran, once
  }
}

}  // namespace
}  // namespace sunray::rpc
