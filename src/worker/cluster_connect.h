// How ray::Init reaches a cluster: connect to a running one (an address), or
// start an embedded one for this driver; and how a process the node daemon
// started becomes a worker.
#pragma once

#include <functional>
#include <memory>

#include "ray/api/ray_config.h"
#include "ray/api/ray_runtime.h"

namespace sunray {

// Whether the node daemon started this process as a worker.
bool StartedAsWorker();

// Connects as a worker, hands the runtime to `install` (which makes it the
// process's runtime), then serves tasks until the process is told to exit;
// never returns.
[[noreturn]] void RunAsWorker(
    const ray::RayConfig &config,
    const std::function<void(std::shared_ptr<ray::internal::RayRuntime>)> &install);

// A driver's runtime: connects to config.address (or RAY_ADDRESS, applied
// by the caller), or starts an embedded cluster that lives until Shutdown
// (or this process's death). Throws RayException naming what failed.
std::shared_ptr<ray::internal::RayRuntime> ConnectDriver(const ray::RayConfig &config);

// Shuts the runtime down, and its embedded cluster if it has one.
void ShutdownDriver(ray::internal::RayRuntime *runtime);

}  // namespace sunray
