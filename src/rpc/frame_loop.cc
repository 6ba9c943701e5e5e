#include "src/rpc/frame_loop.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace sunray::rpc {

namespace {

constexpr uint64_t kWakeId = 0;
constexpr uint64_t kListenerId = 1;

std::string ErrnoText(int error) { return std::strerror(error); }

// The loop whose thread this is (null elsewhere).
thread_local const FrameLoop *current_loop = nullptr;

uint32_t GetLength(const char *header) {
  uint32_t length = 0;
  for (int i = 0; i < 4; ++i) {
    length |= static_cast<uint32_t>(static_cast<unsigned char>(header[i])) << (8 * i);
  }
  return length;
}

void SetNoDelay(int fd) {
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// "host:port" → a resolved TCP address.
absl::StatusOr<addrinfo *> Resolve(const std::string &address, bool passive) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError("not a host:port address: '" + address + "'");
  }
  const std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo *found = nullptr;
  const int error = getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (error != 0) {
    return absl::InvalidArgumentError("cannot resolve '" + address + "': " + gai_strerror(error));
  }
  return found;
}

}  // namespace

FrameLoop::FrameLoop(Options options)
    : options_(options), read_buffer_(std::make_unique<char[]>(kReadChunkBytes)) {}

FrameLoop::~FrameLoop() { Stop(); }

absl::Status FrameLoop::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("the frame loop runs already");
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return absl::InternalError("cannot create the frame loop's epoll set: " + ErrnoText(errno));
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeId;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &event) != 0) {
    return absl::InternalError("cannot watch the frame loop's wake-up fd: " + ErrnoText(errno));
  }
  started_ = true;
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void FrameLoop::Stop() {
  std::vector<std::shared_ptr<FrameConnection>> open;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto &[id, connection] : connections_) open.push_back(connection);
  }
  for (auto &connection : open) connection->Abort(absl::CancelledError("the frame loop stopped"));
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
  for (int *fd : {&listen_fd_, &epoll_fd_, &wake_fd_}) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
  }
}

absl::StatusOr<std::shared_ptr<FrameConnection>> FrameLoop::Connect(
    const std::string &address, FrameConnection::Handlers handlers) {
  auto resolved = Resolve(address, /*passive=*/false);
  if (!resolved.ok()) return resolved.status();
  addrinfo *target = *resolved;
  const int fd = socket(target->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    freeaddrinfo(target);
    return absl::UnavailableError("cannot create a socket for " + address + ": " +
                                  ErrnoText(errno));
  }
  SetNoDelay(fd);
  int error = 0;
  if (connect(fd, target->ai_addr, target->ai_addrlen) != 0 && errno != EINPROGRESS) {
    error = errno;
  }
  freeaddrinfo(target);
  std::shared_ptr<FrameConnection> connection;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !started_) {
      close(fd);
      return absl::UnavailableError("the frame loop is not running");
    }
    const uint64_t id = next_id_++;
    connection.reset(new FrameConnection(this, id, fd, address, /*connecting=*/true,
                                         /*authenticated=*/true));
    connection->handlers_ = std::move(handlers);
    connections_[id] = connection;
  }
  {
    absl::MutexLock lock(&connection->mu_);
    connection->watching_out_ = true;  // writable = connected
    if (!Modify(fd, connection->id_, /*in=*/true, /*out=*/true, /*add=*/true) && error == 0) {
      error = errno;
    }
    if (error != 0) {
      connection->FailLocked(
          absl::UnavailableError("cannot connect to " + address + ": " + ErrnoText(error)));
    }
  }
  return connection;
}

absl::StatusOr<int> FrameLoop::Listen(const std::string &host, Accept accept) {
  auto resolved = Resolve(host + ":0", /*passive=*/true);
  if (!resolved.ok()) return resolved.status();
  addrinfo *local = *resolved;
  const int fd = socket(local->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int error = fd < 0 ? errno : 0;
  if (error == 0) {
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, local->ai_addr, local->ai_addrlen) != 0 || listen(fd, 128) != 0) error = errno;
  }
  freeaddrinfo(local);
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  if (error == 0 && getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &length) != 0) {
    error = errno;
  }
  if (error != 0) {
    if (fd >= 0) close(fd);
    return absl::UnavailableError("cannot listen on " + host + ": " + ErrnoText(error));
  }
  const int port = bound.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<sockaddr_in6 *>(&bound)->sin6_port)
                       : ntohs(reinterpret_cast<sockaddr_in *>(&bound)->sin_port);
  absl::MutexLock lock(&mu_);
  if (!started_ || stopping_ || listen_fd_ >= 0) {
    close(fd);
    return absl::FailedPreconditionError("the frame loop is not running, or listens already");
  }
  accept_ = std::move(accept);
  listen_fd_ = fd;
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kListenerId;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    return absl::InternalError("cannot watch the listening socket: " + ErrnoText(errno));
  }
  return port;
}

void FrameLoop::Recheck(uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    recheck_.push_back(id);
  }
  if (!OnLoopThread()) Wake();
}

void FrameLoop::Defer(std::function<void()> action) {
  {
    absl::MutexLock lock(&mu_);
    deferred_.push_back(std::move(action));
  }
  if (!OnLoopThread()) Wake();
}

void FrameLoop::ScheduleFlush(uint64_t id) {
  {
    absl::MutexLock lock(&mu_);
    flush_.push_back(id);
  }
  if (!OnLoopThread()) Wake();
}

void FrameLoop::FlushScheduled(uint64_t id) {
  std::shared_ptr<FrameConnection> connection = Find(id);
  if (connection == nullptr) return;
  std::vector<std::function<void()>> due;
  {
    absl::MutexLock lock(&connection->mu_);
    connection->flush_scheduled_ = false;
    if (!connection->failed_ && !connection->connecting_ && connection->FlushLocked(&due)) {
      connection->AfterFlushLocked();
    }
  }
  for (auto &action : due) action();
  CloseIfDone(connection);
}

bool FrameLoop::OnLoopThread() const { return current_loop == this; }

void FrameLoop::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

bool FrameLoop::Modify(int fd, uint64_t id, bool in, bool out, bool add) {
  epoll_event event{};
  event.events = (in ? EPOLLIN | EPOLLRDHUP : 0u) | (out ? EPOLLOUT : 0u);
  event.data.u64 = id;
  return epoll_ctl(epoll_fd_, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &event) == 0;
}

std::shared_ptr<FrameConnection> FrameLoop::Find(uint64_t id) {
  absl::MutexLock lock(&mu_);
  auto it = connections_.find(id);
  return it == connections_.end() ? nullptr : it->second;
}

void FrameLoop::Run() {
  pthread_setname_np(pthread_self(), "sunray-frames");
  current_loop = this;
  epoll_event events[64];
  while (true) {
    int timeout_ms = -1;
    const absl::Time next = ExpireHandshakes();
    if (next != absl::InfiniteFuture()) {
      timeout_ms =
          static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(next - absl::Now()) + 1));
    }
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ && connections_.empty()) break;
      // Work queued from this thread (an expired handshake): no waiting.
      if (!recheck_.empty() || !deferred_.empty() || !flush_.empty()) timeout_ms = 0;
    }
    const int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      if (id == kWakeId) {
        uint64_t count;
        (void)!read(wake_fd_, &count, sizeof(count));
      } else if (id == kListenerId) {
        AcceptAll();
      } else {
        HandleEvent(id, events[i].events);
      }
    }
    std::vector<uint64_t> recheck;
    std::vector<uint64_t> flush;
    std::vector<std::function<void()>> deferred;
    {
      absl::MutexLock lock(&mu_);
      recheck.swap(recheck_);
      flush.swap(flush_);
      deferred.swap(deferred_);
    }
    for (uint64_t id : flush) FlushScheduled(id);
    for (auto &action : deferred) action();
    for (uint64_t id : recheck) {
      if (auto connection = Find(id)) CloseIfDone(connection);
    }
  }
  std::vector<std::function<void()>> deferred;
  {
    absl::MutexLock lock(&mu_);
    deferred.swap(deferred_);
  }
  for (auto &action : deferred) action();
}

void FrameLoop::AcceptAll() {
  while (true) {
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    const int fd = accept4(listen_fd_, reinterpret_cast<sockaddr *>(&peer), &length,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a connection that died before it was taken
    SetNoDelay(fd);
    char host[NI_MAXHOST] = "?";
    char port[NI_MAXSERV] = "?";
    (void)getnameinfo(reinterpret_cast<sockaddr *>(&peer), length, host, sizeof(host), port,
                      sizeof(port), NI_NUMERICHOST | NI_NUMERICSERV);
    std::shared_ptr<FrameConnection> connection;
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) {
        close(fd);
        continue;
      }
      const uint64_t id = next_id_++;
      connection.reset(new FrameConnection(this, id, fd, std::string(host) + ":" + port,
                                           /*connecting=*/false, /*authenticated=*/false));
      connections_[id] = connection;
      unauthenticated_.fetch_add(1, std::memory_order_relaxed);
    }
    connection->handlers_ = accept_(connection);
    if (!Modify(fd, connection->id_, /*in=*/true, /*out=*/false, /*add=*/true)) {
      connection->Abort(
          absl::InternalError("cannot watch an accepted socket: " + ErrnoText(errno)));
    }
  }
}

void FrameLoop::HandleEvent(uint64_t id, uint32_t events) {
  std::shared_ptr<FrameConnection> connection = Find(id);
  if (connection == nullptr) return;
  if (events & (EPOLLOUT | EPOLLERR)) {
    std::vector<std::function<void()>> due;
    {
      absl::MutexLock lock(&connection->mu_);
      if (connection->connecting_ && !connection->failed_) {
        int error = 0;
        socklen_t length = sizeof(error);
        (void)getsockopt(connection->fd_, SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0) {
          connection->FailLocked(absl::UnavailableError("cannot connect to " + connection->peer_ +
                                                        ": " + ErrnoText(error)));
        } else {
          connection->connecting_ = false;
        }
      }
      if (!connection->failed_ && !connection->connecting_ && connection->FlushLocked(&due)) {
        connection->AfterFlushLocked();
      }
    }
    for (auto &action : due) action();
  }
  if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) ReadFrames(connection);
  if ((events & (EPOLLHUP | EPOLLERR)) != 0) {
    // With reading over, epoll still reports a reset (or the end of both
    // directions) until the socket is closed: settle it now.
    absl::MutexLock lock(&connection->mu_);
    if (connection->read_ended_ && !connection->write_shut_) {
      int error = 0;
      socklen_t length = sizeof(error);
      (void)getsockopt(connection->fd_, SOL_SOCKET, SO_ERROR, &error, &length);
      connection->FailLocked(absl::UnavailableError(
          "the connection to " + connection->peer_ + " broke" +
          (error != 0 ? ": " + ErrnoText(error) : std::string(" (the peer closed it)"))));
    }
  }
  CloseIfDone(connection);
}

void FrameLoop::ReadFrames(const std::shared_ptr<FrameConnection> &connection) {
  FrameConnection &c = *connection;
  {
    absl::MutexLock lock(&c.mu_);
    // (A thread in ReadHere reads it: epoll may have reported it just
    // before that thread took the reading.)
    if (c.read_ended_ || c.failed_ || c.borrower_ != nullptr) return;
    c.loop_reading_ = true;
  }
  ReadAndDeliver(c, read_buffer_.get());
  absl::MutexLock lock(&c.mu_);
  c.loop_reading_ = false;
}

void FrameLoop::ReadAndDeliver(FrameConnection &c, char *buffer) {
  bool ended = false;
  while (true) {
    {
      absl::MutexLock lock(&c.mu_);
      if (c.failed_) return;
    }
    const ssize_t n = read(c.fd_, buffer, kReadChunkBytes);
    if (n > 0) c.in_.append(buffer, static_cast<size_t>(n));
    if (n == 0) {
      ended = true;
      break;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      const int error = errno;
      absl::MutexLock lock(&c.mu_);
      c.FailLocked(
          absl::UnavailableError("reading from " + c.peer_ + " failed: " + ErrnoText(error)));
      return;
    }
    if (static_cast<size_t>(n) < kReadChunkBytes) break;  // drained (level-triggered: safe)
  }
  size_t position = 0;
  while (c.in_.size() - position >= kFrameHeaderBytes) {
    const uint32_t length = GetLength(c.in_.data() + position);
    size_t limit;
    {
      absl::MutexLock lock(&c.mu_);
      if (c.failed_) return;
      limit =
          c.authenticated_ ? options_.max_frame_bytes : options_.max_unauthenticated_frame_bytes;
      if (length > limit) {
        c.FailLocked(absl::ResourceExhaustedError(
            "a frame of " + std::to_string(length) + " bytes from " + c.peer_ +
            " is over the limit of " + std::to_string(limit) + " bytes"));
        return;
      }
    }
    if (c.in_.size() - position < kFrameHeaderBytes + length) break;
    const auto type = static_cast<uint8_t>(c.in_[position + 4]);
    std::string payload = c.in_.substr(position + kFrameHeaderBytes, length);
    position += kFrameHeaderBytes + length;
    c.handlers_.on_frame(type, payload);
  }
  c.in_.erase(0, position);
  if (ended) {
    {
      absl::MutexLock lock(&c.mu_);
      if (!c.in_.empty()) {
        c.FailLocked(absl::UnavailableError(c.peer_ + " closed the connection inside a frame"));
        return;
      }
      c.read_ended_ = true;
      c.UpdateEventsLocked();  // level-triggered: stop asking for reads
    }
    c.read_end_told_ = true;
    if (c.handlers_.on_read_end) c.handlers_.on_read_end();
  }
}

void FrameLoop::CloseIfDone(const std::shared_ptr<FrameConnection> &connection) {
  absl::Status status;
  {
    absl::MutexLock lock(&connection->mu_);
    // A thread in ReadHere may be polling the socket: it asks again when it
    // leaves.
    if (connection->borrower_ != nullptr) return;
    if (connection->failed_) {
      status = connection->error_;
    } else if (!(connection->read_ended_ && connection->write_shut_ &&
                 connection->out_offset_ == connection->out_.size())) {
      return;
    }
  }
  CloseNow(connection, std::move(status));
}

void FrameLoop::CloseNow(const std::shared_ptr<FrameConnection> &connection, absl::Status status) {
  {
    absl::MutexLock lock(&mu_);
    if (connections_.erase(connection->id_) == 0) return;  // closed already
  }
  std::vector<std::function<void()>> dropped;
  {
    absl::MutexLock lock(&connection->mu_);
    (void)epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection->fd_, nullptr);
    if (!status.ok()) {
      // A broken connection ends with a reset: the peer sees it broke,
      // not a clean end.
      linger reset{1, 0};
      (void)setsockopt(connection->fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    }
    if (!connection->authenticated_) {  // it leaves the handshake count
      connection->authenticated_ = true;
      unauthenticated_.fetch_sub(1, std::memory_order_relaxed);
    }
    connection->failed_ = true;  // no Send touches the socket from here on
    close(connection->fd_);
    for (auto &pending : connection->actions_) dropped.push_back(std::move(pending.action));
    connection->actions_.clear();
  }
  for (auto &action : dropped) action();
  if (!connection->read_end_told_) {
    connection->read_end_told_ = true;
    if (connection->handlers_.on_read_end) connection->handlers_.on_read_end();
  }
  if (connection->handlers_.on_closed) connection->handlers_.on_closed(status);
  connection->handlers_ = {};  // they may hold the connection
}

absl::Time FrameLoop::ExpireHandshakes() {
  // The common case, on every turn of the loop: nothing to look at.
  if (unauthenticated_.load(std::memory_order_relaxed) == 0) return absl::InfiniteFuture();
  std::vector<std::shared_ptr<FrameConnection>> all;
  {
    absl::MutexLock lock(&mu_);
    for (const auto &[id, connection] : connections_) all.push_back(connection);
  }
  const absl::Time now = absl::Now();
  absl::Time next = absl::InfiniteFuture();
  for (auto &connection : all) {
    absl::MutexLock lock(&connection->mu_);
    if (connection->authenticated_ || connection->failed_) continue;
    const absl::Time deadline = connection->accepted_at_ + options_.handshake_timeout;
    if (now < deadline) {
      next = std::min(next, deadline);
      continue;
    }
    connection->FailLocked(
        absl::DeadlineExceededError(connection->peer_ + " did not authenticate within " +
                                    absl::FormatDuration(options_.handshake_timeout)));
  }
  return next;
}

}  // namespace sunray::rpc
