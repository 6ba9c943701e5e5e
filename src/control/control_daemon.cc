#include "src/control/control_daemon.h"

#include <signal.h>

#include <iostream>

#include "src/common/session.h"
#include "src/common/process.h"
#include "src/control/control_service.h"
#include "src/rpc/rpc.h"

namespace sunray {

int RunControlDaemon(const ControlDaemonOptions &options) {
  BlockStopSignals();  // before gRPC starts its threads

  auto token = ReadFileToString(options.session_dir + "/token");
  if (!token.ok() || token->empty()) {
    std::cerr << "sunray control: no cluster token in " << options.session_dir << "\n";
    return 2;
  }
  ControlService service({*token});
  // KV values (and, later, runtime-env packages) are the largest messages.
  rpc::RpcServer server({.max_receive_message_bytes = 64 << 20, .memory_quota_bytes = 256 << 20});
  const std::string address = options.host + ":" + std::to_string(options.port);
  auto port = server.Start(address, {&service});
  if (!port.ok()) {
    std::cerr << "sunray control: " << port.status().message() << "\n";
    return 1;
  }
  const std::string bound = options.host + ":" + std::to_string(*port);
  absl::Status written = WriteFileAtomically(options.session_dir + "/control_address", bound);
  if (!written.ok()) {
    std::cerr << "sunray control: " << written.message() << "\n";
    return 1;
  }
  std::cerr << "sunray control: serving on " << bound << std::endl;
  MoveStderrToStdout();  // started: `sunray start` stops reading
  const int signal_number = WaitForStopSignal();
  std::cerr << "sunray control: stopping on signal " << signal_number << std::endl;
  // Long polls and streams end first, so the server does not wait for them.
  service.Stop();
  server.Stop();
  std::cerr << "sunray control: stopped" << std::endl;
  return 0;
}

}  // namespace sunray
