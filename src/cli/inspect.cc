#include "src/cli/inspect.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <vector>

#include "control.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "node.grpc.pb.h"
#include "src/common/environment.h"
#include "src/common/id.h"
#include "src/common/resources.h"
#include "src/common/session.h"
#include "src/rpc/rpc.h"
#include "src/scheduling/bundles.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

// The cluster as `sunray status` and `sunray list` show it: every node the
// control service knows, with live usage from each node that answers.
struct ClusterView {
  std::string address;
  std::vector<proto::NodeInfo> nodes;
  std::vector<std::string> unreachable;  // per node: why its daemon did not answer, or ""
  proto::GetAllJobsReply jobs;
  proto::GetAllPlacementGroupsReply groups;
};

absl::StatusOr<ClusterView> FetchCluster(const std::string &address_flag) {
  ClusterView view;
  view.address = address_flag;
  std::string token;
  if (const char *env = std::getenv(env::kToken)) token = env;
  if (view.address.empty() || token.empty()) {
    auto session = LatestSession();
    if (!session.ok()) return session.status();
    if (view.address.empty()) {
      auto stored = ReadFileToString(*session + "/control_address");
      if (!stored.ok()) {
        return absl::NotFoundError("the session " + *session + " has no control address");
      }
      view.address = *stored;
    }
    if (token.empty()) {
      auto stored = ReadFileToString(*session + "/token");
      if (stored.ok()) token = *stored;
    }
  }
  auto stub = proto::ControlService::NewStub(rpc::MakeChannel(view.address));
  proto::GetAllNodesReply nodes;
  grpc::Status status =
      stub->GetAllNodes(rpc::MakeClientContext(token, milliseconds(5000)).get(), {}, &nodes);
  if (!status.ok()) {
    return absl::UnavailableError("cannot reach the control service at " + view.address + ": " +
                                  status.error_message());
  }
  status =
      stub->GetAllJobs(rpc::MakeClientContext(token, milliseconds(5000)).get(), {}, &view.jobs);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  status = stub->GetAllPlacementGroups(rpc::MakeClientContext(token, milliseconds(5000)).get(), {},
                                       &view.groups);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  for (proto::NodeInfo &node : *nodes.mutable_nodes()) {
    std::string unreachable;
    if (node.state() == proto::NodeInfo::ALIVE) {
      // Live usage comes from the node itself (control's copy is up to a
      // report period old).
      auto node_stub = proto::NodeService::NewStub(
          rpc::MakeChannel(node.address().ip() + ":" + std::to_string(node.address().port())));
      proto::GetNodeStatsReply stats;
      grpc::Status reached = node_stub->GetNodeStats(
          rpc::MakeClientContext(token, milliseconds(5000)).get(), {}, &stats);
      if (reached.ok()) {
        *node.mutable_available() = stats.available();
        node.set_pending_leases(stats.pending_leases());
        node.set_infeasible_leases(stats.infeasible_leases());
      } else {
        unreachable = reached.error_message();
      }
    }
    view.nodes.push_back(std::move(node));
    view.unreachable.push_back(std::move(unreachable));
  }
  return view;
}

void PrintTable(const std::vector<std::vector<std::string>> &rows) {
  std::vector<size_t> widths(rows[0].size(), 0);
  for (const auto &row : rows) {
    for (size_t column = 0; column < row.size(); ++column) {
      widths[column] = std::max(widths[column], row[column].size());
    }
  }
  for (const auto &row : rows) {
    std::string line;
    for (size_t column = 0; column < row.size(); ++column) {
      line += row[column];
      if (column + 1 < row.size())
        line += std::string(widths[column] - row[column].size() + 2, ' ');
    }
    std::cout << line << "\n";
  }
}

bool IsBytes(const std::string &resource) {
  return resource == "memory" || resource == "object_store_memory";
}

std::string Number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", value);
  return text;
}

// "CPU 1.5/4", "memory 3.2/12.4 GiB": amounts in people's units.
std::string Usage(const std::string &name, int64_t available, int64_t total) {
  if (!IsBytes(name)) {
    return name + " " + Number(FromFixedPoint(available)) + "/" + Number(FromFixedPoint(total));
  }
  const double bytes = FromFixedPoint(total);
  const char *unit = "B";
  double scale = 1;
  constexpr std::pair<const char *, double> kUnits[] = {{"KiB", 1024.0},
                                                        {"MiB", 1024.0 * 1024},
                                                        {"GiB", 1024.0 * 1024 * 1024},
                                                        {"TiB", 1024.0 * 1024 * 1024 * 1024}};
  for (const auto &[name_of_unit, size] : kUnits) {
    if (bytes >= size) {
      unit = name_of_unit;
      scale = size;
    }
  }
  char text[64];
  std::snprintf(text, sizeof(text), "%.1f/%.1f %s", FromFixedPoint(available) / scale,
                bytes / scale, unit);
  return name + " " + text;
}

std::string UsageOf(const proto::NodeInfo &node) {
  std::string text;
  for (const auto &[name, total] : WithoutBundleResources(
           ResourceSet(node.total().amounts().begin(), node.total().amounts().end()))) {
    auto available = node.available().amounts().find(name);
    text +=
        (text.empty() ? "" : ", ") +
        Usage(name, available == node.available().amounts().end() ? 0 : available->second, total);
  }
  return text;
}

std::string LabelsOf(const proto::NodeInfo &node) {
  std::string text;
  for (const auto &[key, value] :
       std::map<std::string, std::string>(node.labels().begin(), node.labels().end())) {
    text += (text.empty() ? "" : ", ") + key + "=" + value;
  }
  return text;
}

const char *StateName(const proto::NodeInfo &node) {
  return node.state() == proto::NodeInfo::ALIVE ? "ALIVE" : "DEAD";
}

}  // namespace

int Status(const std::string &address_flag) {
  auto view = FetchCluster(address_flag);
  if (!view.ok()) {
    std::cerr << "sunray status: " << view.status().message() << "\n";
    return 1;
  }
  int alive = 0;
  for (const auto &node : view->nodes) alive += node.state() == proto::NodeInfo::ALIVE;
  int running = 0;
  for (const auto &job : view->jobs.jobs()) running += !job.finished();
  std::cout << "Cluster at " << view->address << "\n"
            << "Nodes: " << alive << " alive, " << (view->nodes.size() - alive) << " dead\n";
  std::map<std::string, int64_t> total;
  std::map<std::string, int64_t> available;
  int pending = 0;
  int infeasible = 0;
  for (size_t i = 0; i < view->nodes.size(); ++i) {
    const proto::NodeInfo &node = view->nodes[i];
    std::cout << "  " << BinaryToHex(node.node_id()) << "  " << node.address().ip() << ":"
              << node.address().port() << "  " << StateName(node) << "\n";
    if (node.state() != proto::NodeInfo::ALIVE) {
      std::cout << "    died: " << node.death_reason() << "\n";
      continue;
    }
    std::cout << "    resources: " << UsageOf(node) << "\n";
    std::cout << "    labels: " << LabelsOf(node) << "\n";
    if (!view->unreachable[i].empty()) {
      std::cout << "    (node unreachable: " << view->unreachable[i]
                << "; usage as it last reported)\n";
    }
    for (const auto &[name, amount] : node.total().amounts()) {
      if (!GroupOfResource(name)) total[name] += amount;
    }
    for (const auto &[name, amount] : node.available().amounts()) available[name] += amount;
    pending += node.pending_leases();
    infeasible += node.infeasible_leases();
  }
  std::cout << "Resources (available/total):\n";
  for (const auto &[name, amount] : total) {
    std::cout << "  " << Usage(name, available[name], amount) << "\n";
  }
  std::cout << "Demand: " << pending << " pending lease request(s), " << infeasible
            << " infeasible (more than any node has)\n";
  std::cout << "Jobs: " << running << " running, " << (view->jobs.jobs_size() - running)
            << " finished\n";
  std::map<proto::PlacementGroupInfo::State, int> groups;
  std::vector<const proto::PlacementGroupInfo *> infeasible_groups;
  for (const auto &group : view->groups.groups()) {
    ++groups[group.state()];
    if (!group.infeasible_reason().empty()) infeasible_groups.push_back(&group);
  }
  std::cout << "Placement groups: " << groups[proto::PlacementGroupInfo::CREATED] << " created, "
            << groups[proto::PlacementGroupInfo::PENDING] << " pending ("
            << infeasible_groups.size() << " infeasible), "
            << groups[proto::PlacementGroupInfo::RESCHEDULING] << " rescheduling, "
            << groups[proto::PlacementGroupInfo::REMOVED] << " removed\n";
  for (const proto::PlacementGroupInfo *group : infeasible_groups) {
    std::cout << "  infeasible: " << BinaryToHex(group->placement_group_id())
              << (group->name().empty() ? "" : " (" + group->name() + ")") << ": "
              << group->infeasible_reason() << "\n";
  }
  return 0;
}

// `sunray list nodes`: one row per node, or JSON.
int ListNodes(const std::string &address_flag, const std::string &format) {
  auto view = FetchCluster(address_flag);
  if (!view.ok()) {
    std::cerr << "sunray list nodes: " << view.status().message() << "\n";
    return 1;
  }
  if (format == "json") {
    nlohmann::json nodes = nlohmann::json::array();
    for (const proto::NodeInfo &node : view->nodes) {
      nlohmann::json resources_total = nlohmann::json::object();
      for (const auto &[name, amount] : node.total().amounts()) {
        resources_total[name] = FromFixedPoint(amount);
      }
      nlohmann::json resources_available = nlohmann::json::object();
      for (const auto &[name, amount] : node.available().amounts()) {
        resources_available[name] = FromFixedPoint(amount);
      }
      nlohmann::json labels = nlohmann::json::object();
      for (const auto &[key, value] : node.labels()) labels[key] = value;
      nodes.push_back(
          {{"node_id", BinaryToHex(node.node_id())},
           {"address", node.address().ip() + ":" + std::to_string(node.address().port())},
           {"state", StateName(node)},
           {"death_reason", node.death_reason()},
           {"start_time_ms", node.start_time_ms()},
           {"end_time_ms", node.end_time_ms()},
           {"labels", labels},
           {"resources_total", resources_total},
           {"resources_available", resources_available},
           {"pending_leases", node.pending_leases()},
           {"infeasible_leases", node.infeasible_leases()}});
    }
    std::cout << nodes.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"NODE_ID", "ADDRESS", "STATE", "RESOURCES (available/total)", "LABELS"}};
  for (const proto::NodeInfo &node : view->nodes) {
    rows.push_back(
        {BinaryToHex(node.node_id()),
         node.address().ip() + ":" + std::to_string(node.address().port()), StateName(node),
         node.state() == proto::NodeInfo::ALIVE ? UsageOf(node) : "died: " + node.death_reason(),
         LabelsOf(node)});
  }
  PrintTable(rows);
  return 0;
}

namespace {

const char *GroupStateName(proto::PlacementGroupInfo::State state) {
  switch (state) {
    case proto::PlacementGroupInfo::PENDING:
      return "PENDING";
    case proto::PlacementGroupInfo::CREATED:
      return "CREATED";
    case proto::PlacementGroupInfo::REMOVED:
      return "REMOVED";
    case proto::PlacementGroupInfo::RESCHEDULING:
      return "RESCHEDULING";
    default:
      return "?";
  }
}

}  // namespace

// `sunray list placement-groups`: one row per group, or JSON.
int ListPlacementGroups(const std::string &address_flag, const std::string &format) {
  auto view = FetchCluster(address_flag);
  if (!view.ok()) {
    std::cerr << "sunray list placement-groups: " << view.status().message() << "\n";
    return 1;
  }
  if (format == "json") {
    nlohmann::json groups = nlohmann::json::array();
    for (const auto &group : view->groups.groups()) {
      nlohmann::json bundles = nlohmann::json::array();
      for (const auto &bundle : group.bundles()) {
        nlohmann::json resources = nlohmann::json::object();
        for (const auto &[name, amount] : bundle.resources().amounts()) {
          resources[name] = FromFixedPoint(amount);
        }
        bundles.push_back({{"resources", resources}, {"node_id", BinaryToHex(bundle.node_id())}});
      }
      groups.push_back({{"placement_group_id", BinaryToHex(group.placement_group_id())},
                        {"name", group.name()},
                        {"namespace", group.ray_namespace()},
                        {"job_id", BinaryToHex(group.job_id())},
                        {"state", GroupStateName(group.state())},
                        {"strategy", proto::PlacementGroupInfo::Strategy_Name(group.strategy())},
                        {"bundles", bundles},
                        {"infeasible_reason", group.infeasible_reason()},
                        {"create_time_ms", group.create_time_ms()},
                        {"ready_time_ms", group.ready_time_ms()},
                        {"remove_time_ms", group.remove_time_ms()}});
    }
    std::cout << groups.dump(2) << "\n";
    return 0;
  }
  std::vector<std::vector<std::string>> rows = {
      {"PLACEMENT_GROUP_ID", "NAME", "STATE", "STRATEGY", "BUNDLES (resources @ node)", "JOB"}};
  for (const auto &group : view->groups.groups()) {
    std::string bundles;
    for (int i = 0; i < group.bundles_size(); ++i) {
      const proto::BundleInfo &bundle = group.bundles(i);
      bundles += (i == 0 ? "" : "; ") + std::to_string(i) + ": " +
                 ResourcesText(ResourceSetOf(bundle.resources()));
      // A node id's first 8 hex digits tell the nodes of one cluster apart.
      if (!bundle.node_id().empty()) bundles += " @ " + BinaryToHex(bundle.node_id()).substr(0, 8);
    }
    std::string state = GroupStateName(group.state());
    if (!group.infeasible_reason().empty()) state += " (infeasible)";
    rows.push_back({BinaryToHex(group.placement_group_id()), group.name(), state,
                    proto::PlacementGroupInfo::Strategy_Name(group.strategy()), bundles,
                    BinaryToHex(group.job_id())});
  }
  PrintTable(rows);
  return 0;
}

}  // namespace sunray
