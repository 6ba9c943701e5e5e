// Pub/sub for the control service: each Subscribe call is a server stream
// that receives every later actor and/or node change it asked for, in the
// order they were published.
//
//   grpc::ServerWriteReactor<proto::Notification> *Subscribe(...) {
//     return publisher_.Subscribe(*request);
//   }
//   publisher_.Publish(notification);  // from any thread
//
// A stream sends its initial metadata once it is registered: a client that
// has seen it will receive every notification published after. A subscriber
// that falls more than `max_queued` notifications behind is dropped (its
// stream ends with RESOURCE_EXHAUSTED) rather than holding memory without
// bound; it may subscribe again. Stop ends every stream with UNAVAILABLE and
// refuses new ones, so a server shutdown does not wait for them.
//
// Thread-safe. The publisher must outlive the server that serves its streams.
#pragma once

#include <cstddef>
#include <set>

#include "absl/synchronization/mutex.h"
#include "control.grpc.pb.h"

namespace sunray {

class Publisher {
 public:
  struct Options {
    size_t max_queued = 100000;  // per subscriber
  };

  Publisher() : Publisher(Options{}) {}
  explicit Publisher(Options options) : options_(options) {}
  ~Publisher() { Stop(); }
  Publisher(const Publisher &) = delete;
  Publisher &operator=(const Publisher &) = delete;

  // The reactor for a Subscribe call (owned by gRPC until it is done).
  grpc::ServerWriteReactor<proto::Notification> *Subscribe(const proto::SubscribeRequest &request);

  // Queues `notification` (an actor or a node change) for each subscriber
  // that asked for its kind.
  void Publish(const proto::Notification &notification);

  // Ends every stream and refuses new ones. Idempotent.
  void Stop();

 private:
  class Stream;
  void Remove(Stream *stream);

  const Options options_;
  absl::Mutex mu_;
  std::set<Stream *> streams_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sunray
