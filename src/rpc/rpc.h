// Thin gRPC plumbing shared by every service and client: the cluster token,
// status conversion, and a server that owns its listening port.
//
// Authentication: every call carries the cluster token in the metadata
// header kTokenHeader. Servers check it before running any handler
// (HandleUnary); a missing or wrong token gets UNAUTHENTICATED and nothing
// else happens.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sunray::rpc {

inline constexpr char kTokenHeader[] = "x-sunray-token";

// Whether `given` is `token`, compared in constant time.
bool TokenMatches(std::string_view given, const std::string &token);
// Whether the call's metadata carries `token` (compared in constant time).
bool HasToken(const grpc::ServerContextBase &context, const std::string &token);

// The one place where statuses cross the RPC edge.
grpc::Status ToGrpcStatus(const absl::Status &status);
absl::Status FromGrpcStatus(const grpc::Status &status);

// The status of a call without the right token.
grpc::Status UnauthenticatedStatus();

// Whether the call carries the token; if not, finishes it through `reactor`
// with UNAUTHENTICATED. For handlers that finish later; HandleUnary is the
// common case.
bool Authenticate(const grpc::CallbackServerContext &context, grpc::ServerUnaryReactor *reactor,
                  const std::string &token);

// Runs `handler` (returning absl::Status) for an authenticated call and
// finishes the call with its status. Exceptions from the handler become
// INTERNAL errors: a bad request never takes the daemon down.
template <typename Handler>
grpc::ServerUnaryReactor *HandleUnary(grpc::CallbackServerContext *context,
                                      const std::string &token, Handler &&handler) {
  grpc::ServerUnaryReactor *reactor = context->DefaultReactor();
  if (!Authenticate(*context, reactor, token)) return reactor;
  absl::Status status;
  try {
    status = handler();
  } catch (const std::exception &e) {
    status = absl::InternalError(std::string("the handler failed: ") + e.what());
  }
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A client context carrying the token, with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> MakeClientContext(const std::string &token,
                                                       std::chrono::milliseconds timeout);

// A channel to `address` ("host:port" or "unix:/path").
std::shared_ptr<grpc::Channel> MakeChannel(const std::string &address);

// A gRPC server on one address. Start binds (port 0 picks a free one);
// Stop is idempotent and waits for in-flight calls.
//
// What an unauthenticated peer can cost the server is bounded by Options.
// gRPC 1.51 reads a unary request whole before any handler (and so the token
// check) runs, and checks the message size limit only once it has it all: the
// memory quota is what stops a huge request early (gRPC resets the stream when
// reading it would exceed the quota). A connection that has not sent HTTP/2's
// opening settings within the handshake timeout is closed. Streaming methods
// check the token before they read a message (see TaskStreamServer).
class RpcServer {
 public:
  struct Options {
    // The largest message a peer may send; larger ones fail with
    // RESOURCE_EXHAUSTED. Keep it small where big messages make no sense.
    int max_receive_message_bytes = 4 << 20;
    // All the memory gRPC may take for this server's connections and calls;
    // well above the largest message times the calls expected at once.
    int64_t memory_quota_bytes = 32 << 20;
    // How long a new connection may take to open HTTP/2 (gRPC's default is
    // 120 s, long enough for idle sockets to pile up).
    std::chrono::milliseconds handshake_timeout{5000};
  };

  RpcServer() = default;
  explicit RpcServer(Options options) : options_(options) {}
  ~RpcServer();
  RpcServer(const RpcServer &) = delete;
  RpcServer &operator=(const RpcServer &) = delete;

  // Serves `services` (not owned; they must outlive the server) on
  // `address`. Returns the bound port (0 for unix sockets).
  absl::StatusOr<int> Start(const std::string &address, std::vector<grpc::Service *> services);
  void Stop();

 private:
  Options options_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sunray::rpc
