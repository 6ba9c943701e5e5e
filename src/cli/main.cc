// The sunray command: starts, inspects and stops clusters on this machine.
//
//   sunray start --head [--port P] [--node-ip-address IP] [--block]
//   sunray start --address HEAD:PORT [--token-file F] [--labels JSON] ...
//   sunray status [--address HOST:PORT]
//   sunray list nodes|placement-groups [--address HOST:PORT] [--format table|json]
//   sunray stop
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"
#include "control.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "node.grpc.pb.h"
#include "src/cli/inspect.h"
#include "src/common/environment.h"
#include "src/common/id.h"
#include "src/common/log.h"
#include "src/common/process.h"
#include "src/common/resources.h"
#include "src/common/session.h"
#include "src/control/control_daemon.h"
#include "src/node/node_daemon.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{15000};
constexpr milliseconds kStopGrace{5000};

// Options of Ray's `ray start` without a meaning for Sunray (yet).
constexpr const char *kIgnoredRayStartFlags[] = {"--object-manager-port",
                                                 "--node-manager-port",
                                                 "--gcs-server-port",
                                                 "--min-worker-port",
                                                 "--max-worker-port",
                                                 "--worker-port-list",
                                                 "--ray-client-server-port",
                                                 "--redis-password",
                                                 "--redis-username",
                                                 "--redis-shard-ports",
                                                 "--include-dashboard",
                                                 "--dashboard-host",
                                                 "--dashboard-port",
                                                 "--dashboard-agent-listen-port",
                                                 "--dashboard-agent-grpc-port",
                                                 "--dashboard-grpc-port",
                                                 "--runtime-env-agent-port",
                                                 "--metrics-export-port",
                                                 "--plasma-directory",
                                                 "--object-spilling-directory",
                                                 "--autoscaling-config",
                                                 "--plasma-store-socket-name",
                                                 "--raylet-socket-name",
                                                 "--temp-dir",
                                                 "--storage",
                                                 "--system-config",
                                                 "--tracing-startup-hook",
                                                 "--log-style",
                                                 "--log-color",
                                                 "--node-name",
                                                 "--labels-file",
                                                 "--cgroup-path",
                                                 "--enable-resource-isolation",
                                                 "--system-reserved-cpu",
                                                 "--system-reserved-memory",
                                                 "--include-log-monitor",
                                                 "--enable-object-reconstruction",
                                                 "--no-redirect-output",
                                                 "--no-monitor",
                                                 "--ray-debugger-external",
                                                 "--disable-usage-stats",
                                                 "--verbose"};

struct StartOptions {
  bool head = false;
  std::string address;     // join the cluster whose control service is here
  std::string token_file;  // the cluster's token, when joining
  std::string labels_json = "{}";
  // The head's health checks of the nodes (NodeHealthChecker).
  int health_check_period_ms = 1000;
  int health_check_timeout_ms = 1000;
  int health_check_failure_threshold = 3;
  int port = 6379;
  std::string node_ip_address = "127.0.0.1";
  bool block = false;
  bool remove_root = false;  // --block: remove the session root (SUNRAY_TEMP_DIR) at the end
  double num_cpus = -1;      // -1: one per hardware thread
  double num_gpus = 0;
  std::string resources_json = "{}";
  int64_t object_store_memory = -1;  // -1: 30% of physical memory
  int64_t memory = -1;               // -1: 70% of what the store leaves
};

int64_t PhysicalMemoryBytes() {
  return static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) *
         static_cast<int64_t>(sysconf(_SC_PAGE_SIZE));
}

int64_t DefaultObjectStoreBytes() { return PhysicalMemoryBytes() * 3 / 10; }

// What a starting daemon writes to its stderr (a pipe), until it closes it
// (MoveStderrToStdout: started) or exits, or `timeout` passes.
std::string ReadUntilClosed(int fd, milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string said;
  while (true) {
    const auto left =
        std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return said;
    pollfd readable{fd, POLLIN, 0};
    const int ready = poll(&readable, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return said;
    char buffer[4096];
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return said;
    said.append(buffer, static_cast<size_t>(n));
  }
}

// Spawns one daemon of the session and waits until it has started (its
// address file) or failed. A daemon's stderr is a pipe to us until it has
// started, so its reason for failing reaches us even where its log cannot
// be written (a full disk); what it said is copied into its log too.
absl::StatusOr<std::string> StartDaemon(const std::string &session, const std::string &name,
                                        std::vector<std::string> argv, bool block) {
  SpawnOptions spawn;
  spawn.log_path = session + "/logs/" + name + ".out";
  spawn.new_session = !block;
  spawn.die_with_parent = block;
  int startup[2];
  if (pipe2(startup, O_CLOEXEC) != 0) {
    return absl::InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  spawn.stderr_fd = startup[1];
  argv.insert(argv.begin(), {CurrentExecutable(), name, "--session-dir", session});
  auto pid = SpawnProcess(argv, spawn);
  close(startup[1]);
  if (!pid.ok()) {
    close(startup[0]);
    return pid.status();
  }
  if (absl::Status recorded = RecordDaemon(session, name, *pid); !recorded.ok()) {
    close(startup[0]);
    TerminateProcess(*pid, kStopGrace);
    return absl::Status(recorded.code(), "cannot record the " + name + " daemon (stopped it): " +
                                             std::string(recorded.message()));
  }
  std::string said = ReadUntilClosed(startup[0], kStartTimeout);
  close(startup[0]);
  if (!said.empty()) {
    if (std::FILE *log = std::fopen(spawn.log_path.c_str(), "a")) {
      std::fwrite(said.data(), 1, said.size(), log);
      std::fclose(log);
    }
  }
  auto address = ReadFileToString(session + "/" + name + "_address");
  if (address.ok() && !address->empty() && ProcessAlive(*pid)) return address;
  // It closed the pipe by exiting, or soon exits: say how.
  std::string how = DescribeExit(*pid, milliseconds(2000));
  if (how.empty()) how = "did not start within " + std::to_string(kStartTimeout.count()) + " ms";
  while (!said.empty() && said.back() == '\n') said.pop_back();
  return absl::UnavailableError("the " + name + " daemon " + how +
                                (said.empty() ? " and said nothing" : ": " + said));
}

// The token for joining the cluster at `address`: --token-file, else
// SUNRAY_TOKEN, else the session on this machine whose control service is
// there. Says where it came from in `source`.
absl::StatusOr<std::string> JoinToken(const StartOptions &options, std::string &source) {
  if (!options.token_file.empty()) {
    auto token = ReadFileToString(options.token_file);
    if (!token.ok()) {
      return absl::InvalidArgumentError("cannot read --token-file " + options.token_file + ": " +
                                        std::string(token.status().message()));
    }
    while (!token->empty() && std::isspace(static_cast<unsigned char>(token->back()))) {
      token->pop_back();
    }
    if (token->empty()) {
      return absl::InvalidArgumentError("--token-file " + options.token_file + " is empty");
    }
    source = "--token-file " + options.token_file;
    return token;
  }
  if (const char *token = std::getenv(env::kToken); token != nullptr && *token != '\0') {
    source = std::string("$") + env::kToken;
    return std::string(token);
  }
  for (const auto &session : ListSessions()) {
    auto control = ReadFileToString(session + "/control_address");
    if (!control.ok() || *control != options.address) continue;
    auto token = ReadFileToString(session + "/token");
    if (token.ok() && !token->empty()) {
      source = session + "/token";
      return token;
    }
  }
  return absl::NotFoundError("no token for the cluster at " + options.address +
                             ": pass --token-file FILE or set " + env::kToken +
                             " (the head's token is its session's token file, which `sunray "
                             "start --head` prints)");
}

// Whether the head at `address` answers and takes `token`: the joining
// node fails at once, saying which, instead of a daemon failing later.
absl::Status CheckHead(const std::string &address, const std::string &token,
                       const std::string &token_source) {
  auto stub = proto::ControlService::NewStub(rpc::MakeChannel(address));
  proto::GetAllNodesReply nodes;
  const grpc::Status status =
      stub->GetAllNodes(rpc::MakeClientContext(token, milliseconds(5000)).get(), {}, &nodes);
  if (status.ok()) return absl::OkStatus();
  if (status.error_code() == grpc::StatusCode::UNAUTHENTICATED) {
    return absl::PermissionDeniedError("the head at " + address + " refused the token from " +
                                       token_source + " (wrong cluster token)");
  }
  return absl::UnavailableError("cannot reach the head's control service at " + address + ": " +
                                status.error_message());
}

int Start(const StartOptions &options) {
  if (options.head == !options.address.empty()) {
    std::cerr << "sunray start: give either --head (start a new cluster) or --address HEAD:PORT "
                 "(join the cluster whose head is there)\n";
    return 2;
  }
  // Check everything before starting anything.
  auto labels = ParseLabelsJson(options.labels_json);
  if (!labels.ok()) {
    std::cerr << "sunray start: " << labels.status().message() << "\n";
    return 2;
  }
  if (options.health_check_period_ms <= 0 || options.health_check_timeout_ms <= 0 ||
      options.health_check_failure_threshold <= 0) {
    std::cerr << "sunray start: --health-check-period-ms, --health-check-timeout-ms and "
                 "--health-check-failure-threshold must be above zero\n";
    return 2;
  }
  std::string token;
  if (!options.head) {
    std::string source;
    auto found = JoinToken(options, source);
    if (!found.ok()) {
      std::cerr << "sunray start: " << found.status().message() << "\n";
      return 2;
    }
    token = *found;
    if (absl::Status head = CheckHead(options.address, token, source); !head.ok()) {
      std::cerr << "sunray start: " << head.message() << "\n";
      return 1;
    }
  }
  auto custom = ParseResourcesJson(options.resources_json);
  if (!custom.ok()) {
    std::cerr << "sunray start: " << custom.status().message() << "\n";
    return 2;
  }
  if (options.num_cpus < -1 || options.num_gpus < 0) {
    std::cerr << "sunray start: --num-cpus and --num-gpus must not be negative\n";
    return 2;
  }
  ResourceSet resources = *custom;
  const double cpus = options.num_cpus < 0 ? std::thread::hardware_concurrency() : options.num_cpus;
  resources["CPU"] = ToFixedPoint(cpus);
  if (options.num_gpus > 0) resources["GPU"] = ToFixedPoint(options.num_gpus);
  const int64_t store_bytes =
      options.object_store_memory < 0 ? DefaultObjectStoreBytes() : options.object_store_memory;
  if (store_bytes <= 0) {
    std::cerr << "sunray start: --object-store-memory must be above zero\n";
    return 2;
  }
  // As in Ray: "memory" (bytes for tasks to reserve) is 70% of what the
  // object store leaves, and "object_store_memory" the store's size, unless
  // --resources set them.
  const double spare =
      static_cast<double>(std::max<int64_t>(0, PhysicalMemoryBytes() - store_bytes));
  if (options.memory >= 0) resources["memory"] = ToFixedPoint(static_cast<double>(options.memory));
  resources.try_emplace("memory", ToFixedPoint(spare * 0.7));
  resources.try_emplace("object_store_memory", ToFixedPoint(static_cast<double>(store_bytes)));

  // With --block, Ctrl-C must stop the daemons even while they are starting:
  // take the stop signals now and handle them once startup is done. (Spawned
  // processes get an empty signal mask.)
  if (options.block) BlockStopSignals();

  auto session = CreateSession(token);
  if (!session.ok()) {
    std::cerr << "sunray start: " << session.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<std::string> address = options.address;
  if (options.head) {
    address =
        StartDaemon(*session, "control",
                    {"--host", options.node_ip_address, "--port", std::to_string(options.port),
                     "--health-check-period-ms", std::to_string(options.health_check_period_ms),
                     "--health-check-timeout-ms", std::to_string(options.health_check_timeout_ms),
                     "--health-check-failure-threshold",
                     std::to_string(options.health_check_failure_threshold)},
                    options.block);
  } else if (absl::Status written =
                 WriteFileAtomically(*session + "/control_address", options.address);
             !written.ok()) {
    address = written;  // drivers and `sunray status` on this machine find the head here
  }
  absl::StatusOr<std::string> node_address = absl::UnknownError("not started");
  if (address.ok()) {
    std::ostringstream resources_json;
    resources_json << "{";
    for (auto it = resources.begin(); it != resources.end(); ++it) {
      resources_json << (it == resources.begin() ? "" : ",") << '"' << it->first
                     << "\":" << FromFixedPoint(it->second);
    }
    resources_json << "}";
    node_address =
        StartDaemon(*session, "node",
                    {"--control-address", *address, "--host", options.node_ip_address,
                     "--resources", resources_json.str(), "--labels", options.labels_json,
                     "--object-store-memory", std::to_string(store_bytes)},
                    options.block);
  }
  if (!address.ok() || !node_address.ok()) {
    std::cerr << "sunray start: "
              << (address.ok() ? node_address.status() : address.status()).message() << "\n";
    StopSession(*session, kStopGrace);
    return 1;
  }
  const std::string node_id = ReadFileToString(*session + "/node_id").value_or("");
  if (!options.head) {
    std::cout << "Sunray node " << node_id << " joined the cluster at " << *address << ".\n"
              << "  Node daemon: " << *node_address << "\n"
              << "  Session:     " << *session << "\n"
              << "Stop with: sunray stop\n";
  } else {
    std::cout << "Sunray head started.\n"
              << "  Control service: " << *address << "\n"
              << "  Node daemon:     " << *node_address << "\n"
              << "  Session:         " << *session << "\n"
              << "  Cluster token:   " << *session << "/token (mode 0600)\n"
              << "Connect a driver with RAY_ADDRESS=" << *address << " and SUNRAY_TOKEN=$(cat "
              << *session << "/token)\n"
              << "Join more nodes with: sunray start --address=" << *address
              << " --token-file=" << *session << "/token\n"
              << "Stop with: sunray stop\n";
  }
  std::cout.flush();
  if (!options.block) return 0;
  // --block: stay in the foreground until interrupted, then stop everything.
  WaitForStopSignal();
  StopSession(*session, kStopGrace);
  if (options.remove_root && std::getenv(env::kTempDir) != nullptr) {
    // A private root (an embedded cluster's): nothing of it may stay, also
    // when the driver that made it was killed.
    std::error_code ignored;
    std::filesystem::remove_all(SessionRoot(), ignored);
  }
  return 0;
}

int Stop() {
  int sessions = 0;
  int daemons = 0;
  for (const auto &session : ListSessions()) {
    daemons += StopSession(session, kStopGrace);
    ++sessions;
  }
  std::cout << "Stopped " << daemons << " daemon(s) in " << sessions << " session(s).\n";
  return 0;
}

}  // namespace

}  // namespace sunray

namespace {

// A daemon that crashes writes its stack to stderr (its log) before it dies
// as it would have (so a core is still written where enabled). The stop
// signals keep their own handling: the daemons block them and wait for them.
void InstallCrashReport(const char *argv0) {
  absl::InitializeSymbolizer(argv0);  // our functions by name in the stack
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions());
  std::signal(SIGTERM, SIG_DFL);
  std::signal(SIGINT, SIG_DFL);
}

}  // namespace

int main(int argc, char **argv) {
  sunray::ConfigureMutexDeadlockDetection();
  CLI::App app{"sunray: start, inspect and stop Sunray clusters"};
  app.require_subcommand(1);

  sunray::StartOptions start;
  CLI::App *start_command = app.add_subcommand("start", "Start Sunray daemons on this machine");
  start_command->add_flag("--head", start.head, "Start the head: the control service");
  start_command->add_option("--address", start.address,
                            "Join the cluster whose head (control service) is at HOST:PORT");
  start_command->add_option("--token-file", start.token_file,
                            "With --address: a file holding the cluster token (default: "
                            "$SUNRAY_TOKEN, else the head's session on this machine)");
  start_command->add_option("--labels", start.labels_json,
                            "Node labels as JSON, e.g. '{\"zone\": \"a\"}'");
  start_command
      ->add_option("--health-check-period-ms", start.health_check_period_ms,
                   "With --head: how often control checks each node (default 1000)")
      ->group("Health checks");
  start_command
      ->add_option("--health-check-timeout-ms", start.health_check_timeout_ms,
                   "With --head: how long one check may take (default 1000)")
      ->group("Health checks");
  start_command
      ->add_option("--health-check-failure-threshold", start.health_check_failure_threshold,
                   "With --head: failed checks in a row before a node is declared dead "
                   "(default 3)")
      ->group("Health checks");
  start_command->add_option("--port", start.port, "Control service port (0: any free port)")
      ->check(CLI::Range(0, 65535));
  start_command->add_option("--node-ip-address", start.node_ip_address,
                            "Address the daemons listen on (default: loopback only)");
  start_command->add_flag("--block", start.block,
                          "Stay in the foreground; stop the daemons on Ctrl-C");
  start_command
      ->add_flag("--remove-temp-dir-on-exit", start.remove_root,
                 "With --block: remove the whole temp dir (SUNRAY_TEMP_DIR) when stopping")
      ->group("");  // internal: for embedded clusters
  start_command->add_option("--num-cpus", start.num_cpus, "CPUs to offer (default: all)");
  start_command->add_option("--num-gpus", start.num_gpus, "GPUs to offer (default: 0)");
  start_command->add_option("--resources", start.resources_json,
                            "Custom resources as JSON, e.g. '{\"accel\": 2}'");
  start_command->add_option("--object-store-memory", start.object_store_memory,
                            "Object store size in bytes (default: 30% of memory)");
  start_command->add_option("--memory", start.memory,
                            "Bytes of the \"memory\" resource (default: 70% of what the "
                            "store leaves)");
  std::string log_level;
  start_command->add_option("--log-level", log_level,
                            "Log level of the daemons and workers: trace, debug, info, warning, "
                            "error, critical or off (default: $SUNRAY_LOG_LEVEL, else info)");
  // Flags of Ray's `ray start` that mean nothing here (yet): accepted, with
  // or without a value, so that Ray users' command lines (and RayConfig's
  // head_args) work, and named in one warning.
  std::vector<CLI::Option *> ray_only;
  std::map<std::string, std::vector<std::string>> ray_only_values;
  for (const char *name : sunray::kIgnoredRayStartFlags) {
    ray_only.push_back(
        start_command->add_option(name, ray_only_values[name])->expected(0, 1)->group(""));
  }

  CLI::App *stop_command =
      app.add_subcommand("stop", "Stop every Sunray daemon started on this machine");

  std::string status_address;
  CLI::App *status_command = app.add_subcommand("status", "Show the cluster's nodes and jobs");
  status_command->add_option("--address", status_address,
                             "Control service HOST:PORT (default: the newest session's)");

  std::string list_address;
  std::string list_format = "table";
  CLI::App *list_command = app.add_subcommand("list", "List the cluster's state");
  list_command->require_subcommand(1);
  CLI::App *list_nodes = list_command->add_subcommand("nodes", "Every node, alive or dead");
  list_nodes->add_option("--address", list_address,
                         "Control service HOST:PORT (default: the newest session's)");
  list_nodes->add_option("--format", list_format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));
  CLI::App *list_groups =
      list_command->add_subcommand("placement-groups", "Every placement group, and its bundles");
  list_groups->add_option("--address", list_address,
                          "Control service HOST:PORT (default: the newest session's)");
  list_groups->add_option("--format", list_format, "table or json")
      ->check(CLI::IsMember({"table", "json"}));

  sunray::ControlDaemonOptions control;
  CLI::App *control_command = app.add_subcommand("control", "(internal) run the control service");
  control_command->group("");  // hidden from help
  control_command->add_option("--session-dir", control.session_dir)->required();
  control_command->add_option("--host", control.host);
  control_command->add_option("--port", control.port)->check(CLI::Range(0, 65535));
  int health_period_ms = 1000;
  int health_timeout_ms = 1000;
  control_command->add_option("--health-check-period-ms", health_period_ms)
      ->check(CLI::PositiveNumber);
  control_command->add_option("--health-check-timeout-ms", health_timeout_ms)
      ->check(CLI::PositiveNumber);
  control_command->add_option("--health-check-failure-threshold", control.health.failure_threshold)
      ->check(CLI::PositiveNumber);

  sunray::NodeDaemonOptions node;
  std::string node_resources = "{}";
  CLI::App *node_command = app.add_subcommand("node", "(internal) run the node daemon");
  node_command->group("");
  node_command->add_option("--session-dir", node.session_dir)->required();
  node_command->add_option("--control-address", node.control_address)->required();
  node_command->add_option("--host", node.host);
  node_command->add_option("--port", node.port)->check(CLI::Range(0, 65535));
  node_command->add_option("--resources", node_resources);
  std::string node_labels = "{}";
  node_command->add_option("--labels", node_labels);
  node_command->add_option("--object-store-memory", node.object_store_bytes)->required();

  CLI11_PARSE(app, argc, argv);
  if (*node_command || *control_command) InstallCrashReport(argv[0]);
  if (*node_command) {
    auto resources = sunray::ParseResourcesJson(node_resources);
    if (!resources.ok()) {
      std::cerr << "sunray node: " << resources.status().message() << "\n";
      return 2;
    }
    node.resources = *resources;
    auto labels = sunray::ParseLabelsJson(node_labels);
    if (!labels.ok()) {
      std::cerr << "sunray node: " << labels.status().message() << "\n";
      return 2;
    }
    node.labels = *labels;
    return sunray::RunNodeDaemon(node);
  }
  if (*start_command) {
    std::string ignored;
    for (size_t i = 0; i < ray_only.size(); ++i) {
      if (ray_only[i]->count() == 0) continue;
      ignored += (ignored.empty() ? "" : ", ") + std::string(sunray::kIgnoredRayStartFlags[i]);
    }
    if (!ignored.empty()) {
      std::cerr << "sunray start: ignoring Ray options that Sunray has no use for: " << ignored
                << "\n";
    }
    if (!log_level.empty()) {
      if (absl::Status valid = sunray::log::SetLevel(log_level); !valid.ok()) {
        std::cerr << "sunray start: --log-level " << valid.message() << "\n";
        return 2;
      }
      // The daemons read it, and pass it on to the workers they start.
      setenv(sunray::env::kLogLevel, log_level.c_str(), 1);
    }
    return sunray::Start(start);
  }
  if (*stop_command) return sunray::Stop();
  if (*status_command) return sunray::Status(status_address);
  if (*list_nodes) return sunray::ListNodes(list_address, list_format);
  if (*list_groups) return sunray::ListPlacementGroups(list_address, list_format);
  if (*control_command) {
    control.health.period = std::chrono::milliseconds(health_period_ms);
    control.health.timeout = std::chrono::milliseconds(health_timeout_ms);
    return sunray::RunControlDaemon(control);
  }
  return 2;
}
