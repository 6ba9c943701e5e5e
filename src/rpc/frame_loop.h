// Framed TCP connections on one epoll thread: the transport of the task
// streams (src/worker/task_stream.h), where thread wake-ups are what a
// synchronous call costs.
//
// Why not gRPC there: in gRPC 1.51 (epoll1 poller) every thread waiting on
// any completion queue of a process takes turns at one process-wide epoll
// set, and the thread that polled hands the turn to a waiting one around
// every event; with the two "nexting" threads of the callback API and any
// loop of our own, that measured 10 to 15 context switches per synchronous
// task round trip (perf sched, single_client_tasks_sync), on top of HTTP/2
// framing. Here a frame is written by the thread that has it (one send),
// and read by the one loop thread (one wake-up).
//
// Wire format: every frame is a 4-byte little-endian payload length, a
// 1-byte type, then the payload. What the types mean is the user's.
//
//   FrameLoop loop({});
//   auto port = loop.Listen("127.0.0.1", [](std::shared_ptr<FrameConnection> c) {
//     return FrameConnection::Handlers{...};
//   });
//   auto connection = loop.Connect("127.0.0.1:" + port, handlers);
//   connection->Send(kHello, token);
//
// Accepted connections start unauthenticated: their frames may be at most
// Options::max_unauthenticated_frame_bytes, and the loop closes them after
// Options::handshake_timeout unless the user calls MarkAuthenticated.
//
// Reading where the answer is awaited: a thread that would sleep until the
// loop has read a frame and woken it can read the connection itself
// (FrameConnection::ReadHere). The kernel then wakes the waiting thread
// directly when the bytes arrive: one wake-up per answer instead of two
// (the loop's, then the waiter's).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace sunray::rpc {

// A frame's header: the payload's length (4 bytes, little-endian), its type.
inline constexpr size_t kFrameHeaderBytes = 5;
// What one read() of a connection takes at most.
inline constexpr size_t kReadChunkBytes = 64 << 10;

class FrameLoop;

// A thread's means of reading a connection itself (FrameConnection::ReadHere)
// and of being woken from that read by another thread, when what it waits
// for came another way. One per thread.
class ReadWaker {
 public:
  static ReadWaker &ForThisThread();
  // Ends this waker's thread's ReadHere (or its next one) early. From any
  // thread; a no-op on the waker's own thread, which sees for itself what
  // changed once the frame it is handling returns.
  void Wake();

  ~ReadWaker();
  ReadWaker(const ReadWaker &) = delete;
  ReadWaker &operator=(const ReadWaker &) = delete;

 private:
  friend class FrameConnection;
  ReadWaker();
  // Empties the eventfd (a Wake that arrived).
  void Drain();

  const int fd_;  // an eventfd
  const std::thread::id owner_ = std::this_thread::get_id();
  std::unique_ptr<char[]> buffer_;  // reads, made on first use
};

// One connection. Thread-safe; its handlers run in this order: on_frame
// (any number of times), on_read_end (once, when the peer will send no
// more), on_closed (once, last, when the socket is gone). on_closed runs on
// the loop thread; the others on the loop thread or on a thread in ReadHere,
// never two at once.
class FrameConnection {
 public:
  struct Handlers {
    std::function<void(uint8_t type, std::string &payload)> on_frame;
    std::function<void()> on_read_end;
    // OK when both sides ended cleanly; otherwise why the connection broke
    // (the peer reset it, a frame too large, Abort's status, the loop
    // stopping).
    std::function<void(const absl::Status &status)> on_closed;
  };

  // kNow: written on the sending thread when nothing waits before it (one
  // syscall, one TCP segment: what a caller waiting for the answer wants).
  // kSoon: queued, and the loop writes everything queued at its next turn
  // (for frames the peer is not waiting on yet: under load, many frames
  // share a syscall and a segment).
  enum class Delivery { kNow, kSoon };

  // Sends one frame (see Delivery; a frame the socket does not take at
  // once is written by the loop). `after_written` (may be empty) runs on
  // the loop thread once the frame is with the kernel, or is dropped
  // because the connection broke. False once writing has ended (CloseWrite,
  // Abort, a broken connection): nothing is queued and `after_written` is
  // left to the caller, untouched.
  bool Send(uint8_t type, std::string_view payload, Delivery delivery = Delivery::kNow,
            std::function<void()> &&after_written = {});
  // No more frames from this side: the peer reads its end once what is
  // queued has been written.
  void CloseWrite();
  // Breaks the connection now; on_closed gets `status`.
  void Abort(const absl::Status &status);
  // Lifts the unauthenticated limits (frame size, handshake deadline).
  void MarkAuthenticated();

  enum class ReadHereResult {
    kSatisfied,  // `satisfied` returned true
    kWoken,      // the waker was woken: look again at what you wait for
    kDeadline,
    // Not read here: the loop or another thread reads it now, it is not
    // authenticated, it ended or broke (the loop settles it), or the waker
    // has no eventfd (out of descriptors). Wait the usual way.
    kNotNow,
  };
  // Reads the connection on this thread until `satisfied()` (asked after
  // each batch of frames, which run their handlers here), `waker` is woken,
  // or `deadline` passes; the loop leaves the socket's reading to this
  // thread meanwhile. `waker` must be this thread's. The caller must hold
  // no lock a handler takes.
  ReadHereResult ReadHere(ReadWaker &waker, absl::Time deadline,
                          absl::FunctionRef<bool()> satisfied);

  const std::string &peer() const { return peer_; }

  ~FrameConnection();

 private:
  friend class FrameLoop;
  struct PendingAction {
    size_t end;  // the action runs once this many bytes of out_ are written
    std::function<void()> action;
  };

  FrameConnection(FrameLoop *loop, uint64_t id, int fd, std::string peer, bool connecting,
                  bool authenticated);

  // Writes what the socket takes; collects the actions now due. Returns
  // false when the socket failed (with error_ set).
  bool FlushLocked(std::vector<std::function<void()>> *due) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the connection broken; the loop closes it (on this thread, if it
  // is the loop's).
  void FailLocked(const absl::Status &status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Asks for write readiness while output waits.
  void WatchLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a flush: ends writing if asked and all is out, or waits for the
  // socket to take the rest.
  void AfterFlushLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells epoll what the connection waits for now.
  void UpdateEventsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  FrameLoop *const loop_;
  const uint64_t id_;
  const int fd_;
  const std::string peer_;
  Handlers handlers_;  // set before the loop first sees the socket

  // The reader's (the loop thread, or the thread in ReadHere; the switch
  // between them goes through mu_).
  std::string in_;              // bytes read, not yet a whole frame
  bool read_end_told_ = false;  // on_read_end ran
  const absl::Time accepted_at_ = absl::Now();

  absl::Mutex mu_;
  bool connecting_ ABSL_GUARDED_BY(mu_);
  bool read_ended_ ABSL_GUARDED_BY(mu_) = false;  // the peer sends no more
  bool authenticated_ ABSL_GUARDED_BY(mu_);
  std::string out_ ABSL_GUARDED_BY(mu_);  // not yet written, from out_offset_
  size_t out_offset_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<PendingAction> actions_ ABSL_GUARDED_BY(mu_);  // `end` counts from out_ start
  bool close_write_ ABSL_GUARDED_BY(mu_) = false;            // CloseWrite asked
  bool write_shut_ ABSL_GUARDED_BY(mu_) = false;             // shutdown(SHUT_WR) done
  bool watching_out_ ABSL_GUARDED_BY(mu_) = false;
  bool flush_scheduled_ ABSL_GUARDED_BY(mu_) = false;  // kSoon frames wait for the loop
  bool failed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool loop_reading_ ABSL_GUARDED_BY(mu_) = false;      // the loop thread is in ReadFrames
  ReadWaker *borrower_ ABSL_GUARDED_BY(mu_) = nullptr;  // the thread in ReadHere
};

class FrameLoop {
 public:
  struct Options {
    // The largest payload a peer may send; a larger frame breaks the
    // connection with RESOURCE_EXHAUSTED.
    size_t max_frame_bytes = 64 << 20;
    size_t max_unauthenticated_frame_bytes = 4096;
    absl::Duration handshake_timeout = absl::Seconds(5);
  };
  using Accept = std::function<FrameConnection::Handlers(std::shared_ptr<FrameConnection>)>;

  explicit FrameLoop(Options options);
  ~FrameLoop();  // Stop
  FrameLoop(const FrameLoop &) = delete;
  FrameLoop &operator=(const FrameLoop &) = delete;

  // Starts the loop thread.
  absl::Status Start();
  // Breaks every connection (on_closed gets CANCELLED), stops listening and
  // joins the thread. Idempotent; not from the loop thread.
  void Stop();

  // Connects to "host:port" without blocking: frames sent meanwhile go out
  // once connected. Errors: InvalidArgument for an address that does not
  // parse, Unavailable once stopped; a refused connection breaks later,
  // through on_closed.
  absl::StatusOr<std::shared_ptr<FrameConnection>> Connect(const std::string &address,
                                                           FrameConnection::Handlers handlers);
  // Listens on `host`, a free port; returns the port. Each accepted
  // connection goes to `accept` on the loop thread, which returns its
  // handlers. One listener per loop.
  absl::StatusOr<int> Listen(const std::string &host, Accept accept);

 private:
  friend class FrameConnection;

  void Run();
  void HandleEvent(uint64_t id, uint32_t events);
  void AcceptAll();
  // Reads what is there; runs the frame handlers (unless a thread in
  // ReadHere reads the connection).
  void ReadFrames(const std::shared_ptr<FrameConnection> &connection);
  // What ReadFrames and ReadHere do: reads what the socket has (through
  // `buffer`, kReadChunk bytes) and runs the handlers of the whole frames,
  // then on_read_end if the peer ended. On the connection's reader only.
  void ReadAndDeliver(FrameConnection &c, char *buffer);
  // Closes the socket and runs on_closed, if the connection is done or
  // broken.
  void CloseIfDone(const std::shared_ptr<FrameConnection> &connection);
  void CloseNow(const std::shared_ptr<FrameConnection> &connection, absl::Status status);
  // Breaks the connections past their handshake deadline; returns the
  // next deadline (InfiniteFuture if none).
  absl::Time ExpireHandshakes();
  // Wakes the loop (a connection broke on another thread, or Stop).
  void Wake();
  bool OnLoopThread() const;
  // Asks the loop to look at connection `id` again (it broke, or its
  // writing ended): from any thread.
  void Recheck(uint64_t id);
  // Runs `action` on the loop thread soon.
  void Defer(std::function<void()> action);
  // Writes connection `id`'s queued frames at the loop's next turn.
  void ScheduleFlush(uint64_t id);
  void FlushScheduled(uint64_t id);
  // Registers `fd` for the events its connection waits for.
  bool Modify(int fd, uint64_t id, bool in, bool out, bool add);
  std::shared_ptr<FrameConnection> Find(uint64_t id);

  const Options options_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int listen_fd_ = -1;
  Accept accept_;
  std::thread thread_;
  const std::unique_ptr<char[]> read_buffer_;  // the loop thread's

  absl::Mutex mu_;
  std::map<uint64_t, std::shared_ptr<FrameConnection>> connections_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> recheck_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> deferred_ ABSL_GUARDED_BY(mu_);
  // Accepted connections not authenticated yet (their handshake deadlines
  // are checked only while there are any).
  std::atomic<int> unauthenticated_{0};
  std::vector<uint64_t> flush_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 2;  // 0: wake, 1: listener
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace sunray::rpc
