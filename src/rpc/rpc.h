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
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sunray::rpc {

inline constexpr char kTokenHeader[] = "x-sunray-token";

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
class RpcServer {
 public:
  RpcServer() = default;
  ~RpcServer();
  RpcServer(const RpcServer &) = delete;
  RpcServer &operator=(const RpcServer &) = delete;

  // Serves `services` (not owned; they must outlive the server) on
  // `address`. Returns the bound port (0 for unix sockets).
  absl::StatusOr<int> Start(const std::string &address, std::vector<grpc::Service *> services);
  void Stop();

 private:
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace sunray::rpc
