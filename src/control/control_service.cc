#include "src/control/control_service.h"

#include <chrono>
#include <cstring>

#include "src/common/id.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool IsHexId(const std::string &text, size_t bytes) {
  if (text.size() != bytes * 2) return false;
  for (char c : text) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Keys of namespace `ray_namespace` starting with `prefix`, in order.
template <typename Map, typename Visit>
void ForEachWithPrefix(Map &kv, const std::string &ray_namespace, const std::string &prefix,
                       Visit &&visit) {
  for (auto it = kv.lower_bound({ray_namespace, prefix});
       it != kv.end() && it->first.first == ray_namespace &&
       it->first.second.compare(0, prefix.size(), prefix) == 0;) {
    it = visit(it);
  }
}

}  // namespace

grpc::ServerUnaryReactor *ControlService::RegisterNode(grpc::CallbackServerContext *context,
                                                       const proto::RegisterNodeRequest *request,
                                                       proto::RegisterNodeReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    const proto::NodeInfo &node = request->node();
    if (!IsHexId(node.node_id(), NodeID::kSize)) {
      return absl::InvalidArgumentError("RegisterNode: node_id must be " +
                                        std::to_string(NodeID::kSize * 2) + " hex digits, got '" +
                                        node.node_id() + "'");
    }
    if (node.address().ip().empty() || node.address().port() <= 0 ||
        node.address().port() > 65535) {
      return absl::InvalidArgumentError("RegisterNode: the node's address needs an ip and a port");
    }
    absl::MutexLock lock(&mu_);
    proto::NodeInfo &stored = nodes_[node.node_id()];
    stored = node;
    stored.set_state(proto::NodeInfo::ALIVE);
    stored.set_start_time_ms(NowMs());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::UnregisterNode(
    grpc::CallbackServerContext *context, const proto::UnregisterNodeRequest *request,
    proto::UnregisterNodeReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    auto it = nodes_.find(request->node_id());
    if (it == nodes_.end()) {
      return absl::NotFoundError("UnregisterNode: no node " + request->node_id());
    }
    it->second.set_state(proto::NodeInfo::DEAD);
    it->second.set_death_reason(request->reason());
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::GetAllNodes(grpc::CallbackServerContext *context,
                                                      const proto::GetAllNodesRequest *,
                                                      proto::GetAllNodesReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    for (const auto &[id, node] : nodes_) *reply->add_nodes() = node;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::AddJob(grpc::CallbackServerContext *context,
                                                 const proto::AddJobRequest *request,
                                                 proto::AddJobReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    // Job ids count up from 1, as Ray's do, so they read well in logs.
    const uint32_t number = next_job_++;
    JobID id;
    std::memcpy(id.MutableData(), &number, sizeof(number));
    proto::JobInfo &job = jobs_[id.Hex()];
    job.set_job_id(id.Hex());
    job.set_driver_address(request->driver_address());
    job.set_driver_pid(request->driver_pid());
    job.set_ray_namespace(request->ray_namespace());
    job.set_start_time_ms(NowMs());
    *reply->mutable_job() = job;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::MarkJobFinished(
    grpc::CallbackServerContext *context, const proto::MarkJobFinishedRequest *request,
    proto::MarkJobFinishedReply *) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    auto it = jobs_.find(request->job_id());
    if (it == jobs_.end()) {
      return absl::NotFoundError("MarkJobFinished: no job " + request->job_id());
    }
    if (!it->second.finished()) {
      it->second.set_finished(true);
      it->second.set_end_time_ms(NowMs());
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::GetAllJobs(grpc::CallbackServerContext *context,
                                                     const proto::GetAllJobsRequest *,
                                                     proto::GetAllJobsReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    for (const auto &[id, job] : jobs_) *reply->add_jobs() = job;
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvPut(grpc::CallbackServerContext *context,
                                                const proto::KvPutRequest *request,
                                                proto::KvPutReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    if (request->key().empty()) return absl::InvalidArgumentError("KvPut: the key is empty");
    absl::MutexLock lock(&mu_);
    auto [it, inserted] =
        kv_.try_emplace({request->ray_namespace(), request->key()}, request->value());
    if (!inserted && request->overwrite()) it->second = request->value();
    reply->set_added(inserted);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvGet(grpc::CallbackServerContext *context,
                                                const proto::KvGetRequest *request,
                                                proto::KvGetReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    auto it = kv_.find({request->ray_namespace(), request->key()});
    reply->set_found(it != kv_.end());
    if (it != kv_.end()) reply->set_value(it->second);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvDel(grpc::CallbackServerContext *context,
                                                const proto::KvDelRequest *request,
                                                proto::KvDelReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    int64_t deleted = 0;
    if (request->by_prefix()) {
      ForEachWithPrefix(kv_, request->ray_namespace(), request->key(), [&](auto it) {
        ++deleted;
        return kv_.erase(it);
      });
    } else {
      deleted = static_cast<int64_t>(kv_.erase({request->ray_namespace(), request->key()}));
    }
    reply->set_deleted(deleted);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor *ControlService::KvKeys(grpc::CallbackServerContext *context,
                                                 const proto::KvKeysRequest *request,
                                                 proto::KvKeysReply *reply) {
  return rpc::HandleUnary(context, options_.token, [&]() -> absl::Status {
    absl::MutexLock lock(&mu_);
    ForEachWithPrefix(kv_, request->ray_namespace(), request->prefix(), [&](auto it) {
      reply->add_keys(it->first.second);
      return std::next(it);
    });
    return absl::OkStatus();
  });
}

}  // namespace sunray
