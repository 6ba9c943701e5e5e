#include "src/worker/task_stream.h"

namespace sunray {

// gRPC calls a stream's OnDone only after every other reaction of it has
// returned, so inside a reaction the stream is alive. Outside one, the
// owner's end is kept alive by its callers' shared_ptr, and the worker's
// end by its unanswered tasks (it finishes only when none are left).

// --- The owner's end -------------------------------------------------------

TaskStreamClient::TaskStreamClient(std::unique_ptr<grpc::ClientContext> context,
                                   ResultsHandler on_results, EndHandler on_end)
    : context_(std::move(context)),
      on_results_(std::move(on_results)),
      on_end_(std::move(on_end)) {}

std::shared_ptr<TaskStreamClient> TaskStreamClient::Open(
    proto::WorkerService::Stub *stub, std::unique_ptr<grpc::ClientContext> context,
    ResultsHandler on_results, EndHandler on_end) {
  std::shared_ptr<TaskStreamClient> stream(
      new TaskStreamClient(std::move(context), std::move(on_results), std::move(on_end)));
  stream->self_ = stream;
  stub->async()->RunTasks(stream->context_.get(), stream.get());
  // Tasks are written from outside the reactions: the hold keeps the stream
  // from ending under them until writing stops.
  stream->AddHold();
  stream->StartRead(&stream->incoming_);
  stream->StartCall();
  return stream;
}

bool TaskStreamClient::Send(std::vector<proto::TaskSpec> tasks) {
  absl::MutexLock lock(&mu_);
  if (closing_ || stopped_) return false;
  for (auto &task : tasks) queued_.push_back(std::move(task));
  if (!write_in_flight_) WriteNextLocked();
  return true;
}

void TaskStreamClient::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  if (!write_in_flight_) WriteNextLocked();
}

void TaskStreamClient::WriteNextLocked() {
  if (stopped_) return;
  if (!queued_.empty()) {
    writing_.Clear();
    size_t bytes = 0;
    while (!queued_.empty()) {
      const size_t size = queued_.front().ByteSizeLong();
      if (writing_.tasks_size() > 0 && bytes + size > kMaxTaskMessageBytes) break;
      bytes += size;
      *writing_.add_tasks() = std::move(queued_.front());
      queued_.pop_front();
    }
    write_in_flight_ = true;
    StartWrite(&writing_);
    return;
  }
  if (closing_ && !writes_done_) {
    writes_done_ = true;
    StartWritesDone();
    StopWritingLocked();
  }
}

void TaskStreamClient::StopWritingLocked() {
  if (stopped_) return;
  stopped_ = true;
  RemoveHold();
}

void TaskStreamClient::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  write_in_flight_ = false;
  if (!ok) {
    // The stream broke; tasks not answered are settled by the end handler.
    StopWritingLocked();
    return;
  }
  WriteNextLocked();
}

void TaskStreamClient::OnReadDone(bool ok) {
  if (!ok) {
    absl::MutexLock lock(&mu_);
    StopWritingLocked();
    return;
  }
  on_results_(incoming_);
  incoming_.Clear();
  StartRead(&incoming_);
}

void TaskStreamClient::OnDone(const grpc::Status &status) {
  on_end_(status);
  std::shared_ptr<TaskStreamClient> last = std::move(self_);  // may delete this on return
}

// --- The worker's end ------------------------------------------------------

TaskStreamServer::TaskStreamServer(Start start, grpc::Status refusal) : start_(std::move(start)) {
  if (!refusal.ok()) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    Finish(refusal);
    return;
  }
  StartRead(&incoming_);
}

void TaskStreamServer::OnReadDone(bool ok) {
  if (!ok) {
    // The owner closed its side (or went away): end once all is answered.
    absl::ReleasableMutexLock lock(&mu_);
    reads_done_ = true;
    if (WriteOrFinishLocked()) {
      lock.Release();
      Finish(grpc::Status::OK);
    }
    return;
  }
  std::vector<proto::TaskSpec> tasks;
  tasks.reserve(static_cast<size_t>(incoming_.tasks_size()));
  for (auto &task : *incoming_.mutable_tasks()) tasks.push_back(std::move(task));
  incoming_.Clear();
  {
    absl::MutexLock lock(&mu_);
    unanswered_ += static_cast<int>(tasks.size());
  }
  // Started before the next read, so that they are known here (for
  // CancelTask) in the order they came.
  for (auto &task : tasks) start_(this, std::move(task));
  StartRead(&incoming_);
}

void TaskStreamServer::Answer(std::string return_id, proto::PushTaskReply reply,
                              std::function<void()> after_written) {
  std::function<void()> dropped;
  {
    absl::ReleasableMutexLock lock(&mu_);
    --unanswered_;
    if (write_failed_) {
      dropped = std::move(after_written);  // nowhere to write it
    } else {
      QueuedAnswer &answer = queued_.emplace_back();
      answer.result.set_return_id(std::move(return_id));
      *answer.result.mutable_reply() = std::move(reply);
      answer.after_written = std::move(after_written);
    }
    if (WriteOrFinishLocked()) {
      lock.Release();
      Finish(grpc::Status::OK);  // the stream may be gone after this: locals only
    }
  }
  if (dropped) dropped();
}

void TaskStreamServer::OnWriteDone(bool ok) {
  std::vector<std::function<void()>> written;
  {
    absl::ReleasableMutexLock lock(&mu_);
    write_in_flight_ = false;
    written.swap(writing_actions_);
    if (!ok) {
      write_failed_ = true;  // the owner is gone: answers have nowhere to go
      for (auto &answer : queued_) {
        if (answer.after_written) written.push_back(std::move(answer.after_written));
      }
      queued_.clear();
    }
    // Finishing inside a reaction is safe: OnDone waits for it to return.
    if (WriteOrFinishLocked()) {
      lock.Release();
      Finish(grpc::Status::OK);
    }
  }
  for (auto &action : written) action();
}

bool TaskStreamServer::WriteOrFinishLocked() {
  if (write_in_flight_ || finished_) return false;
  if (!queued_.empty()) {
    writing_.Clear();
    size_t bytes = 0;
    while (!queued_.empty()) {
      QueuedAnswer &answer = queued_.front();
      const size_t size = answer.result.ByteSizeLong();
      if (writing_.results_size() > 0 && bytes + size > kMaxTaskMessageBytes) break;
      bytes += size;
      *writing_.add_results() = std::move(answer.result);
      if (answer.after_written) writing_actions_.push_back(std::move(answer.after_written));
      queued_.pop_front();
    }
    write_in_flight_ = true;
    StartWrite(&writing_);
    return false;
  }
  if (!reads_done_ || unanswered_ > 0) return false;
  finished_ = true;
  return true;
}

}  // namespace sunray
