// FrameConnection: one connection of a FrameLoop (frame_loop.h); the loop's
// own side (reading, closing, the epoll set) is in frame_loop.cc.
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "src/rpc/frame_loop.h"

namespace sunray::rpc {

namespace {

void PutHeader(char *header, size_t payload, uint8_t type) {
  const auto length = static_cast<uint32_t>(payload);
  for (int i = 0; i < 4; ++i) header[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  header[4] = static_cast<char>(type);
}

// poll()'s timeout for `deadline`: -1 for none, rounded up to a millisecond.
int PollTimeout(absl::Time deadline) {
  if (deadline == absl::InfiniteFuture()) return -1;
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return 0;
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))),
                        std::numeric_limits<int>::max()));
}

}  // namespace

// --- ReadWaker -------------------------------------------------------------

// (-1 when the process is out of file descriptors: then ReadHere declines
// and the thread waits the usual way.)
ReadWaker::ReadWaker() : fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {}

ReadWaker::~ReadWaker() {
  if (fd_ >= 0) close(fd_);
}

ReadWaker &ReadWaker::ForThisThread() {
  thread_local ReadWaker waker;
  return waker;
}

void ReadWaker::Wake() {
  if (fd_ < 0 || std::this_thread::get_id() == owner_) return;
  const uint64_t one = 1;
  (void)!write(fd_, &one, sizeof(one));
}

void ReadWaker::Drain() {
  uint64_t count;
  (void)!read(fd_, &count, sizeof(count));
}

// --- FrameConnection -------------------------------------------------------

FrameConnection::FrameConnection(FrameLoop *loop, uint64_t id, int fd, std::string peer,
                                 bool connecting, bool authenticated)
    : loop_(loop),
      id_(id),
      fd_(fd),
      peer_(std::move(peer)),
      connecting_(connecting),
      authenticated_(authenticated) {}

FrameConnection::~FrameConnection() = default;

bool FrameConnection::Send(uint8_t type, std::string_view payload, Delivery delivery,
                           std::function<void()> &&after_written) {
  char header[kFrameHeaderBytes];
  PutHeader(header, payload.size(), type);
  std::function<void()> done;
  {
    absl::MutexLock lock(&mu_);
    if (failed_ || close_write_) return false;
    size_t sent = 0;
    if (delivery == Delivery::kNow && !connecting_ && out_offset_ == out_.size()) {
      // Nothing waits before this frame: straight to the socket.
      iovec parts[2] = {{header, kFrameHeaderBytes},
                        {const_cast<char *>(payload.data()), payload.size()}};
      msghdr message{};
      message.msg_iov = parts;
      message.msg_iovlen = payload.empty() ? 1 : 2;
      ssize_t n;
      do {
        n = sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        FailLocked(
            absl::UnavailableError("writing to " + peer_ + " failed: " + std::strerror(errno)));
        if (after_written) actions_.push_back({0, std::move(after_written)});  // run as dropped
        return true;
      }
      sent = n < 0 ? 0 : static_cast<size_t>(n);
      if (sent == kFrameHeaderBytes + payload.size()) {
        done = std::move(after_written);
      } else {
        out_.clear();
        out_offset_ = 0;
      }
    }
    if (sent < kFrameHeaderBytes + payload.size()) {
      if (sent < kFrameHeaderBytes) out_.append(header + sent, kFrameHeaderBytes - sent);
      const size_t from = sent > kFrameHeaderBytes ? sent - kFrameHeaderBytes : 0;
      out_.append(payload.data() + from, payload.size() - from);
      if (after_written) actions_.push_back({out_.size(), std::move(after_written)});
      if (delivery == Delivery::kSoon && !watching_out_) {
        if (!flush_scheduled_) {
          flush_scheduled_ = true;
          loop_->ScheduleFlush(id_);
        }
      } else {
        WatchLocked();
      }
    }
  }
  if (done) loop_->Defer(std::move(done));
  return true;
}

void FrameConnection::CloseWrite() {
  absl::MutexLock lock(&mu_);
  if (close_write_ || failed_) return;
  close_write_ = true;
  if (!connecting_ && !flush_scheduled_ && out_offset_ == out_.size()) {
    (void)shutdown(fd_, SHUT_WR);
    write_shut_ = true;
    loop_->Recheck(id_);  // the read side may have ended already
  }
}

void FrameConnection::Abort(const absl::Status &status) {
  absl::MutexLock lock(&mu_);
  FailLocked(status);
}

FrameConnection::ReadHereResult FrameConnection::ReadHere(ReadWaker &waker, absl::Time deadline,
                                                          absl::FunctionRef<bool()> satisfied) {
  {
    absl::MutexLock lock(&mu_);
    if (waker.fd_ < 0 || borrower_ != nullptr || loop_reading_ || failed_ || read_ended_ ||
        !authenticated_) {
      return ReadHereResult::kNotNow;
    }
    borrower_ = &waker;
    UpdateEventsLocked();  // the loop stops watching for input
  }
  if (waker.buffer_ == nullptr) waker.buffer_ = std::make_unique<char[]>(kReadChunkBytes);
  ReadHereResult result = ReadHereResult::kSatisfied;
  while (!satisfied()) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {waker.fd_, POLLIN, 0}};
    const int n = poll(fds, 2, PollTimeout(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result = ReadHereResult::kNotNow;
      break;
    }
    if (n == 0) {
      result = ReadHereResult::kDeadline;
      break;
    }
    if (fds[1].revents != 0) {
      waker.Drain();
      result = ReadHereResult::kWoken;
      break;
    }
    loop_->ReadAndDeliver(*this, waker.buffer_.get());
    bool over;
    {
      absl::MutexLock lock(&mu_);
      over = failed_ || read_ended_;
    }
    if (over) {
      result = satisfied() ? ReadHereResult::kSatisfied : ReadHereResult::kNotNow;
      break;
    }
  }
  absl::MutexLock lock(&mu_);
  borrower_ = nullptr;
  UpdateEventsLocked();
  // The loop closes what ended or broke meanwhile (it left that to us).
  if (failed_ || read_ended_) loop_->Recheck(id_);
  return result;
}

void FrameConnection::MarkAuthenticated() {
  absl::MutexLock lock(&mu_);
  if (authenticated_) return;
  authenticated_ = true;
  loop_->unauthenticated_.fetch_sub(1, std::memory_order_relaxed);
}

bool FrameConnection::FlushLocked(std::vector<std::function<void()>> *due) {
  while (out_offset_ < out_.size()) {
    const ssize_t n = send(fd_, out_.data() + out_offset_, out_.size() - out_offset_,
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      FailLocked(
          absl::UnavailableError("writing to " + peer_ + " failed: " + std::strerror(errno)));
      return false;
    }
    out_offset_ += static_cast<size_t>(n);
  }
  size_t kept = 0;
  for (auto &pending : actions_) {
    if (pending.end <= out_offset_) {
      due->push_back(std::move(pending.action));
    } else {
      actions_[kept++] = std::move(pending);
    }
  }
  actions_.resize(kept);
  if (out_offset_ == out_.size()) {
    out_.clear();
    out_offset_ = 0;
  } else if (out_offset_ > (1 << 20) && out_offset_ > out_.size() / 2) {
    out_.erase(0, out_offset_);
    for (auto &pending : actions_) pending.end -= out_offset_;
    out_offset_ = 0;
  }
  return true;
}

void FrameConnection::FailLocked(const absl::Status &status) {
  if (failed_) return;
  failed_ = true;
  error_ = status;
  // Only the loop closes the socket (its number must not be reused while
  // another thread may still write to it or poll it).
  if (borrower_ != nullptr) borrower_->Wake();
  loop_->Recheck(id_);
}

void FrameConnection::WatchLocked() {
  if (watching_out_) return;
  watching_out_ = true;
  UpdateEventsLocked();
}

void FrameConnection::AfterFlushLocked() {
  if (failed_ || connecting_) return;
  if (out_offset_ < out_.size()) {
    WatchLocked();
    return;
  }
  if (close_write_ && !write_shut_) {
    (void)shutdown(fd_, SHUT_WR);
    write_shut_ = true;
  }
  if (watching_out_) {
    watching_out_ = false;
    UpdateEventsLocked();
  }
}

void FrameConnection::UpdateEventsLocked() {
  if (failed_) return;
  (void)loop_->Modify(fd_, id_, !read_ended_ && borrower_ == nullptr, watching_out_,
                      /*add=*/false);
}

}  // namespace sunray::rpc
