#include "src/control/control_daemon.h"

#include <signal.h>

#include <iostream>

#include "src/cli/session.h"
#include "src/control/control_service.h"
#include "src/rpc/rpc.h"

namespace sunray {

int RunControlDaemon(const ControlDaemonOptions &options) {
  // Block the stop signals before gRPC starts its threads, so they all
  // inherit the mask and sigwait below receives the signal.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto token = ReadFileToString(options.session_dir + "/token");
  if (!token.ok() || token->empty()) {
    std::cerr << "sunray control: no cluster token in " << options.session_dir << "\n";
    return 2;
  }
  ControlService service({*token});
  rpc::RpcServer server;
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
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::cerr << "sunray control: stopping on signal " << signal_number << std::endl;
  server.Stop();
  std::cerr << "sunray control: stopped" << std::endl;
  return 0;
}

}  // namespace sunray
