#include "src/objstore/store_client.h"

#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "src/common/unix_socket.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14
#endif

// Objects smaller than this are not worth a system call.
constexpr size_t kPopulateThreshold = 1 << 20;

using std::chrono::milliseconds;
constexpr milliseconds kCallTimeout{30000};
constexpr int kHandshakeTimeoutMs = 10000;

// Receives the client id and the segment's descriptor.
absl::Status ReceiveIdAndDescriptor(int socket, uint64_t *client_id, int *fd) {
  pollfd ready{socket, POLLIN, 0};
  if (poll(&ready, 1, kHandshakeTimeoutMs) <= 0) {
    return absl::UnavailableError("the object store did not answer the handshake");
  }
  iovec data{client_id, sizeof(*client_id)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(socket, &message, MSG_CMSG_CLOEXEC);
  if (n == 0) {
    return absl::PermissionDeniedError(
        "the object store closed the connection: the cluster token was refused");
  }
  if (n != static_cast<ssize_t>(sizeof(*client_id))) {
    return absl::UnavailableError(std::string("bad handshake from the object store: ") +
                                  (n < 0 ? std::strerror(errno) : "short reply"));
  }
  cmsghdr *header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_type != SCM_RIGHTS) {
    return absl::UnavailableError("the object store sent no shared-memory descriptor");
  }
  std::memcpy(fd, CMSG_DATA(header), sizeof(int));
  return absl::OkStatus();
}

}  // namespace

struct StoreClient::ObjectView::Core {
  ~Core() {
    if (socket >= 0) close(socket);
  }
  int socket = -1;  // open for the client's lifetime: the store's liveness signal
  bool populate_on_create = true;
  uint64_t client_id = 0;
  std::string token;
  std::unique_ptr<SharedMemorySegment> segment;
  std::unique_ptr<proto::ObjectStoreService::Stub> stub;

  std::unique_ptr<grpc::ClientContext> Context() const {
    return rpc::MakeClientContext(token, kCallTimeout);
  }
};

absl::StatusOr<std::unique_ptr<StoreClient>> StoreClient::Connect(const Options &options) {
  auto core = std::make_shared<ObjectView::Core>();
  core->token = options.token;
  core->populate_on_create = options.populate_on_create;
  auto address = UnixSocketAddress(options.socket_path);
  if (!address.ok()) return address.status();
  core->socket = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (core->socket < 0 ||
      connect(core->socket, reinterpret_cast<const sockaddr *>(&address->address),
              address->length) != 0) {
    return absl::UnavailableError("cannot reach the object store at " + options.socket_path + ": " +
                                  std::strerror(errno));
  }
  const std::string hello = options.token + "\n";
  if (send(core->socket, hello.data(), hello.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(hello.size())) {
    return absl::UnavailableError("cannot talk to the object store: " +
                                  std::string(std::strerror(errno)));
  }
  int fd = -1;
  absl::Status received = ReceiveIdAndDescriptor(core->socket, &core->client_id, &fd);
  if (!received.ok()) return received;
  auto segment = SharedMemorySegment::Attach(fd);
  if (!segment.ok()) return segment.status();
  core->segment = *std::move(segment);
  core->stub = proto::ObjectStoreService::NewStub(rpc::MakeChannel(options.rpc_address));
  return std::unique_ptr<StoreClient>(new StoreClient(std::move(core)));
}

StoreClient::~StoreClient() = default;

uint64_t StoreClient::client_id() const { return core_->client_id; }

absl::StatusOr<char *> StoreClient::Create(const ObjectID &id, size_t data_size,
                                           size_t metadata_size, const std::string &owner_address) {
  proto::CreateObjectRequest request;
  request.set_owner_address(owner_address);
  request.set_object_id(id.Binary());
  request.set_data_size(data_size);
  request.set_metadata_size(metadata_size);
  request.set_client_id(core_->client_id);
  proto::CreateObjectReply reply;
  grpc::Status status = core_->stub->CreateObject(core_->Context().get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  const size_t total = data_size + metadata_size;
  if (reply.offset() + total > core_->segment->size()) {
    return absl::InternalError("the object store answered an offset outside its segment");
  }
  char *destination = core_->segment->base() + reply.offset();
  if (core_->populate_on_create && total >= kPopulateThreshold) {
    // madvise needs a page-aligned start; older kernels refuse the advice
    // (EINVAL) and the copy then faults page by page as usual.
    const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t start = reinterpret_cast<uintptr_t>(destination) & ~(page - 1);
    const uintptr_t end = reinterpret_cast<uintptr_t>(destination) + total;
    (void)madvise(reinterpret_cast<void *>(start), end - start, MADV_POPULATE_WRITE);
  }
  return destination;
}

absl::Status StoreClient::Seal(const ObjectID &id) {
  proto::SealObjectRequest request;
  request.set_object_id(id.Binary());
  proto::SealObjectReply reply;
  grpc::Status status = core_->stub->SealObject(core_->Context().get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  proto::ReleaseObjectRequest release;
  release.set_object_id(id.Binary());
  release.set_client_id(core_->client_id);
  proto::ReleaseObjectReply released;
  return rpc::FromGrpcStatus(
      core_->stub->ReleaseObject(core_->Context().get(), release, &released));
}

absl::Status StoreClient::Put(const ObjectID &id, std::string_view data, std::string_view metadata,
                              const std::string &owner_address) {
  auto destination = Create(id, data.size(), metadata.size(), owner_address);
  if (!destination.ok()) return destination.status();
  // An empty string_view may have a null data(): memcpy must not see it.
  if (!data.empty()) std::memcpy(*destination, data.data(), data.size());
  if (!metadata.empty()) std::memcpy(*destination + data.size(), metadata.data(), metadata.size());
  return Seal(id);
}

absl::Status StoreClient::PutIdempotent(const ObjectID &id, std::string_view data,
                                        const std::string &owner_address, absl::Duration wait) {
  const absl::Time deadline = absl::Now() + wait;
  absl::Duration backoff = absl::Milliseconds(1);
  while (true) {
    absl::Status put = Put(id, data, {}, owner_address);
    if (absl::IsAlreadyExists(put)) return absl::OkStatus();
    if (!absl::IsAborted(put)) return put;
    // The earlier writer is alive as far as the store knows. It seals soon,
    // or the store aborts its object once it sees the writer's socket close.
    if (absl::Now() + backoff > deadline) {
      return absl::DeadlineExceededError(std::string(put.message()) + " after " +
                                         absl::FormatDuration(wait));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Milliseconds(100));
  }
}

absl::StatusOr<std::shared_ptr<StoreClient::ObjectView>> StoreClient::Get(const ObjectID &id) {
  proto::GetObjectRequest request;
  request.set_object_id(id.Binary());
  request.set_client_id(core_->client_id);
  proto::GetObjectReply reply;
  grpc::Status status = core_->stub->GetObject(core_->Context().get(), request, &reply);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  if (reply.offset() + reply.data_size() + reply.metadata_size() > core_->segment->size()) {
    return absl::InternalError("the object store answered a location outside its segment");
  }
  return std::shared_ptr<ObjectView>(new ObjectView(core_, id,
                                                    core_->segment->base() + reply.offset(),
                                                    reply.data_size(), reply.metadata_size()));
}

StoreClient::ObjectView::~ObjectView() {
  proto::ReleaseObjectRequest request;
  request.set_object_id(id_.Binary());
  request.set_client_id(core_->client_id);
  proto::ReleaseObjectReply reply;
  // A failure here (store gone) leaves nothing to release.
  (void)core_->stub->ReleaseObject(core_->Context().get(), request, &reply);
}

absl::Status StoreClient::Delete(const std::vector<ObjectID> &ids) {
  proto::DeleteObjectsRequest request;
  for (const auto &id : ids) request.add_object_ids(id.Binary());
  proto::DeleteObjectsReply reply;
  return rpc::FromGrpcStatus(core_->stub->DeleteObjects(core_->Context().get(), request, &reply));
}

}  // namespace sunray
