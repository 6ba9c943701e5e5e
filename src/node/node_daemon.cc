#include "src/node/node_daemon.h"
#include "src/common/log.h"

#include <signal.h>

#include <algorithm>
#include <atomic>

#include "control.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/process.h"
#include "src/common/session.h"
#include "src/common/unix_socket.h"
#include "src/node/lease_manager.h"
#include "src/node/node_reporter.h"
#include "src/node/node_service.h"
#include "src/node/worker_pool.h"
#include "src/objstore/object_store.h"
#include "src/objstore/store_server.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kControlTimeout{10000};
constexpr milliseconds kReportTimeout{2000};  // one report; the next comes a period later

// The nodes in control's answer to a report, as the lease manager sees them
// (a node whose id is malformed is left out: no request can go there).
std::vector<NodeView> ClusterViewOf(const proto::ReportNodeStateReply &reply) {
  std::vector<NodeView> nodes;
  for (const proto::NodeInfo &info : reply.nodes()) {
    if (info.node_id().size() != NodeID::kSize) continue;
    NodeView node;
    node.id = NodeID::FromBinary(info.node_id());
    node.address = info.address().ip() + ":" + std::to_string(info.address().port());
    node.total = ResourceSetOf(info.total());
    node.available = ResourceSetOf(info.available());
    node.labels = Labels(info.labels().begin(), info.labels().end());
    node.alive = info.state() == proto::NodeInfo::ALIVE;
    nodes.push_back(std::move(node));
  }
  return nodes;
}

}  // namespace

int RunNodeDaemon(const NodeDaemonOptions &options) {
  BlockStopSignals();  // before gRPC starts its threads
  const auto logger = log::Get("node");

  auto token = ReadFileToString(options.session_dir + "/token");
  if (!token.ok() || token->empty()) {
    logger->error("no cluster token in {}", options.session_dir);
    return 2;
  }
  const NodeID node_id = NodeID::FromRandom();
  auto store = ObjectStore::Create(
      {static_cast<size_t>(options.object_store_bytes), "sunray-objects-" + node_id.Hex()});
  if (!store.ok()) {
    logger->error("cannot create the object store: {}", store.status().message());
    return 1;
  }
  WorkerPool::Options pool_options;
  pool_options.logs_dir = options.session_dir + "/logs";
  auto cpus = options.resources.find("CPU");
  pool_options.soft_limit = std::max<int>(
      1, cpus == options.resources.end() ? 1 : static_cast<int>(cpus->second / kResourceUnit));
  WorkerPool workers(pool_options);
  // Told of changes once the reporter runs (it starts after the server).
  std::atomic<NodeReporter *> reporter_ready{nullptr};
  LeaseManager::Options lease_options;
  lease_options.node_id = node_id;
  lease_options.labels = options.labels;
  lease_options.labels[kNodeIdLabel] = node_id.Hex();
  lease_options.resources_changed = [&reporter_ready] {
    if (NodeReporter *reporter = reporter_ready.load()) reporter->ReportSoon();
  };
  LeaseManager leases(options.resources, workers, lease_options);
  // Unix socket paths are short (107 bytes): named by a prefix of the id, and
  // in the abstract namespace when the session dir is too deep for a file.
  StoreServer store_server(
      **store, *token,
      UnixSocketPath(options.session_dir, "store_" + node_id.Hex().substr(0, 12) + ".sock",
                     "sunray-store-" + node_id.Hex()));
  ObjectPuller puller({*token}, **store);
  NodeService service(
      {*token, node_id, options.resources, options.control_address, store_server.socket_path()},
      **store, workers, leases, puller);
  workers.SetExitCallback([&service](const WorkerInfo &worker, const std::string &how) {
    service.OnWorkerExit(worker, how);
  });
  if (absl::Status started = store_server.Start(); !started.ok()) {
    logger->error("{}", started.message());
    return 1;
  }
  rpc::RpcServer server;  // leases and store calls: small messages only
  auto port =
      server.Start(options.host + ":" + std::to_string(options.port), {&service, &store_server});
  if (!port.ok()) {
    logger->error("cannot serve: {}", port.status().message());
    return 1;
  }

  // Before control (and so any owner) knows of this node.
  service.SetAddress(options.host + ":" + std::to_string(*port));
  puller.SetNodeAddress(options.host + ":" + std::to_string(*port));
  auto control = proto::ControlService::NewStub(rpc::MakeChannel(options.control_address));
  proto::RegisterNodeRequest request;
  proto::NodeInfo *node = request.mutable_node();
  node->set_node_id(node_id.Binary());
  node->mutable_address()->set_node_id(node_id.Binary());
  node->mutable_address()->set_ip(options.host);
  node->mutable_address()->set_port(*port);
  FillResourceMap(options.resources, node->mutable_total());
  FillResourceMap(options.resources, node->mutable_available());
  for (const auto &[key, value] : options.labels) (*node->mutable_labels())[key] = value;
  proto::RegisterNodeReply reply;
  grpc::Status registered =
      control->RegisterNode(rpc::MakeClientContext(*token, kControlTimeout).get(), request, &reply);
  if (!registered.ok()) {
    logger->error("cannot register with the control service at {}: {}", options.control_address,
                  registered.error_message());
    return 1;
  }
  const std::string address = options.host + ":" + std::to_string(*port);
  absl::Status written =
      WriteFileAtomically(options.session_dir + "/store_socket", store_server.socket_path());
  if (written.ok()) {
    written = WriteFileAtomically(options.session_dir + "/node_address", address);
  }
  if (!written.ok()) {
    logger->error("{}", written.message());
    return 1;
  }
  if (absl::Status id_written =
          WriteFileAtomically(options.session_dir + "/node_id", node_id.Hex());
      !id_written.ok()) {
    logger->error("{}", id_written.message());
    return 1;
  }
  logger->info("{} serving on {}", node_id.Hex(), address);
  MoveStderrToStdout();  // started: `sunray start` stops reading

  // Told it was declared dead: stop as on a signal (the main thread waits
  // for one), with exit code 1 and without unregistering.
  std::atomic<bool> declared_dead{false};
  NodeReporter reporter(
      {options.report_period},
      [&]() -> absl::Status {
        proto::ReportNodeStateRequest report;
        report.set_node_id(node_id.Binary());
        FillResourceMap(leases.Available(), report.mutable_available());
        FillResourceMap(leases.Total(), report.mutable_total());
        report.set_pending_leases(leases.NumPending());
        report.set_infeasible_leases(leases.NumInfeasible());
        proto::ReportNodeStateReply reported;
        absl::Status status = rpc::FromGrpcStatus(control->ReportNodeState(
            rpc::MakeClientContext(*token, kReportTimeout).get(), report, &reported));
        if (status.ok()) {
          std::vector<PlacementGroupID> removed;
          for (const std::string &id : reported.removed_placement_groups()) {
            if (id.size() == PlacementGroupID::kSize) {
              removed.push_back(PlacementGroupID::FromBinary(id));
            }
          }
          leases.GroupsRemoved(removed);
          std::vector<JobID> finished;
          for (const std::string &id : reported.finished_jobs()) {
            if (id.size() == JobID::kSize) finished.push_back(JobID::FromBinary(id));
          }
          service.JobsFinished(finished);
          leases.UpdateClusterView(ClusterViewOf(reported));
        }
        return status;
      },
      [&](const std::string &why) {
        logger->error("exiting: {}", why);
        declared_dead = true;
        kill(getpid(), SIGTERM);
      });

  reporter_ready = &reporter;
  const int signal_number = WaitForStopSignal();
  reporter_ready = nullptr;
  reporter.Stop();
  if (!declared_dead) {
    logger->info("stopping on signal {}", signal_number);
    proto::UnregisterNodeRequest unregister;
    unregister.set_node_id(node_id.Binary());
    unregister.set_reason("stopped");
    proto::UnregisterNodeReply unregistered;
    // Best effort: the control service may already be gone.
    control->UnregisterNode(rpc::MakeClientContext(*token, milliseconds(2000)).get(), unregister,
                            &unregistered);
  }
  // Waiting lease calls must finish before the server can stop; the pool's
  // last exit reports go out (or are cancelled) before the service stops.
  leases.Stop();
  puller.Stop();  // waiting pulls fail; running ones end with their streams
  workers.Stop();
  service.Stop();
  server.Stop();
  store_server.Stop();
  logger->info("stopped");
  return declared_dead ? 1 : 0;
}

}  // namespace sunray
