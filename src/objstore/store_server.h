// Serves a node's ObjectStore to the processes on the node.
//
// Two channels:
//  - ObjectStoreService (gRPC, token-checked): create, seal, get, release,
//    delete; replies carry offsets into the shared segment.
//  - A Unix socket (mode 0600) for the handshake: the client sends the
//    cluster token and a newline; the server answers with the client's id
//    (8 bytes) and the segment's descriptor (SCM_RIGHTS). The connection then
//    stays open as the client's liveness signal: when it closes, the client's
//    pins are dropped and its unsealed objects aborted.
//
// Thread-safe. Start/Stop once; Stop closes every connection.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "objstore.grpc.pb.h"
#include "src/objstore/object_store.h"

namespace sunray {

class StoreServer final : public proto::ObjectStoreService::CallbackService {
 public:
  StoreServer(ObjectStore &store, std::string token, std::string socket_path);
  ~StoreServer() override;

  // Listens on the Unix socket (a path, or "@name" in the abstract
  // namespace: see src/common/unix_socket.h). The gRPC side is registered by the caller
  // on its RpcServer (this object is the service).
  absl::Status Start();
  void Stop();

  const std::string &socket_path() const { return socket_path_; }

  grpc::ServerUnaryReactor *CreateObject(grpc::CallbackServerContext *context,
                                         const proto::CreateObjectRequest *request,
                                         proto::CreateObjectReply *reply) override;
  grpc::ServerUnaryReactor *SealObject(grpc::CallbackServerContext *context,
                                       const proto::SealObjectRequest *request,
                                       proto::SealObjectReply *reply) override;
  grpc::ServerUnaryReactor *GetObject(grpc::CallbackServerContext *context,
                                      const proto::GetObjectRequest *request,
                                      proto::GetObjectReply *reply) override;
  grpc::ServerUnaryReactor *ReleaseObject(grpc::CallbackServerContext *context,
                                          const proto::ReleaseObjectRequest *request,
                                          proto::ReleaseObjectReply *reply) override;
  grpc::ServerUnaryReactor *DeleteObjects(grpc::CallbackServerContext *context,
                                          const proto::DeleteObjectsRequest *request,
                                          proto::DeleteObjectsReply *reply) override;

 private:
  void HandshakeLoop();
  void RemoveSocketFile();

  ObjectStore &store_;
  const std::string token_;
  const std::string socket_path_;
  bool socket_file_ = false;  // a file to remove (not an abstract name)
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
  std::atomic<uint64_t> next_client_{1};
};

}  // namespace sunray
