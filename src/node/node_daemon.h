// The node daemon as a process: `sunray node ...`. One per node: hosts the
// node's shared-memory object store and serves NodeService; registers the
// node and its resources with the control service at start and unregisters
// at stop. Its worker pool, lease manager and driver watcher are wired
// together by NodeService (node_service.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "src/common/resources.h"

namespace sunray {

struct NodeDaemonOptions {
  std::string session_dir;      // holds the token; receives node_address
  std::string control_address;  // host:port of the control service
  std::string host = "127.0.0.1";
  int port = 0;
  ResourceSet resources;  // CPU, GPU, memory, custom (fixed point)
  Labels labels;          // its own; kNodeIdLabel is added by control
  int64_t object_store_bytes = 0;
  std::chrono::milliseconds report_period{1000};  // ReportNodeState (NodeReporter)
};

// Serves until SIGTERM or SIGINT, or until the control service answers a
// report that it declared this node dead (exit code 1; a daemon stopped by a
// signal returns 0). Returns the exit code.
int RunNodeDaemon(const NodeDaemonOptions &options);

}  // namespace sunray
