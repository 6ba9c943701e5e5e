// A cluster of several nodes on this machine for tests (like Ray's
// cluster_utils.Cluster): a head and any number of joined nodes, each a real
// node daemon started by `sunray start` under its own SUNRAY_TEMP_DIR — its
// own session dir, store, ports, resources, labels and logs. The destructor
// stops every node (`sunray stop` in each root) and removes the roots.
#pragma once

#include <signal.h>

#include <sstream>
#include <string>
#include <vector>

#include "tests/cluster/cli_test_support.h"

namespace sunray {
namespace cli_test {

// Runs `sunray <arguments>` with SUNRAY_TEMP_DIR=`root` (and `env`, e.g.
// "SUNRAY_TOKEN=x", prepended as the shell's assignments).
inline CommandResult RunSunrayIn(const std::string &root, const std::string &arguments,
                                 const std::string &env = "") {
  return RunSunray(arguments, "SUNRAY_TEMP_DIR='" + root + "' " + env);
}

// One node of a MultiNodeCluster, as `sunray start` is given it.
struct NodeOptions {
  double cpus = 1;
  std::string resources_json = "{}";
  std::string labels_json = "{}";
  std::string extra_flags;  // e.g. the head's --health-check-period-ms
  int64_t store_bytes = 10'000'000;

  NodeOptions &Cpus(double value) { return cpus = value, *this; }
  NodeOptions &Resources(std::string json) { return resources_json = std::move(json), *this; }
  NodeOptions &Labels(std::string json) { return labels_json = std::move(json), *this; }
  NodeOptions &Flags(std::string flags) { return extra_flags = std::move(flags), *this; }
  NodeOptions &StoreBytes(int64_t bytes) { return store_bytes = bytes, *this; }
};

class MultiNodeCluster {
 public:
  struct Node {
    std::string root;     // its SUNRAY_TEMP_DIR
    std::string session;  // its session dir
    std::string address;  // its node daemon
    std::string id;       // hex
    pid_t daemon = -1;    // the node daemon's pid
  };

  MultiNodeCluster() = default;
  ~MultiNodeCluster() {
    for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
      RunSunrayIn(it->root, "stop");
      std::error_code ignored;
      fs::remove_all(it->root, ignored);
    }
  }
  MultiNodeCluster(const MultiNodeCluster &) = delete;
  MultiNodeCluster &operator=(const MultiNodeCluster &) = delete;

  // Starts the head (its node is nodes()[0]).
  ::testing::AssertionResult StartHead(const NodeOptions &options = NodeOptions()) {
    return Start("--head --port 0 " + Flags(options), "");
  }
  // Joins one more node to the head.
  ::testing::AssertionResult AddNode(const NodeOptions &options = NodeOptions()) {
    return Start("--address " + control_ + " " + Flags(options), "SUNRAY_TOKEN=" + token_);
  }

  const std::string &control() const { return control_; }
  const std::string &token() const { return token_; }
  const std::vector<Node> &nodes() const { return nodes_; }
  const Node &head() const { return nodes_.front(); }

#ifdef SUNRAY_TEST_DRIVER_PATH
  // Runs tests/cluster/driver_main.cc on `node`'s machine state (its root:
  // the driver uses that node) against the cluster, to its end.
  // `runner` goes before the driver's path (e.g. "timeout 3").
  CommandResult RunDriverOn(const Node &node, const std::string &arguments,
                            const std::string &runner = "") const {
    return RunCommand("SUNRAY_TEMP_DIR='" + node.root + "' SUNRAY_TOKEN=" + token_ + " " + runner +
                      " " + SUNRAY_TEST_DRIVER_PATH + " --ray_address=" + control_ + " " +
                      arguments + " 2>&1");
  }
#endif

  // The control service's view of the node `id` (hex); an empty NodeInfo
  // if it does not know it.
  proto::NodeInfo Info(const std::string &id) const {
    auto stub = proto::ControlService::NewStub(rpc::MakeChannel(control_));
    proto::GetAllNodesReply nodes;
    if (!stub->GetAllNodes(rpc::MakeClientContext(token_, milliseconds(5000)).get(), {}, &nodes)
             .ok()) {
      return {};
    }
    for (const auto &node : nodes.nodes()) {
      if (BinaryToHex(node.node_id()) == id) return node;
    }
    return {};
  }

 private:
  static std::string Flags(const NodeOptions &options) {
    std::ostringstream cpus;
    cpus << options.cpus;
    return "--num-cpus " + cpus.str() + " --object-store-memory " +
           std::to_string(options.store_bytes) + " --resources '" + options.resources_json +
           "' --labels '" + options.labels_json + "' " + options.extra_flags;
  }

  ::testing::AssertionResult Start(const std::string &flags, const std::string &env) {
    char pattern[] = "/tmp/sunray-nodes-test.XXXXXX";
    if (mkdtemp(pattern) == nullptr) return ::testing::AssertionFailure() << "mkdtemp failed";
    Node node;
    node.root = pattern;
    nodes_.push_back(node);  // stopped and removed by the destructor from now on
    const CommandResult started = RunSunrayIn(node.root, "start " + flags, env);
    if (started.exit_code != 0) {
      return ::testing::AssertionFailure() << "sunray start " << flags << " exited "
                                           << started.exit_code << ": " << started.output;
    }
    auto session = ReadFileToString(node.root + "/session_latest/node_address");
    auto id = ReadFileToString(node.root + "/session_latest/node_id");
    if (!session.ok() || !id.ok()) {
      return ::testing::AssertionFailure() << "no node address or id: " << started.output;
    }
    node.session = fs::canonical(node.root + "/session_latest").string();
    node.address = *session;
    node.id = *id;
    node.daemon = ReadPid(node.session + "/pids/node.pid");
    if (control_.empty()) {
      control_ = ReadFileToString(node.session + "/control_address").value_or("");
      token_ = ReadFileToString(node.session + "/token").value_or("");
    }
    nodes_.back() = node;
    return ::testing::AssertionSuccess();
  }

  std::string control_;
  std::string token_;
  std::vector<Node> nodes_;
};

}  // namespace cli_test
}  // namespace sunray
