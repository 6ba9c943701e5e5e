// Client calls that complete in callbacks, for components that call other
// services from their own handlers or threads and must stop cleanly.
//
//   rpc::AsyncCaller calls(token);
//   calls.Call<proto::NodeService>(
//       node_address, &proto::NodeService::Stub::async::KillWorker, request,
//       std::chrono::seconds(5),
//       [](const grpc::Status &status, const proto::KillWorkerReply &reply) { ... });
//
// Every call carries the cluster token; channels are shared per address.
// `done` runs exactly once: on a gRPC thread when the call completes, or at
// once on the calling thread (with CANCELLED) when the caller is stopping.
// Stop cancels every call in flight and waits until their `done` callbacks
// have returned; call it from no `done` callback. Thread-safe.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "src/rpc/rpc.h"

namespace sunray::rpc {

class AsyncCaller {
 public:
  // A timeout that never expires (calls that wait for work of unknown length).
  static constexpr std::chrono::milliseconds kNoDeadline = std::chrono::milliseconds::max();

  explicit AsyncCaller(std::string token) : token_(std::move(token)) {}
  ~AsyncCaller() { Stop(); }
  AsyncCaller(const AsyncCaller &) = delete;
  AsyncCaller &operator=(const AsyncCaller &) = delete;

  // The class of a generated stub's callback API (Stub::async, which its
  // member function async() hides from a typename).
  template <typename Service>
  using AsyncApi =
      std::remove_pointer_t<decltype(std::declval<typename Service::Stub &>().async())>;

  // A generated stub's callback-API method, e.g. &Service::Stub::async::Method.
  template <typename Service, typename Request, typename Reply>
  using AsyncMethod = void (AsyncApi<Service>::*)(grpc::ClientContext *, const Request *, Reply *,
                                                  std::function<void(grpc::Status)>);

  // Calls `method` of `Service` at `address` with `request` and hands the
  // outcome to `done(const grpc::Status &, const Reply &)`.
  template <typename Service, typename Request, typename Reply, typename Done>
  void Call(const std::string &address, AsyncMethod<Service, Request, Reply> method,
            const Request &request, std::chrono::milliseconds timeout, Done done) {
    struct State {
      std::unique_ptr<typename Service::Stub> stub;
      std::unique_ptr<grpc::ClientContext> context;
      Request request;
      Reply reply;
    };
    auto state = std::make_shared<State>();
    state->context = MakeContext(timeout);
    state->request = request;
    if (!Begin(state->context.get())) {
      done(grpc::Status(grpc::StatusCode::CANCELLED, "the caller is stopping"), state->reply);
      return;
    }
    state->stub = Service::NewStub(Channel(address));
    // The callback holds the only reference, so the state goes in End even
    // when the call completes before this returns.
    State *call = state.get();
    (call->stub->async()->*method)(
        call->context.get(), &call->request, &call->reply,
        [this, state = std::move(state), done = std::move(done)](grpc::Status status) mutable {
          done(status, state->reply);
          grpc::ClientContext *context = state->context.get();
          End(context, std::move(state));
        });
  }

  // Cancels the calls in flight, waits for their callbacks, and refuses new
  // calls. Idempotent.
  void Stop();

  // The shared channel to `address` (for blocking calls beside these).
  std::shared_ptr<grpc::Channel> Channel(const std::string &address);

 private:
  std::unique_ptr<grpc::ClientContext> MakeContext(std::chrono::milliseconds timeout) const;
  bool Begin(grpc::ClientContext *context);
  // Drops a finished call's state (its stub and context) and forgets the
  // call, both under mu_: Stop never cancels a destroyed context, and the
  // channels in channels_ outlive every call's references to them (the last
  // reference to a channel must not go on a gRPC thread: gRPC 1.51 then tears
  // down its callback completion queue from that queue's own thread, a
  // double free under ASan).
  void End(grpc::ClientContext *context, std::shared_ptr<void> state);

  const std::string token_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_ ABSL_GUARDED_BY(mu_);
  std::set<grpc::ClientContext *> in_flight_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sunray::rpc
