// The stream that carries normal tasks to a leased worker and their answers
// back (WorkerService.RunTasks): one per lease, open while the owner holds
// the lease. A unary call per task costs a new HTTP/2 stream, its metadata,
// and several thread wake-ups on both sides; on a stream, tasks that are
// ready together travel in one message, and so do answers.
//
// Both ends keep at most one write in flight; what is queued meanwhile is
// merged into the next message, up to kMaxTaskMessageBytes (a lone larger
// task or answer travels alone), so batches grow with the load by themselves
// and a lone task still goes out at once.
#pragma once

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "worker.grpc.pb.h"

namespace sunray {

// Batches stop growing at this size (the worker's server takes messages up
// to 64 MiB: see ClusterRuntime).
inline constexpr size_t kMaxTaskMessageBytes = 4 << 20;

// The owner's end. Thread-safe.
class TaskStreamClient : public grpc::ClientBidiReactor<proto::TaskBatch, proto::TaskResults> {
 public:
  // Runs on a gRPC thread for every message of answers.
  using ResultsHandler = std::function<void(proto::TaskResults &results)>;
  // Runs once, after the last ResultsHandler call: OK when the stream ended
  // after Close, an error when the worker (or the connection) went away.
  using EndHandler = std::function<void(const grpc::Status &status)>;

  // Opens a stream on `stub` with `context` (which carries the token).
  static std::shared_ptr<TaskStreamClient> Open(proto::WorkerService::Stub *stub,
                                                std::unique_ptr<grpc::ClientContext> context,
                                                ResultsHandler on_results, EndHandler on_end);

  // Sends `tasks` (now, or with the next message if a write is in flight).
  // False once the stream is closed or broken: the tasks were not sent.
  bool Send(std::vector<proto::TaskSpec> tasks);
  // No more tasks: the worker answers what it has, then the stream ends.
  void Close();
  // For cancelling the stream (Shutdown).
  grpc::ClientContext *context() { return context_.get(); }

  void OnWriteDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status &status) override;

 private:
  TaskStreamClient(std::unique_ptr<grpc::ClientContext> context, ResultsHandler on_results,
                   EndHandler on_end);
  // Starts the next write if one is due, or the end of writes.
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // No more writes will start: releases the hold that kept the stream open
  // for writes from outside its reactions.
  void StopWritingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<grpc::ClientContext> context_;
  ResultsHandler on_results_;
  EndHandler on_end_;
  proto::TaskResults incoming_;             // read into by the one read in flight
  std::shared_ptr<TaskStreamClient> self_;  // alive until OnDone

  absl::Mutex mu_;
  proto::TaskBatch writing_ ABSL_GUARDED_BY(mu_);            // the message in flight
  std::deque<proto::TaskSpec> queued_ ABSL_GUARDED_BY(mu_);  // for the next ones
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;      // Close was called
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;  // StartWritesDone issued
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;      // no writes start any more
};

// The worker's end: hands each task to `start`, which must call Answer once
// for it, from any thread. Ends the stream when the owner has closed its
// side and every task is answered. Deletes itself when done.
class TaskStreamServer : public grpc::ServerBidiReactor<proto::TaskBatch, proto::TaskResults> {
 public:
  using Start = std::function<void(TaskStreamServer *stream, proto::TaskSpec task)>;

  // `refusal`: a status to end the stream with at once (no token).
  TaskStreamServer(Start start, grpc::Status refusal = grpc::Status::OK);

  // A task's answer (sent now, or with the next message). Answers after the
  // owner went away are dropped. `after_written` (may be empty) runs once
  // the message carrying the answer is written, or dropped.
  void Answer(std::string return_id, proto::PushTaskReply reply,
              std::function<void()> after_written = nullptr);

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override { delete this; }

 private:
  // Writes what is queued. True when nothing is left to write or answer and
  // the owner is done: the caller then releases mu_ and calls Finish, and
  // touches nothing of the stream after that (OnDone may delete it at once
  // on another thread).
  bool WriteOrFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Start start_;
  proto::TaskBatch incoming_;

  absl::Mutex mu_;
  struct QueuedAnswer {
    proto::TaskResult result;
    std::function<void()> after_written;  // may be empty
  };
  proto::TaskResults writing_ ABSL_GUARDED_BY(mu_);
  std::deque<QueuedAnswer> queued_ ABSL_GUARDED_BY(mu_);
  // after_written actions of the answers in writing_.
  std::vector<std::function<void()>> writing_actions_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool write_failed_ ABSL_GUARDED_BY(mu_) = false;  // the owner is gone
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  int unanswered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sunray
