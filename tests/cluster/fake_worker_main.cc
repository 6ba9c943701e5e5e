// A minimal worker process for cluster tests, until the real worker mode
// exists: serves a WorkerService that accepts every task (so actors are
// created at once) and exits when asked, registers with its node daemon over
// gRPC (as a worker must), says so on stdout (captured in the session's
// worker log), then waits for SIGTERM.
//
// Environment: SUNRAY_STARTUP_TOKEN (set by the node), SUNRAY_NODE_ADDRESS
// and SUNRAY_TOKEN (set by the test in the lease request's env).
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

#include "node.grpc.pb.h"
#include "src/common/process.h"
#include "src/rpc/rpc.h"
#include "worker.grpc.pb.h"

namespace {

class AcceptingWorker final : public sunray::proto::WorkerService::CallbackService {
 public:
  explicit AcceptingWorker(std::string token) : token_(std::move(token)) {}

  grpc::ServerUnaryReactor *PushTask(grpc::CallbackServerContext *context,
                                     const sunray::proto::PushTaskRequest *,
                                     sunray::proto::PushTaskReply *) override {
    return sunray::rpc::HandleUnary(context, token_, [] { return absl::OkStatus(); });
  }

  grpc::ServerUnaryReactor *Exit(grpc::CallbackServerContext *context,
                                 const sunray::proto::ExitRequest *,
                                 sunray::proto::ExitReply *) override {
    return sunray::rpc::HandleUnary(context, token_, [] {
      kill(getpid(), SIGTERM);  // main() takes it and stops
      return absl::OkStatus();
    });
  }

 private:
  const std::string token_;
};

}  // namespace

int main() {
  const char *startup = std::getenv("SUNRAY_STARTUP_TOKEN");
  const char *node = std::getenv("SUNRAY_NODE_ADDRESS");
  const char *token = std::getenv("SUNRAY_TOKEN");
  if (startup == nullptr || node == nullptr || token == nullptr) {
    std::cerr << "fake worker: missing environment\n";
    return 2;
  }
  sunray::BlockStopSignals();
  AcceptingWorker service(token);
  sunray::rpc::RpcServer server;
  auto port = server.Start("127.0.0.1:0", {&service});
  if (!port.ok()) {
    std::cerr << "fake worker: " << port.status().message() << "\n";
    return 1;
  }
  auto stub = sunray::proto::NodeService::NewStub(sunray::rpc::MakeChannel(node));
  sunray::proto::RegisterWorkerRequest request;
  request.set_startup_token(std::atoll(startup));
  request.set_pid(getpid());
  request.set_address("127.0.0.1:" + std::to_string(*port));
  // It runs no tasks: a stream opened there breaks (gRPC refuses frames).
  request.set_task_address("127.0.0.1:" + std::to_string(*port));
  sunray::proto::RegisterWorkerReply reply;
  grpc::Status status = stub->RegisterWorker(
      sunray::rpc::MakeClientContext(token, std::chrono::seconds(10)).get(), request, &reply);
  if (!status.ok()) {
    std::cerr << "fake worker: registration failed: " << status.error_message() << "\n";
    return 1;
  }
  std::cout << "fake worker " << getpid() << " registered" << std::endl;
  sunray::WaitForStopSignal();
  server.Stop();
  return 0;
}
