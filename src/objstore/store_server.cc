#include "src/objstore/store_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "src/common/unix_socket.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

constexpr size_t kMaxHandshakeBytes = 4096;

absl::StatusOr<ObjectID> ParseObjectId(const std::string &binary) {
  if (binary.size() != ObjectID::kSize) {
    return absl::InvalidArgumentError("an object id has " + std::to_string(ObjectID::kSize) +
                                      " bytes, got " + std::to_string(binary.size()));
  }
  return ObjectID::FromBinary(binary);
}

// Sends `client_id` with `fd` attached.
bool SendIdAndDescriptor(int socket, uint64_t client_id, int fd) {
  iovec data{&client_id, sizeof(client_id)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr *header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  return sendmsg(socket, &message, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof(client_id));
}

}  // namespace

StoreServer::StoreServer(ObjectStore &store, std::string token, std::string socket_path)
    : store_(store), token_(std::move(token)), socket_path_(std::move(socket_path)) {}

StoreServer::~StoreServer() { Stop(); }

absl::Status StoreServer::Start() {
  auto address = UnixSocketAddress(socket_path_);
  if (!address.ok()) return address.status();
  socket_file_ = !address->abstract;
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (listen_fd_ < 0) return absl::InternalError(std::string("socket: ") + std::strerror(errno));
  RemoveSocketFile();
  const mode_t old_mask = umask(077);  // the socket is for this user only
  const int bound =
      bind(listen_fd_, reinterpret_cast<const sockaddr *>(&address->address), address->length);
  umask(old_mask);
  if (bound != 0 || listen(listen_fd_, 128) != 0) {
    absl::Status status =
        absl::InternalError("cannot listen on " + socket_path_ + ": " + std::strerror(errno));
    close(listen_fd_);
    listen_fd_ = -1;
    return status;
  }
  if (pipe2(wake_pipe_, O_CLOEXEC) != 0) {
    absl::Status status = absl::InternalError(std::string("pipe: ") + std::strerror(errno));
    close(listen_fd_);
    listen_fd_ = -1;
    RemoveSocketFile();
    return status;
  }
  thread_ = std::thread([this] { HandshakeLoop(); });
  return absl::OkStatus();
}

void StoreServer::Stop() {
  if (thread_.joinable()) {
    (void)!write(wake_pipe_[1], "x", 1);
    thread_.join();
  }
  for (int &fd : wake_pipe_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    RemoveSocketFile();
  }
}

void StoreServer::RemoveSocketFile() {
  if (socket_file_) unlink(socket_path_.c_str());
}

void StoreServer::HandshakeLoop() {
  struct Connection {
    uint64_t client_id = 0;  // 0 until the handshake succeeded
    std::string received;
  };
  std::map<int, Connection> connections;
  auto drop = [&](std::map<int, Connection>::iterator it) {
    if (it->second.client_id != 0) store_.ReleaseClient(it->second.client_id);
    close(it->first);
    return connections.erase(it);
  };
  while (true) {
    std::vector<pollfd> fds{{wake_pipe_[0], POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const auto &[fd, connection] : connections) fds.push_back({fd, POLLIN, 0});
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;
    if (fds[1].revents & POLLIN) {
      int client = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (client >= 0) connections.emplace(client, Connection{});
    }
    for (size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = connections.find(fds[i].fd);
      char buffer[512];
      const ssize_t n = read(it->first, buffer, sizeof(buffer));
      if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
        drop(it);  // closed: the client is gone
        continue;
      }
      Connection &connection = it->second;
      if (connection.client_id != 0) continue;  // nothing is expected after the handshake
      connection.received.append(buffer, static_cast<size_t>(n));
      const size_t newline = connection.received.find('\n');
      if (newline == std::string::npos) {
        if (connection.received.size() > kMaxHandshakeBytes) drop(it);
        continue;
      }
      const std::string given = connection.received.substr(0, newline);
      if (given != token_) {
        drop(it);  // wrong token: the client sees the connection close
        continue;
      }
      const uint64_t id = next_client_++;
      store_.AddClient(id);
      connection.client_id = id;  // from here on, dropping it releases the client
      if (!SendIdAndDescriptor(it->first, id, store_.segment().fd())) drop(it);
    }
  }
  for (auto it = connections.begin(); it != connections.end();) it = drop(it);
}

grpc::ServerUnaryReactor *StoreServer::CreateObject(grpc::CallbackServerContext *context,
                                                    const proto::CreateObjectRequest *request,
                                                    proto::CreateObjectReply *reply) {
  return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
    auto id = ParseObjectId(request->object_id());
    if (!id.ok()) return id.status();
    auto location = store_.CreateObject(*id, request->data_size(), request->metadata_size(),
                                        request->client_id(), request->owner_address());
    if (!location.ok()) return location.status();
    reply->set_offset(location->offset);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *StoreServer::SealObject(grpc::CallbackServerContext *context,
                                                  const proto::SealObjectRequest *request,
                                                  proto::SealObjectReply *) {
  return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
    auto id = ParseObjectId(request->object_id());
    return id.ok() ? store_.Seal(*id) : id.status();
  });
}

grpc::ServerUnaryReactor *StoreServer::GetObject(grpc::CallbackServerContext *context,
                                                 const proto::GetObjectRequest *request,
                                                 proto::GetObjectReply *reply) {
  return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
    auto id = ParseObjectId(request->object_id());
    if (!id.ok()) return id.status();
    auto location = store_.Get(*id, request->client_id());
    if (!location.ok()) return location.status();
    reply->set_offset(location->offset);
    reply->set_data_size(location->data_size);
    reply->set_metadata_size(location->metadata_size);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *StoreServer::ReleaseObject(grpc::CallbackServerContext *context,
                                                     const proto::ReleaseObjectRequest *request,
                                                     proto::ReleaseObjectReply *) {
  return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
    auto id = ParseObjectId(request->object_id());
    return id.ok() ? store_.Release(*id, request->client_id()) : id.status();
  });
}

grpc::ServerUnaryReactor *StoreServer::DeleteObjects(grpc::CallbackServerContext *context,
                                                     const proto::DeleteObjectsRequest *request,
                                                     proto::DeleteObjectsReply *) {
  return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
    for (const auto &binary : request->object_ids()) {
      auto id = ParseObjectId(binary);
      if (!id.ok()) return id.status();
      absl::Status status = store_.Delete(*id);
      if (!status.ok() && !absl::IsNotFound(status)) return status;
    }
    return absl::OkStatus();
  });
}

}  // namespace sunray
