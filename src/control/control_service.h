// The control service (Ray's GCS): cluster metadata — the node table, the
// job table and a namespaced KV store so far; the actor directory,
// placement groups and pub/sub join it next.
//
// State lives in memory, guarded by one mutex: every handler is short and
// never blocks on another service. Handlers run on gRPC's callback threads.
// Every call needs the cluster token (rpc::HandleUnary).
#pragma once

#include <map>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "control.grpc.pb.h"

namespace sunray {

class ControlService final : public proto::ControlService::CallbackService {
 public:
  struct Options {
    std::string token;  // the cluster token every caller must present
  };

  explicit ControlService(Options options) : options_(std::move(options)) {}

  grpc::ServerUnaryReactor *RegisterNode(grpc::CallbackServerContext *context,
                                         const proto::RegisterNodeRequest *request,
                                         proto::RegisterNodeReply *reply) override;
  grpc::ServerUnaryReactor *UnregisterNode(grpc::CallbackServerContext *context,
                                           const proto::UnregisterNodeRequest *request,
                                           proto::UnregisterNodeReply *reply) override;
  grpc::ServerUnaryReactor *GetAllNodes(grpc::CallbackServerContext *context,
                                        const proto::GetAllNodesRequest *request,
                                        proto::GetAllNodesReply *reply) override;
  grpc::ServerUnaryReactor *AddJob(grpc::CallbackServerContext *context,
                                   const proto::AddJobRequest *request,
                                   proto::AddJobReply *reply) override;
  grpc::ServerUnaryReactor *MarkJobFinished(grpc::CallbackServerContext *context,
                                            const proto::MarkJobFinishedRequest *request,
                                            proto::MarkJobFinishedReply *reply) override;
  grpc::ServerUnaryReactor *GetAllJobs(grpc::CallbackServerContext *context,
                                       const proto::GetAllJobsRequest *request,
                                       proto::GetAllJobsReply *reply) override;
  grpc::ServerUnaryReactor *KvPut(grpc::CallbackServerContext *context,
                                  const proto::KvPutRequest *request,
                                  proto::KvPutReply *reply) override;
  grpc::ServerUnaryReactor *KvGet(grpc::CallbackServerContext *context,
                                  const proto::KvGetRequest *request,
                                  proto::KvGetReply *reply) override;
  grpc::ServerUnaryReactor *KvDel(grpc::CallbackServerContext *context,
                                  const proto::KvDelRequest *request,
                                  proto::KvDelReply *reply) override;
  grpc::ServerUnaryReactor *KvKeys(grpc::CallbackServerContext *context,
                                   const proto::KvKeysRequest *request,
                                   proto::KvKeysReply *reply) override;

 private:
  using KvKey = std::pair<std::string, std::string>;  // (namespace, key)

  const Options options_;
  absl::Mutex mu_;
  std::map<std::string, proto::NodeInfo> nodes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, proto::JobInfo> jobs_ ABSL_GUARDED_BY(mu_);
  uint32_t next_job_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<KvKey, std::string> kv_ ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
