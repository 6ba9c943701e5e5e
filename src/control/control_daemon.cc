#include "src/control/control_daemon.h"
#include "src/common/log.h"

#include <signal.h>

#include "src/common/process.h"
#include "src/common/session.h"
#include "src/control/control_service.h"
#include "src/rpc/rpc.h"

namespace sunray {

int RunControlDaemon(const ControlDaemonOptions &options) {
  BlockStopSignals();  // before gRPC starts its threads
  const auto logger = log::Get("control");

  auto token = ReadFileToString(options.session_dir + "/token");
  if (!token.ok() || token->empty()) {
    logger->error("no cluster token in {}", options.session_dir);
    return 2;
  }
  ControlService service({.token = *token, .health = options.health});
  // KV values (and, later, runtime-env packages) are the largest messages.
  rpc::RpcServer server({.max_receive_message_bytes = 64 << 20, .memory_quota_bytes = 256 << 20});
  const std::string address = options.host + ":" + std::to_string(options.port);
  auto port = server.Start(address, {&service});
  if (!port.ok()) {
    logger->error("cannot serve on {}: {}", address, port.status().message());
    return 1;
  }
  const std::string bound = options.host + ":" + std::to_string(*port);
  absl::Status written = WriteFileAtomically(options.session_dir + "/control_address", bound);
  if (!written.ok()) {
    logger->error("{}", written.message());
    return 1;
  }
  logger->info("serving on {}", bound);
  MoveStderrToStdout();  // started: `sunray start` stops reading
  const int signal_number = WaitForStopSignal();
  logger->info("stopping on signal {}", signal_number);
  // Long polls and streams end first, so the server does not wait for them.
  service.Stop();
  server.Stop();
  logger->info("stopped");
  return 0;
}

}  // namespace sunray
