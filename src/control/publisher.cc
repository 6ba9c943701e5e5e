#include "src/control/publisher.h"

#include <deque>
#include <optional>

namespace sunray {

// One subscriber's stream: a queue drained by one write at a time.
class Publisher::Stream final : public grpc::ServerWriteReactor<proto::Notification> {
 public:
  Stream(Publisher &owner, const proto::SubscribeRequest &request, size_t max_queued)
      : owner_(owner), request_(request), max_queued_(max_queued) {}

  bool Wants(const proto::Notification &notification) const {
    return (request_.actors() && notification.has_actor()) ||
           (request_.nodes() && notification.has_node());
  }

  void Push(const proto::Notification &notification) {
    absl::MutexLock lock(&mu_);
    if (closing_) return;
    if (queue_.size() >= max_queued_) {
      CloseLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                               "the subscriber fell too far behind; subscribe again"));
      return;
    }
    queue_.push_back(notification);
    if (!writing_) WriteNextLocked();
  }

  void Close(grpc::Status status) {
    absl::MutexLock lock(&mu_);
    CloseLocked(std::move(status));
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {  // the client is gone
      closing_ = true;
      queue_.clear();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the subscriber went away"));
      return;
    }
    if (closing_) {
      Finish(*final_status_);
      return;
    }
    if (!queue_.empty()) WriteNextLocked();
  }

  void OnCancel() override { Close(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled")); }

  void OnDone() override {
    owner_.Remove(this);
    delete this;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    current_ = std::move(queue_.front());
    queue_.pop_front();
    writing_ = true;
    StartWrite(&current_);
  }

  // Finishes now, or after the write in flight (gRPC allows one at a time).
  void CloseLocked(grpc::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (closing_) return;
    closing_ = true;
    queue_.clear();
    if (writing_) {
      final_status_ = std::move(status);
    } else {
      Finish(std::move(status));
    }
  }

  Publisher &owner_;
  const proto::SubscribeRequest request_;
  const size_t max_queued_;
  absl::Mutex mu_;
  std::deque<proto::Notification> queue_ ABSL_GUARDED_BY(mu_);
  proto::Notification current_ ABSL_GUARDED_BY(mu_);  // being written; lives until OnWriteDone
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);
};

grpc::ServerWriteReactor<proto::Notification> *Publisher::Subscribe(
    const proto::SubscribeRequest &request) {
  auto *stream = new Stream(*this, request, options_.max_queued);
  absl::MutexLock lock(&mu_);
  if (stopping_) {
    stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the control service is stopping"));
    return stream;
  }
  streams_.insert(stream);
  // Tells the client the subscription is in place (see the header).
  stream->StartSendInitialMetadata();
  return stream;
}

void Publisher::Publish(const proto::Notification &notification) {
  absl::MutexLock lock(&mu_);
  for (Stream *stream : streams_) {
    if (stream->Wants(notification)) stream->Push(notification);
  }
}

void Publisher::Stop() {
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  for (Stream *stream : streams_) {
    stream->Close(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the control service is stopping"));
  }
}

void Publisher::Remove(Stream *stream) {
  absl::MutexLock lock(&mu_);
  streams_.erase(stream);
}

}  // namespace sunray
