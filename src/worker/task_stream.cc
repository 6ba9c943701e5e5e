#include "src/worker/task_stream.h"

#include "src/rpc/rpc.h"

namespace sunray {

namespace {

enum FrameType : uint8_t { kHello = 1, kTasks = 2, kResults = 3, kEnd = 4 };

// Sends `items` (tasks or answers) in frames of `Message`s up to
// kMaxTaskMessageBytes (a lone larger item travels alone). `add` moves one
// item into the message. False when the connection took no more frames.
template <typename Message, typename Item, typename Add>
bool SendInFrames(rpc::FrameConnection &connection, uint8_t type,
                  rpc::FrameConnection::Delivery delivery, std::vector<Item> &items, Add add) {
  Message message;
  size_t bytes = 0;
  std::string payload;
  auto flush = [&] {
    payload.clear();
    (void)message.SerializeToString(&payload);
    message.Clear();
    bytes = 0;
    return connection.Send(type, payload, delivery);
  };
  for (auto &item : items) {
    const size_t size = item.ByteSizeLong();
    if (bytes > 0 && bytes + size > kMaxTaskMessageBytes && !flush()) return false;
    bytes += size + 8;  // with the field's tag and length
    add(message, item);
  }
  return bytes == 0 || flush();
}

absl::Status StatusOfClose(const absl::Status &status, const std::string &address) {
  if (absl::IsCancelled(status)) return status;
  return absl::UnavailableError("the task stream to the worker at " + address +
                                " broke: " + std::string(status.message()));
}

}  // namespace

// --- The owner's end -------------------------------------------------------

TaskStreamClient::TaskStreamClient(std::string address, ResultsHandler on_results,
                                   EndHandler on_end)
    : address_(std::move(address)),
      on_results_(std::move(on_results)),
      on_end_(std::move(on_end)) {}

std::shared_ptr<TaskStreamClient> TaskStreamClient::Open(rpc::FrameLoop *loop,
                                                         const std::string &address,
                                                         const std::string &token,
                                                         ResultsHandler on_results,
                                                         EndHandler on_end) {
  std::shared_ptr<TaskStreamClient> stream(
      new TaskStreamClient(address, std::move(on_results), std::move(on_end)));
  // The handlers keep the stream alive until the connection is gone.
  rpc::FrameConnection::Handlers handlers;
  handlers.on_frame = [stream](uint8_t type, std::string &payload) {
    stream->OnFrame(type, payload);
  };
  // The worker sends no more: this side is done too.
  handlers.on_read_end = [stream] { stream->Connection()->CloseWrite(); };
  handlers.on_closed = [stream](const absl::Status &status) { stream->OnClosed(status); };
  absl::MutexLock lock(&stream->mu_);  // no Send before connection_ is set
  auto connection = loop->Connect(address, std::move(handlers));
  if (!connection.ok()) return nullptr;
  stream->connection_ = std::move(*connection);
  (void)stream->connection_->Send(kHello, token);
  return stream;
}

namespace {
thread_local std::weak_ptr<rpc::FrameConnection> last_sent_here;
}  // namespace

std::shared_ptr<rpc::FrameConnection> TaskStreamClient::LastSentFromThisThread() {
  return last_sent_here.lock();
}

bool TaskStreamClient::Send(std::vector<proto::TaskSpec> tasks) {
  absl::MutexLock lock(&mu_);
  if (closing_) return false;
  last_sent_here = connection_;
  // A caller waits for its first task at once; tasks sent while others are
  // unanswered can share a write.
  const auto delivery = unanswered_.fetch_add(static_cast<int64_t>(tasks.size())) == 0
                            ? rpc::FrameConnection::Delivery::kNow
                            : rpc::FrameConnection::Delivery::kSoon;
  return SendInFrames<proto::TaskBatch>(
      *connection_, kTasks, delivery, tasks,
      [](proto::TaskBatch &batch, proto::TaskSpec &task) { *batch.add_tasks() = std::move(task); });
}

void TaskStreamClient::Close() {
  absl::MutexLock lock(&mu_);
  closing_ = true;
  connection_->CloseWrite();
}

void TaskStreamClient::Cancel() {
  connection_->Abort(absl::CancelledError("the task stream was cancelled"));
}

void TaskStreamClient::OnFrame(uint8_t type, std::string &payload) {
  if (type == kResults) {
    proto::TaskResults results;
    if (!results.ParseFromString(payload)) {
      Connection()->Abort(absl::InternalError("unparseable answers"));
      return;
    }
    unanswered_.fetch_sub(results.results_size());
    on_results_(results);
  } else if (type == kEnd) {
    proto::StreamEnd end;
    if (!end.ParseFromString(payload) || end.code() < 0 || end.code() > 16) {
      Connection()->Abort(absl::InternalError("an unparseable end of stream"));
      return;
    }
    got_end_ = true;
    end_status_ = absl::Status(static_cast<absl::StatusCode>(end.code()), end.message());
  } else {
    Connection()->Abort(absl::InternalError("a frame of unknown type " + std::to_string(type) +
                                            " from the worker"));
  }
}

void TaskStreamClient::OnClosed(const absl::Status &status) {
  {
    absl::MutexLock lock(&mu_);
    closing_ = true;  // nothing more can be sent
  }
  // Neither handler runs again: let go of what they hold (they often hold
  // whoever holds this stream).
  EndHandler on_end = std::move(on_end_);
  on_end_ = nullptr;
  on_results_ = nullptr;
  if (!status.ok()) {
    on_end(StatusOfClose(status, address_));
  } else if (got_end_) {
    on_end(end_status_);
  } else {
    on_end(absl::UnavailableError("the worker at " + address_ +
                                  " closed its task stream without an end"));
  }
}

// --- The worker's end ------------------------------------------------------

rpc::FrameConnection::Handlers TaskStreamServer::Serve(
    std::shared_ptr<rpc::FrameConnection> connection, const std::string &token, Start start) {
  auto *stream = new TaskStreamServer(std::move(connection), token, std::move(start));
  rpc::FrameConnection::Handlers handlers;
  handlers.on_frame = [stream](uint8_t type, std::string &payload) {
    stream->OnFrame(type, payload);
  };
  handlers.on_read_end = [stream] { stream->OnReadEnd(); };
  handlers.on_closed = [stream](const absl::Status &) { stream->OnClosed(); };
  return handlers;
}

TaskStreamServer::TaskStreamServer(std::shared_ptr<rpc::FrameConnection> connection,
                                   std::string token, Start start)
    : connection_(std::move(connection)), token_(std::move(token)), start_(std::move(start)) {}

void TaskStreamServer::OnFrame(uint8_t type, std::string &payload) {
  if (!authenticated_) {
    if (type != kHello || !rpc::TokenMatches(payload, token_)) {
      End(rpc::FromGrpcStatus(rpc::UnauthenticatedStatus()));  // nothing else is read
      return;
    }
    authenticated_ = true;
    connection_->MarkAuthenticated();
    return;
  }
  proto::TaskBatch batch;
  if (type != kTasks || !batch.ParseFromString(payload)) {
    End(absl::InvalidArgumentError(type != kTasks
                                       ? "a frame of unexpected type " + std::to_string(type)
                                       : "a malformed task batch"));
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    if (ended_) return;
    unanswered_ += batch.tasks_size();
  }
  // Started in the order they came (known here for CancelTask).
  for (auto &task : *batch.mutable_tasks()) start_(this, std::move(task));
}

void TaskStreamServer::OnReadEnd() {
  bool end;
  {
    absl::MutexLock lock(&mu_);
    reads_done_ = true;
    end = unanswered_ == 0 && !ended_;
  }
  // The owner closed its side (or went away): end once all is answered.
  if (end) End(absl::OkStatus());
}

void TaskStreamServer::Answer(std::string return_id, proto::PushTaskReply reply,
                              std::function<void()> after_written) {
  bool end = false;
  bool done = false;
  bool sent = false;
  {
    absl::MutexLock lock(&mu_);
    --unanswered_;
    if (!closed_ && !ended_) {
      // Under mu_, so that End cannot overtake it.
      proto::TaskResults results;
      proto::TaskResult *result = results.add_results();
      result->set_return_id(std::move(return_id));
      *result->mutable_reply() = std::move(reply);
      // The owner waits for this answer now unless more of its tasks are
      // still to run here: then it can share a write with theirs.
      const auto delivery = unanswered_ == 0 ? rpc::FrameConnection::Delivery::kNow
                                             : rpc::FrameConnection::Delivery::kSoon;
      sent = connection_->Send(kResults, results.SerializeAsString(), delivery,
                               std::move(after_written));
      // (Send leaves `after_written` alone when it returns false.)
    }
    end = reads_done_ && unanswered_ == 0 && !ended_ && !closed_;
    done = DoneLocked();
  }
  if (!sent && after_written) after_written();  // dropped: the owner is gone
  if (end) End(absl::OkStatus());
  if (done) delete this;
}

void TaskStreamServer::End(const absl::Status &status) {
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  ended_ = true;
  proto::StreamEnd end;
  end.set_code(static_cast<int32_t>(status.code()));
  end.set_message(std::string(status.message()));
  (void)connection_->Send(kEnd, end.SerializeAsString());
  connection_->CloseWrite();
}

void TaskStreamServer::OnClosed() {
  bool done;
  {
    absl::MutexLock lock(&mu_);
    closed_ = true;
    done = DoneLocked();
  }
  if (done) delete this;
}

}  // namespace sunray

namespace sunray {

// --- A process's streams -----------------------------------------------------

std::shared_ptr<TaskSender> TaskStreams::Open(const std::string &address,
                                              TaskSender::ResultsHandler on_results,
                                              TaskSender::EndHandler on_end) {
  // Registered before it opens, under the lock, so that CancelAllAndWait
  // cannot miss it or cancel it half-made.
  absl::MutexLock lock(&mu_);
  if (closed_) return nullptr;
  auto registered = std::make_shared<TaskStreamClient *>(nullptr);
  auto stream = TaskStreamClient::Open(
      loop_, address, token_, std::move(on_results),
      [this, registered, on_end = std::move(on_end)](const absl::Status &status) {
        on_end(status);
        absl::MutexLock lock(&mu_);
        open_.erase(*registered);
      });
  if (stream == nullptr) return nullptr;
  *registered = stream.get();
  open_.insert(stream.get());
  return stream;
}

void TaskStreams::CancelAllAndWait() {
  absl::MutexLock lock(&mu_);
  closed_ = true;
  for (TaskStreamClient *stream : open_) stream->Cancel();
  mu_.Await(absl::Condition(
      +[](absl::flat_hash_set<TaskStreamClient *> *open) { return open->empty(); }, &open_));
}

}  // namespace sunray
