#include "src/node/node_daemon.h"

#include <signal.h>

#include <algorithm>
#include <iostream>

#include "control.grpc.pb.h"
#include "node.grpc.pb.h"
#include "src/cli/session.h"
#include "src/common/id.h"
#include "src/common/process.h"
#include "src/node/lease_manager.h"
#include "src/node/worker_pool.h"
#include "src/objstore/object_store.h"
#include "src/objstore/store_server.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kControlTimeout{10000};

void FillResources(const ResourceSet &resources, proto::ResourceMap *out) {
  for (const auto &[name, amount] : resources) (*out->mutable_amounts())[name] = amount;
}

class NodeServiceImpl final : public proto::NodeService::CallbackService {
 public:
  NodeServiceImpl(std::string token, NodeID node_id, ResourceSet resources,
                  const ObjectStore &store, WorkerPool &workers, LeaseManager &leases)
      : token_(std::move(token)),
        node_id_(node_id),
        resources_(std::move(resources)),
        store_(store),
        workers_(workers),
        leases_(leases) {}

  grpc::ServerUnaryReactor *RequestWorkerLease(grpc::CallbackServerContext *context,
                                               const proto::RequestWorkerLeaseRequest *request,
                                               proto::RequestWorkerLeaseReply *reply) override {
    grpc::ServerUnaryReactor *reactor = context->DefaultReactor();
    if (!rpc::Authenticate(*context, reactor, token_)) return reactor;
    if (request->argv().empty()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                   "RequestWorkerLease: argv names no worker program"));
      return reactor;
    }
    ResourceSet resources;
    for (const auto &[name, amount] : request->resources().amounts()) {
      if (amount < 0) {
        reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                     "RequestWorkerLease: negative amount of " + name));
        return reactor;
      }
      resources[name] = amount;
    }
    WorkerPool::Launch launch{{request->argv().begin(), request->argv().end()},
                              {request->env().begin(), request->env().end()}};
    // Answered when granted; the reply object lives until Finish.
    leases_.RequestLease(request->job_id(), resources, launch,
                         [reactor, reply](absl::StatusOr<Lease> lease) {
                           if (!lease.ok()) {
                             reactor->Finish(rpc::ToGrpcStatus(lease.status()));
                             return;
                           }
                           reply->set_lease_id(lease->lease_id);
                           reply->set_worker_address(lease->worker.address);
                           reply->set_worker_pid(lease->worker.pid);
                           reactor->Finish(grpc::Status::OK);
                         });
    return reactor;
  }

  grpc::ServerUnaryReactor *ReturnWorker(grpc::CallbackServerContext *context,
                                         const proto::ReturnWorkerRequest *request,
                                         proto::ReturnWorkerReply *) override {
    return rpc::HandleUnary(context, token_,
                            [&]() { return leases_.ReturnLease(request->lease_id()); });
  }

  grpc::ServerUnaryReactor *RegisterWorker(grpc::CallbackServerContext *context,
                                           const proto::RegisterWorkerRequest *request,
                                           proto::RegisterWorkerReply *) override {
    return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
      return workers_.RegisterWorker(request->startup_token(), request->pid(), request->address());
    });
  }

  grpc::ServerUnaryReactor *GetNodeStats(grpc::CallbackServerContext *context,
                                         const proto::GetNodeStatsRequest *,
                                         proto::GetNodeStatsReply *reply) override {
    return rpc::HandleUnary(context, token_, [&]() -> absl::Status {
      reply->set_node_id(node_id_.Hex());
      FillResources(resources_, reply->mutable_total());
      FillResources(leases_.Available(), reply->mutable_available());
      reply->set_pending_leases(leases_.NumPending());
      reply->set_infeasible_leases(leases_.NumInfeasible());
      const ObjectStore::Stats stats = store_.GetStats();
      reply->set_object_store_capacity_bytes(static_cast<int64_t>(stats.capacity_bytes));
      reply->set_object_store_used_bytes(static_cast<int64_t>(stats.used_bytes));
      reply->set_num_objects(static_cast<int64_t>(stats.num_objects));
      reply->set_store_socket(store_socket_);
      return absl::OkStatus();
    });
  }

  // Set before the server starts.
  void set_store_socket(std::string path) { store_socket_ = std::move(path); }

 private:
  const std::string token_;
  const NodeID node_id_;
  std::string store_socket_;
  const ResourceSet resources_;
  const ObjectStore &store_;
  WorkerPool &workers_;
  LeaseManager &leases_;
};

}  // namespace

int RunNodeDaemon(const NodeDaemonOptions &options) {
  BlockStopSignals();  // before gRPC starts its threads

  auto token = ReadFileToString(options.session_dir + "/token");
  if (!token.ok() || token->empty()) {
    std::cerr << "sunray node: no cluster token in " << options.session_dir << "\n";
    return 2;
  }
  const NodeID node_id = NodeID::FromRandom();
  auto store = ObjectStore::Create(
      {static_cast<size_t>(options.object_store_bytes), "sunray-objects-" + node_id.Hex()});
  if (!store.ok()) {
    std::cerr << "sunray node: cannot create the object store: " << store.status().message()
              << "\n";
    return 1;
  }
  WorkerPool::Options pool_options;
  pool_options.logs_dir = options.session_dir + "/logs";
  auto cpus = options.resources.find("CPU");
  pool_options.soft_limit = std::max<int>(
      1, cpus == options.resources.end() ? 1 : static_cast<int>(cpus->second / kResourceUnit));
  WorkerPool workers(pool_options);
  LeaseManager leases(options.resources, workers);
  NodeServiceImpl service(*token, node_id, options.resources, **store, workers, leases);
  // Unix socket paths are short (108 bytes): name it by a prefix of the id.
  StoreServer store_server(**store, *token,
                           options.session_dir + "/store_" + node_id.Hex().substr(0, 12) + ".sock");
  service.set_store_socket(store_server.socket_path());
  if (absl::Status started = store_server.Start(); !started.ok()) {
    std::cerr << "sunray node: " << started.message() << "\n";
    return 1;
  }
  rpc::RpcServer server;
  auto port =
      server.Start(options.host + ":" + std::to_string(options.port), {&service, &store_server});
  if (!port.ok()) {
    std::cerr << "sunray node: " << port.status().message() << "\n";
    return 1;
  }

  auto control = proto::ControlService::NewStub(rpc::MakeChannel(options.control_address));
  proto::RegisterNodeRequest request;
  proto::NodeInfo *node = request.mutable_node();
  node->set_node_id(node_id.Hex());
  node->mutable_address()->set_node_id(node_id.Hex());
  node->mutable_address()->set_ip(options.host);
  node->mutable_address()->set_port(*port);
  FillResources(options.resources, node->mutable_total());
  FillResources(options.resources, node->mutable_available());
  proto::RegisterNodeReply reply;
  grpc::Status registered =
      control->RegisterNode(rpc::MakeClientContext(*token, kControlTimeout).get(), request, &reply);
  if (!registered.ok()) {
    std::cerr << "sunray node: cannot register with the control service at "
              << options.control_address << ": " << registered.error_message() << "\n";
    return 1;
  }
  const std::string address = options.host + ":" + std::to_string(*port);
  absl::Status written =
      WriteFileAtomically(options.session_dir + "/store_socket", store_server.socket_path());
  if (written.ok()) {
    written = WriteFileAtomically(options.session_dir + "/node_address", address);
  }
  if (!written.ok()) {
    std::cerr << "sunray node: " << written.message() << "\n";
    return 1;
  }
  std::cerr << "sunray node: " << node_id.Hex() << " serving on " << address << std::endl;

  const int signal_number = WaitForStopSignal();
  std::cerr << "sunray node: stopping on signal " << signal_number << std::endl;
  proto::UnregisterNodeRequest unregister;
  unregister.set_node_id(node_id.Hex());
  unregister.set_reason("stopped");
  proto::UnregisterNodeReply unregistered;
  // Best effort: the control service may already be gone.
  control->UnregisterNode(rpc::MakeClientContext(*token, milliseconds(2000)).get(), unregister,
                          &unregistered);
  // Waiting lease calls must finish before the server can stop.
  leases.Stop();
  workers.Stop();
  server.Stop();
  store_server.Stop();
  std::cerr << "sunray node: stopped" << std::endl;
  return 0;
}

}  // namespace sunray
