#include "src/rpc/rpc.h"

#include <grpcpp/support/server_interceptor.h>

namespace sunray::rpc {

bool TokenMatches(std::string_view given, const std::string &token) {
  if (token.empty() || given.size() != token.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < token.size(); ++i) {
    difference |= static_cast<unsigned char>(given[i] ^ token[i]);
  }
  return difference == 0;
}

bool HasToken(const grpc::ServerContextBase &context, const std::string &token) {
  const auto &metadata = context.client_metadata();
  auto it = metadata.find(kTokenHeader);
  if (it == metadata.end()) return false;
  return TokenMatches(std::string_view(it->second.data(), it->second.size()), token);
}

grpc::Status UnauthenticatedStatus() {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong cluster token");
}

bool Authenticate(const grpc::CallbackServerContext &context, grpc::ServerUnaryReactor *reactor,
                  const std::string &token) {
  if (HasToken(context, token)) return true;
  reactor->Finish(UnauthenticatedStatus());
  return false;
}

grpc::Status ToGrpcStatus(const absl::Status &status) {
  if (status.ok()) return grpc::Status::OK;
  // absl's canonical codes have the same numbers as gRPC's.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status &status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

std::unique_ptr<grpc::ClientContext> MakeClientContext(const std::string &token,
                                                       std::chrono::milliseconds timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->AddMetadata(kTokenHeader, token);
  context->set_deadline(std::chrono::system_clock::now() + timeout);
  return context;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string &address) {
  grpc::ChannelArguments arguments;
  // Objects up to 100 KiB travel inline and task batches add up: allow
  // messages well beyond gRPC's 4 MiB default.
  arguments.SetMaxReceiveMessageSize(512 << 20);
  arguments.SetMaxSendMessageSize(512 << 20);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), arguments);
}

namespace {

// gRPC's callback API answers a request whose body does not parse with
// UNIMPLEMENTED and no message. This puts the real reason in its place: the
// request was received (POST_RECV_MESSAGE) but no message came of it.
class MalformedRequestInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MalformedRequestInterceptor(std::string method) : method_(std::move(method)) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods *methods) override {
    using Hook = grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(Hook::POST_RECV_MESSAGE) &&
        methods->GetRecvMessage() == nullptr) {
      unparsed_ = true;
    }
    if (unparsed_ && methods->QueryInterceptionHookPoint(Hook::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT,
            "malformed request: the body of " + method_ + " is not a valid request message"));
      }
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
  bool unparsed_ = false;
};

class MalformedRequestInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor *CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo *info) override {
    return new MalformedRequestInterceptor(info->method());
  }
};

}  // namespace

RpcServer::~RpcServer() { Stop(); }

absl::StatusOr<int> RpcServer::Start(const std::string &address,
                                     std::vector<grpc::Service *> services) {
  if (server_ != nullptr) return absl::FailedPreconditionError("the server is already running");
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(512 << 20);
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(options_.handshake_timeout.count()));
  grpc::ResourceQuota quota("sunray-server");
  quota.Resize(options_.memory_quota_bytes);
  builder.SetResourceQuota(quota);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<MalformedRequestInterceptorFactory>());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  for (grpc::Service *service : services) builder.RegisterService(service);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr) {
    return absl::UnavailableError("could not listen on " + address);
  }
  if (address.rfind("unix:", 0) != 0 && port == 0) {
    server_->Shutdown();
    server_.reset();
    return absl::UnavailableError("could not bind " + address);
  }
  return port;
}

void RpcServer::Stop() {
  if (server_ == nullptr) return;
  // In-flight calls get one second, then are cancelled. (Open question: after
  // a node grants a lease that had been waiting, gRPC keeps counting a call
  // as in flight until this deadline; see the session notes.)
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server_->Wait();
  server_.reset();
}

}  // namespace sunray::rpc
