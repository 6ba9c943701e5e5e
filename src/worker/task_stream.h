// The stream that carries normal tasks to a leased worker and their answers
// back: one per lease, open while the owner holds the lease, and one per
// caller and actor incarnation. A unary call per task costs a new HTTP/2
// stream, its metadata, and several thread wake-ups on both sides; on a
// stream, a task is one frame and so is its answer.
//
// Transport: a framed TCP connection (rpc::FrameLoop) to the worker's task
// address, not gRPC: a synchronous round trip then wakes only the worker's
// loop thread, its execution thread, the owner's loop thread and the
// waiting caller (see frame_loop.h for what gRPC cost here). Frames, in
// order:
//
//   owner → worker   kHello (the cluster token), then kTasks (TaskBatch)*,
//                    then the end of its writing (Close)
//   worker → owner   kResults (TaskResults)*, then kEnd (StreamEnd: the
//                    status the stream ends with), then the end of writing
//
// A worker refuses a connection whose first frame is not kHello with the
// token (kEnd UNAUTHENTICATED), before it reads anything else; the loop
// closes one that says nothing for 5 s.
//
// Writes happen on the thread that has the data (the submitting caller,
// the thread that ran the task). Handlers (ResultsHandler, Start) run on the
// loop thread or on a thread that reads the connection while it waits (the
// caller in Get, an idle execution thread: FrameConnection::ReadHere);
// EndHandler on the loop thread. None may block.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "src/rpc/frame_loop.h"
#include "worker.pb.h"

namespace sunray {

// Tasks (or answers) ready together share a frame up to this size (a lone
// larger one travels alone); the worker takes frames up to 64 MiB.
inline constexpr size_t kMaxTaskMessageBytes = 4 << 20;
inline constexpr size_t kMaxTaskFrameBytes = 64 << 20;

// The owner's end as the submitters use it: tasks out, in order.
class TaskSender {
 public:
  // Runs for every message of answers (on the connection's reader).
  using ResultsHandler = std::function<void(proto::TaskResults &results)>;
  // Runs once, on the loop thread, after the last ResultsHandler call: OK
  // when the stream ended after Close, an error when the worker (or the
  // connection) went away, CANCELLED after Cancel.
  using EndHandler = std::function<void(const absl::Status &status)>;

  virtual ~TaskSender() = default;
  // Sends `tasks` now, on this thread. False once the stream is closed or
  // broken: the tasks were not sent (the end handler settles what was).
  virtual bool Send(std::vector<proto::TaskSpec> tasks) = 0;
  // No more tasks: the worker answers what it has, then the stream ends.
  virtual void Close() = 0;
};

// Opens task streams (a fake in component tests). Thread-safe.
class TaskStreamOpener {
 public:
  virtual ~TaskStreamOpener() = default;
  // A stream to the worker whose task address is `address`; null, with no
  // handler run, when none can be opened (shutting down, a bad address).
  // Otherwise `on_end` runs exactly once, after the last `on_results`.
  virtual std::shared_ptr<TaskSender> Open(const std::string &address,
                                           TaskSender::ResultsHandler on_results,
                                           TaskSender::EndHandler on_end) = 0;
};

// The owner's end. Thread-safe.
class TaskStreamClient : public TaskSender {
 public:
  // Opens a stream to the worker at `address` (its task address). Null,
  // with no handler run, when the loop does not run or the address does
  // not parse.
  static std::shared_ptr<TaskStreamClient> Open(rpc::FrameLoop *loop, const std::string &address,
                                                const std::string &token, ResultsHandler on_results,
                                                EndHandler on_end);

  bool Send(std::vector<proto::TaskSpec> tasks) override;
  void Close() override;
  // Breaks the stream now (Shutdown); the end handler gets CANCELLED.
  void Cancel();

  // The connection of the stream this thread last sent tasks on (null if
  // none, or if it is gone): where a caller waiting for an answer reads it
  // itself (rpc::FrameConnection::ReadHere).
  static std::shared_ptr<rpc::FrameConnection> LastSentFromThisThread();

 private:
  TaskStreamClient(std::string address, ResultsHandler on_results, EndHandler on_end);

  void OnFrame(uint8_t type, std::string &payload);
  void OnClosed(const absl::Status &status);
  // The connection, for the loop thread's handlers: they can run before
  // Open has stored it (a refused connect), so they wait for Open's lock.
  std::shared_ptr<rpc::FrameConnection> Connection() {
    absl::MutexLock lock(&mu_);
    return connection_;
  }

  const std::string address_;
  ResultsHandler on_results_;
  EndHandler on_end_;
  // Set once, in Open, under mu_; read without the lock only by threads
  // that got the stream from Open.
  std::shared_ptr<rpc::FrameConnection> connection_;

  std::atomic<int64_t> unanswered_{0};  // tasks sent, not answered yet

  // The connection's reader's (on_frame), then on_closed's.
  bool got_end_ = false;
  absl::Status end_status_;

  absl::Mutex mu_;  // orders Sends: tasks go out in the order they were given
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
};

// A process's streams on one frame loop: each is registered while open,
// so that Shutdown can break them all and wait until every end handler has
// run. Thread-safe.
class TaskStreams : public TaskStreamOpener {
 public:
  // `loop` must outlive this object.
  TaskStreams(rpc::FrameLoop *loop, std::string token) : loop_(loop), token_(std::move(token)) {}

  std::shared_ptr<TaskSender> Open(const std::string &address,
                                   TaskSender::ResultsHandler on_results,
                                   TaskSender::EndHandler on_end) override;
  // Opens no more; cancels every open stream and waits for their end
  // handlers. Idempotent.
  void CancelAllAndWait();

 private:
  rpc::FrameLoop *const loop_;
  const std::string token_;
  absl::Mutex mu_;
  absl::flat_hash_set<TaskStreamClient *> open_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

// The worker's end of one stream: hands each task to `start`, which must
// call Answer once for it, from any thread. Ends the stream when the owner
// has closed its side and every task is answered. Deletes itself once the
// connection is gone and every task is answered.
class TaskStreamServer {
 public:
  using Start = std::function<void(TaskStreamServer *stream, proto::TaskSpec task)>;

  // The handlers for a connection accepted on the worker's task address:
  // pass to FrameLoop::Listen as
  //   [&](auto connection) { return TaskStreamServer::Serve(connection, token, start); }
  static rpc::FrameConnection::Handlers Serve(std::shared_ptr<rpc::FrameConnection> connection,
                                              const std::string &token, Start start);

  // A task's answer, sent now on this thread. Answers after the owner went
  // away are dropped. `after_written` (may be empty) runs once the answer
  // is written, or dropped.
  void Answer(std::string return_id, proto::PushTaskReply reply,
              std::function<void()> after_written = nullptr);

  // Where the worker's execution thread, idle, reads the next task itself.
  const std::shared_ptr<rpc::FrameConnection> &connection() const { return connection_; }

 private:
  TaskStreamServer(std::shared_ptr<rpc::FrameConnection> connection, std::string token,
                   Start start);

  void OnFrame(uint8_t type, std::string &payload);
  void OnReadEnd();
  void OnClosed();
  // Ends the stream with `status` (kEnd, then the end of writing).
  void End(const absl::Status &status);
  // Once the connection is gone and nothing is unanswered: the last use.
  bool DoneLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return closed_ && unanswered_ == 0; }

  const std::shared_ptr<rpc::FrameConnection> connection_;
  const std::string token_;
  const Start start_;
  bool authenticated_ = false;  // the reader's (before kHello, the loop thread)

  absl::Mutex mu_;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;   // kEnd sent
  bool closed_ ABSL_GUARDED_BY(mu_) = false;  // the connection is gone
  int unanswered_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sunray
