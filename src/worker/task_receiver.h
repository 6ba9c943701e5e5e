// The tasks a worker process runs (Ray: the task receiver and its
// scheduling queues): what owners push, on a task stream or by PushTask.
// Normal tasks and the actor's creation run on one execution queue in
// arrival order; actor calls in each caller's order (numbered from 0 per
// caller), up to the actor's max_concurrency at once.
//
// Owns: the execution queue and its threads — the one that calls Run (the
// process's main thread) and, for a concurrent actor, max_concurrency - 1
// more, started at its creation and joined by Stop; the hosted actor; which
// tasks wait or run here (for Cancel); cancels that came before their task
// (the newest kMaxEarlyCancels); and the waiting normal tasks sent back to
// their owners ("bounced") while the running one is blocked in Get.
// Collaborators (an interface, faked in task_receiver_test.cc): what runs a
// task and puts its result on the wire, and how the process ends
// (TaskRunner).
//
// Thread-safety: thread-safe; one lock, never held while a task runs, an
// answer is sent or the runner is called.
// Errors: a task that cannot run here (an actor call this worker hosts no
// actor for, a concurrency over kMaxActorConcurrency, a cancelled one) is
// answered with the error; nothing is thrown.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "src/common/id.h"
#include "src/core/function_executor.h"
#include "src/rpc/frame_loop.h"
#include "worker.pb.h"

namespace sunray {

class TaskStreamServer;

// What runs the tasks (the runtime: its function table, the node store,
// result storage and borrower registration) and ends the process.
class TaskRunner {
 public:
  virtual ~TaskRunner() = default;
  // Runs a normal task, or an actor call on the hosted `instance` (null for
  // a normal task).
  virtual ExecutionResult Run(const proto::TaskSpec &spec, void *instance) = 0;
  // Runs an actor's creation task; when it succeeds, `*instance` and
  // `*deleter` are the new actor.
  virtual ExecutionResult Create(const proto::TaskSpec &spec, void **instance,
                                 ray::internal::ActorDeleter *deleter) = 0;
  // Puts `result` on the wire as `spec`'s answer (large values in the node
  // store, the refs inside registered for the caller).
  virtual void Encode(const proto::TaskSpec &spec, ExecutionResult result,
                      proto::ObjectValue *out) = 0;
  // The hosted actor called ray::ExitActor and that call's answer is sent
  // (or could not be within a deadline): makes its death final and ends the
  // process. Does not return in a real worker.
  virtual void FinishActorExit(const std::string &actor_id) = 0;
  // A running normal task was cancelled with force: ends the process (its
  // owner reports the task cancelled). Does not return in a real worker.
  virtual void ForceExit() = 0;
};

class TaskReceiver {
 public:
  // Sends a task's answer (the reply filled in); `after_sent` (may be
  // empty) runs once it is written or dropped.
  using Finish = std::function<void(std::function<void()> after_sent)>;

  // `runner` must outlive this object.
  explicit TaskReceiver(TaskRunner *runner) : runner_(runner) {}
  // Stops; Run must have returned. The hosted actor is deleted.
  ~TaskReceiver();
  TaskReceiver(const TaskReceiver &) = delete;
  TaskReceiver &operator=(const TaskReceiver &) = delete;

  // Queues `spec` to run here; its answer goes in `*reply`, then `finish`
  // sends it. `spec` and `reply` must stay valid until `finish` is called.
  void Receive(const proto::TaskSpec &spec, proto::PushTaskReply *reply, Finish finish);
  // A task that came on a task stream: answered on that stream, and an idle
  // execution thread reads the stream for the next one itself.
  void ReceiveFromStream(TaskStreamServer *stream, proto::TaskSpec task);

  // ray::Cancel from the task's owner. A task waiting here is answered
  // cancelled when its turn comes; a running normal task is ended with the
  // process when `force`; one not here yet is answered cancelled if it
  // comes. True if the task was here.
  bool Cancel(const std::string &return_id, bool force);

  // The running normal task blocks in Get/Wait (true) or goes on (false).
  // While it is blocked, the normal tasks waiting behind it, and any that
  // arrive, are answered "bounced": their owners send them elsewhere.
  void SetBlocked(bool blocked);

  // Runs queued tasks on the calling thread until Stop.
  void Run();
  // Ends Run and the actor's threads once their current tasks return; the
  // tasks still queued are dropped unanswered. Idempotent.
  void Stop();

  // For tests: the threads the hosted actor was given beyond Run's.
  size_t extra_threads() const;

 private:
  // The actor this process hosts.
  struct HostedActor {
    void *instance = nullptr;
    ray::internal::ActorDeleter deleter = nullptr;
    int restarts = 0;
    // Per caller: the next call number to start, and calls that came early.
    struct Caller {
      int64_t next = 0;
      std::map<int64_t, std::function<void()>> parked;
    };
    absl::flat_hash_map<std::string, Caller> callers;
  };

  // Runs `spec` now on this thread, the answer into `*reply`.
  void Execute(const proto::TaskSpec &spec, proto::PushTaskReply *reply);
  // The actor's creation succeeded: it is hosted here from now on.
  void Host(const proto::TaskSpec &spec, void *instance, ray::internal::ActorDeleter deleter);
  // Answers `spec` cancelled, unless it was bounced already (false: its
  // call may be gone). Marks it running otherwise.
  bool StartLocked(const proto::TaskSpec &spec, bool *cancelled) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A task arrived: it waits to run (cancelled, if its cancel came first).
  void MarkReceivedLocked(const std::string &return_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An actor call enters its caller's order.
  void OrderLocked(const proto::TaskSpec &spec, std::function<void()> run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues work for the execution threads; wakes one that reads a stream.
  void EnqueueLocked(std::function<void()> work) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An idle execution thread reads the stream the last task came on until
  // work is queued (the next task then runs without a wake-up of the frame
  // loop and then of this thread). Returns at once if another thread reads
  // it or there is none.
  void ReadTasksHereLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || !queue_.empty();
  }

  TaskRunner *const runner_;

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  // The actor's threads beyond Run's (joined by Stop).
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  // The task stream the last task came on, and the idle execution thread
  // reading it (ReadTasksHereLocked), if any.
  std::weak_ptr<rpc::FrameConnection> feed_ ABSL_GUARDED_BY(mu_);
  rpc::ReadWaker *reading_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::unique_ptr<HostedActor> hosted_ ABSL_GUARDED_BY(mu_);
  // Normal tasks and actor calls waiting (false) or running (true) here, by
  // return id.
  absl::flat_hash_map<std::string, bool> running_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> cancelled_ ABSL_GUARDED_BY(mu_);
  // Cancels of tasks not received (yet), oldest first; bounded, since the
  // task may have finished already and never come.
  static constexpr size_t kMaxEarlyCancels = 1024;
  absl::flat_hash_set<std::string> early_cancels_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> early_cancel_order_ ABSL_GUARDED_BY(mu_);
  // Normal tasks waiting here (pipelined behind the running one), each with
  // how to send it back "bounced"; and those sent back by SetBlocked.
  absl::flat_hash_map<std::string, std::function<void()>> waiting_normal_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_set<std::string> bounced_ ABSL_GUARDED_BY(mu_);
  bool blocked_ ABSL_GUARDED_BY(mu_) = false;  // the running normal task waits in Get
};

}  // namespace sunray
