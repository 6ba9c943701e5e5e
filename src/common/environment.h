// The SUNRAY_* environment contract: every variable one Sunray process sets
// for another (or a user sets for Sunray), named once. Both sides use these
// constants, so a rename cannot leave one side behind.
#pragma once

namespace sunray::env {

// Set by users.
//   Root of the session directories (default /tmp/sunray); read by the CLI,
//   the daemons it starts and ray::Init's embedded cluster.
inline constexpr char kTempDir[] = "SUNRAY_TEMP_DIR";
//   The cluster token, for drivers and `sunray status` off the head's machine.
//   Also set by owners for the workers they start.
inline constexpr char kToken[] = "SUNRAY_TOKEN";
//   Paths of the `sunray` and `sunray-worker` programs, when they are not
//   beside libsunray (or in ../bin).
inline constexpr char kCliProgram[] = "SUNRAY_CLI";
inline constexpr char kWorkerProgram[] = "SUNRAY_WORKER_PROGRAM";

//   "1": Abseil's lock-order (deadlock) detection on, in every Sunray
//   process (ConfigureMutexDeadlockDetection); scripts/run-tests.sh sets it.
inline constexpr char kMutexDeadlockDetection[] = "SUNRAY_MUTEX_DEADLOCK_DETECTION";

//   The log level of every Sunray process started from here (trace, debug,
//   info, warning, error, critical, off; default info). `sunray start
//   --log-level` sets it for the daemons, which pass it on to workers.
inline constexpr char kLogLevel[] = "SUNRAY_LOG_LEVEL";

// Set by the node daemon for the worker processes it starts.
//   The token a starting worker registers with (RegisterWorker); its
//   presence is what makes ray::Init become a worker.
inline constexpr char kStartupToken[] = "SUNRAY_STARTUP_TOKEN";

// Set by the owner in a lease request, for the worker it will run on.
inline constexpr char kControlAddress[] = "SUNRAY_CONTROL_ADDRESS";
inline constexpr char kNodeAddress[] = "SUNRAY_NODE_ADDRESS";
inline constexpr char kJobId[] = "SUNRAY_JOB_ID";  // hex
inline constexpr char kNamespace[] = "SUNRAY_NAMESPACE";
inline constexpr char kDetachedActors[] = "SUNRAY_DETACHED_ACTORS";  // "1" or "0"
//   Names (comma-separated) of the variables that came from a runtime env,
//   so nested tasks inherit them.
inline constexpr char kRuntimeEnvVars[] = "SUNRAY_RUNTIME_ENV_VARS";

}  // namespace sunray::env
