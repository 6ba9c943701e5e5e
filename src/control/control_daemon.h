// The control service as a process: `sunray control --session-dir D ...`.
#pragma once

#include <string>

#include "src/control/node_health.h"

namespace sunray {

struct ControlDaemonOptions {
  std::string session_dir;  // holds the token; receives control_address
  std::string host = "127.0.0.1";
  int port = 6379;                    // 0 picks a free port
  NodeHealthChecker::Options health;  // the nodes' health checks
};

// Serves until SIGTERM or SIGINT, then stops cleanly. Returns the exit code.
int RunControlDaemon(const ControlDaemonOptions &options);

}  // namespace sunray
