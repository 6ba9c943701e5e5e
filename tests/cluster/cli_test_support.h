// What the cli tests share: running `sunray`, waiting on conditions, a
// fixture with its own SUNRAY_TEMP_DIR (stopping whatever a test left
// running), lease requests for the fake worker, and a started cluster's
// addresses and clients.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "control.grpc.pb.h"
#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/session.h"
#include "src/rpc/rpc.h"
#include "src/testing/eventually.h"

namespace sunray {
namespace cli_test {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

struct CommandResult {
  int exit_code = -1;
  std::string output;
};

// Runs a shell command line to its end and captures its output.
inline CommandResult RunCommand(const std::string &command) {
  CommandResult result;
  FILE *pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, read);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs `sunray <arguments>` and captures stdout and stderr; `env` (shell
// assignments such as "SUNRAY_TOKEN=x") goes before the command.
inline CommandResult RunSunray(const std::string &arguments, const std::string &env = "") {
  return RunCommand(env + " " + std::string(SUNRAY_CLI_PATH) + " " + arguments + " 2>&1");
}

inline pid_t ReadPid(const std::string &path) {
  auto content = ReadFileToString(path);
  return content.ok() ? static_cast<pid_t>(std::atoi(content->c_str())) : -1;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/sunray-cli-test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    setenv("SUNRAY_TEMP_DIR", root_.c_str(), 1);
  }
  void TearDown() override {
    RunSunray("stop");  // whatever a failed test left running
    std::error_code error;
    fs::remove_all(root_, error);
  }

  std::string root_;
};

// Asks the node for a lease running the fake worker; returns the reply.
inline std::future<std::pair<grpc::Status, proto::RequestWorkerLeaseReply>> RequestLease(
    const std::string &node, const std::string &token, const std::string &resource, double amount,
    const std::string &job_id = JobIdFromNumber(1).Binary(), bool detached = false,
    milliseconds timeout = milliseconds(20000)) {
  return std::async(std::launch::async, [=] {
    auto stub = proto::NodeService::NewStub(rpc::MakeChannel(node));
    proto::RequestWorkerLeaseRequest request;
    request.set_job_id(job_id);
    (*request.mutable_resources()->mutable_amounts())[resource] =
        static_cast<int64_t>(amount * 10000);
    request.add_argv(SUNRAY_FAKE_WORKER_PATH);
    request.add_env("SUNRAY_NODE_ADDRESS=" + node);
    request.add_env("SUNRAY_TOKEN=" + token);
    request.set_detached(detached);
    proto::RequestWorkerLeaseReply reply;
    grpc::Status status =
        stub->RequestWorkerLease(rpc::MakeClientContext(token, timeout).get(), request, &reply);
    return std::make_pair(status, reply);
  });
}

// A running single-node cluster's addresses and clients.
struct Cluster {
  std::string session, control, node, token;
  std::unique_ptr<proto::ControlService::Stub> control_stub;
  std::unique_ptr<proto::NodeService::Stub> node_stub;

  std::unique_ptr<grpc::ClientContext> Context() const {
    return rpc::MakeClientContext(token, milliseconds(10000));
  }
  // The node's available amount of `resource`, in fixed point (-1 if unknown).
  int64_t Available(const std::string &resource) const {
    proto::GetNodeStatsReply stats;
    if (!node_stub->GetNodeStats(Context().get(), {}, &stats).ok()) return -1;
    auto it = stats.available().amounts().find(resource);
    return it == stats.available().amounts().end() ? 0 : it->second;
  }
  grpc::Status KillWorker(int64_t token_of_worker, bool force) const {
    proto::KillWorkerRequest request;
    request.set_startup_token(token_of_worker);
    request.set_force(force);
    proto::KillWorkerReply reply;
    return node_stub->KillWorker(Context().get(), request, &reply);
  }
};

// Starts a head with `cpus` CPUs; fills `cluster`.
inline void StartCluster(int cpus, Cluster *cluster) {
  ASSERT_EQ(RunSunray("start --head --port 0 --num-cpus " + std::to_string(cpus) +
                      " --object-store-memory 10000000")
                .exit_code,
            0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  cluster->session = *session;
  auto control = ReadFileToString(*session + "/control_address");
  auto node = ReadFileToString(*session + "/node_address");
  auto token = ReadFileToString(*session + "/token");
  ASSERT_TRUE(control.ok() && node.ok() && token.ok());
  cluster->control = *control;
  cluster->node = *node;
  cluster->token = *token;
  cluster->control_stub = proto::ControlService::NewStub(rpc::MakeChannel(*control));
  cluster->node_stub = proto::NodeService::NewStub(rpc::MakeChannel(*node));
}

}  // namespace cli_test
}  // namespace sunray
