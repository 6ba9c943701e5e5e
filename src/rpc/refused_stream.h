// A server stream finished before it starts (no token, a malformed request):
//
//   if (!rpc::HasToken(*context, token)) {
//     return new rpc::RefusedStream<proto::Notification>(rpc::UnauthenticatedStatus());
//   }
//
// It deletes itself when gRPC is done with it.
#pragma once

#include <grpcpp/grpcpp.h>

namespace sunray::rpc {

template <typename Message>
class RefusedStream final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit RefusedStream(grpc::Status status) { this->Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace sunray::rpc
