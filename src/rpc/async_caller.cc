#include "src/rpc/async_caller.h"

namespace sunray::rpc {

std::shared_ptr<grpc::Channel> AsyncCaller::Channel(const std::string &address) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<grpc::Channel> &channel = channels_[address];
  if (channel == nullptr) channel = MakeChannel(address);
  return channel;
}

std::unique_ptr<grpc::ClientContext> AsyncCaller::MakeContext(
    std::chrono::milliseconds timeout) const {
  if (timeout != kNoDeadline) return MakeClientContext(token_, timeout);
  auto context = MakeClientContext(token_, std::chrono::milliseconds(0));
  context->set_deadline(std::chrono::system_clock::time_point::max());  // gRPC: infinite
  return context;
}

bool AsyncCaller::Begin(grpc::ClientContext *context) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return false;
  in_flight_.insert(context);
  return true;
}

void AsyncCaller::End(grpc::ClientContext *context, std::shared_ptr<void> state) {
  absl::MutexLock lock(&mu_);
  state.reset();
  in_flight_.erase(context);
}

void AsyncCaller::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  // TryCancel only asks: each call still completes through its callback,
  // which removes it from in_flight_.
  for (grpc::ClientContext *context : in_flight_) context->TryCancel();
  mu_.Await(absl::Condition(
      +[](std::set<grpc::ClientContext *> *calls) { return calls->empty(); }, &in_flight_));
  channels_.clear();
}

}  // namespace sunray::rpc
