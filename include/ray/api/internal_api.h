// For custom worker programs: runs this process as a worker until the node
// daemon tells it to stop. Throws RayException when the process was not
// started as a worker.
#pragma once

#include "ray/api/visibility.h"

namespace ray {
RAY_EXPORT void RunTaskExecutionLoop();
}  // namespace ray
