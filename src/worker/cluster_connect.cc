#include "src/worker/cluster_connect.h"
#include "src/common/log.h"

#include <dlfcn.h>
#include <netdb.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "ray/api/ray_exception.h"
#include "src/common/environment.h"
#include "src/common/process.h"
#include "src/core/runtime_env_check.h"
#include "src/worker/cluster_runtime.h"

namespace sunray {
namespace {

namespace fs = std::filesystem;
using ray::internal::RayException;

constexpr auto kClusterStartTimeout = std::chrono::seconds(60);
constexpr auto kClusterStopGrace = std::chrono::milliseconds(10000);

std::string Env(const char *name) {
  const char *value = std::getenv(name);
  return value != nullptr ? std::string(value) : std::string();
}

std::string ReadFile(const fs::path &path) {
  std::ifstream in(path);
  std::stringstream content;
  content << in.rdbuf();
  return content.str();
}

// Where sessions live: $SUNRAY_TEMP_DIR, else /tmp/sunray (as `sunray start`).
fs::path SessionRoot() {
  const std::string root = Env(env::kTempDir);
  return root.empty() ? fs::path("/tmp/sunray") : fs::path(root);
}

// Sunray's programs sit beside libsunray (build tree) or in ../bin
// (installed); `override_var` names an environment variable that wins.
std::string FindProgram(const std::string &name, const char *override_var) {
  if (std::string path = Env(override_var); !path.empty()) return path;
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&StartedAsWorker), &info) != 0 && info.dli_fname != nullptr) {
    std::error_code error;
    const fs::path library = fs::canonical(info.dli_fname, error);
    if (!error) {
      for (const fs::path &candidate :
           {library.parent_path() / name, library.parent_path().parent_path() / "bin" / name}) {
        if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
      }
    }
  }
  return {};
}

// This process's own command line, to start workers from the same binary.
std::vector<std::string> OwnCommandLine() {
  std::vector<std::string> argv;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(in, arg, '\0')) argv.push_back(arg);
  const std::string self = CurrentExecutable();
  if (argv.empty()) argv.push_back(self);
  argv[0] = self;
  return argv;
}

std::vector<std::string> WorkerArgv(const ray::RayConfig &config) {
  if (config.code_search_path.empty()) return OwnCommandLine();
  const std::string worker = FindProgram("sunray-worker", env::kWorkerProgram);
  if (worker.empty()) {
    throw RayException(
        "code_search_path is set, so workers run the generic sunray-worker program, but it was "
        "not found beside libsunray or in ../bin; set SUNRAY_WORKER_PROGRAM to its path.");
  }
  std::string joined;
  for (const auto &path : config.code_search_path) {
    joined += (joined.empty() ? "" : ":") + fs::absolute(path).string();
  }
  return {worker, "--ray_code_search_path=" + joined};
}

// Loads the shared libraries on the code search path (a directory means
// every .so in it). Returns how errors should name the path.
std::string LoadCodeSearchPath(const std::vector<std::string> &paths) {
  std::vector<std::string> libraries;
  for (const auto &path : paths) {
    std::error_code error;
    if (fs::is_directory(path, error)) {
      std::vector<std::string> found;
      for (const auto &entry : fs::directory_iterator(path, error)) {
        if (entry.path().extension() == ".so") found.push_back(entry.path().string());
      }
      std::sort(found.begin(), found.end());
      libraries.insert(libraries.end(), found.begin(), found.end());
    } else {
      libraries.push_back(path);
    }
  }
  for (const auto &library : libraries) {
    if (dlopen(library.c_str(), RTLD_NOW | RTLD_GLOBAL) == nullptr) {
      log::Get("worker")->error("cannot load {}: {}", library, dlerror());
    }
  }
  std::string description = "the code search path (";
  for (size_t i = 0; i < paths.size(); ++i) description += (i ? ":" : "") + paths[i];
  return description + ")";
}

// All of what `fd` holds, from its start.
std::string ReadWhole(int fd) {
  std::string content;
  char buffer[4096];
  off_t offset = 0;
  for (ssize_t n; (n = pread(fd, buffer, sizeof(buffer), offset)) > 0; offset += n) {
    content.append(buffer, static_cast<size_t>(n));
  }
  return content;
}

// A cluster this driver started for itself (`sunray start --head --block`
// in a private session root); stopped with the driver.
struct EmbeddedCluster {
  pid_t pid = 0;
  fs::path root;
  std::string control_address;
  std::string token;

  void Stop() {
    if (pid > 0) TerminateProcess(pid, kClusterStopGrace);
    pid = 0;
    std::error_code error;
    if (!root.empty()) fs::remove_all(root, error);
  }
};

std::unique_ptr<EmbeddedCluster> StartEmbeddedCluster(const ray::RayConfig &config) {
  const std::string cli = FindProgram("sunray", env::kCliProgram);
  if (cli.empty()) {
    throw RayException(
        "ray::Init() without an address starts a local cluster with the `sunray` program, but "
        "it was not found beside libsunray or in ../bin; set SUNRAY_CLI to its path, or pass "
        "an address (RayConfig::address, --ray_address or RAY_ADDRESS).");
  }
  auto cluster = std::make_unique<EmbeddedCluster>();
  std::error_code error;
  fs::create_directories(SessionRoot(), error);
  std::string pattern = (SessionRoot() / "embedded-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    throw RayException("Cannot create a directory for the local cluster under " +
                       SessionRoot().string() + ": " + std::strerror(errno));
  }
  cluster->root = pattern;
  std::vector<std::string> argv = {
      cli, "start", "--head", "--block", "--remove-temp-dir-on-exit", "--port", "0"};
  argv.insert(argv.end(), config.head_args.begin(), config.head_args.end());
  SpawnOptions spawn;
  // What `sunray start` says goes to memory, not to the temp dir: when that
  // is full, the reason must still reach the driver.
  const int output = memfd_create("sunray-start-output", MFD_CLOEXEC);
  if (output < 0) {
    cluster->Stop();
    throw RayException(std::string("Cannot start the local cluster: memfd_create: ") +
                       std::strerror(errno));
  }
  spawn.output_fd = output;
  spawn.die_with_parent = true;
  spawn.extra_env = {std::string(env::kTempDir) + "=" + cluster->root.string()};
  auto pid = SpawnProcess(argv, spawn);
  if (!pid.ok()) {
    close(output);
    cluster->Stop();
    throw RayException("Cannot start the local cluster: " + std::string(pid.status().message()));
  }
  cluster->pid = *pid;
  const fs::path session = cluster->root / "session_latest";
  const auto deadline = std::chrono::steady_clock::now() + kClusterStartTimeout;
  while (cluster->control_address.empty()) {
    cluster->control_address = ReadFile(session / "control_address");
    // The node registers after control serves; its address file is last.
    if (!cluster->control_address.empty() && ReadFile(session / "node_address").empty()) {
      cluster->control_address.clear();
    }
    if (!cluster->control_address.empty()) break;
    const bool timed_out = std::chrono::steady_clock::now() > deadline;
    std::string how = DescribeExit(cluster->pid);  // reaps it: ProcessAlive would too
    if (timed_out || !how.empty()) {
      if (how.empty()) {
        how = "did not start within " + std::to_string(kClusterStartTimeout.count()) + " s";
      }
      std::string said = ReadWhole(output);
      close(output);
      while (!said.empty() && said.back() == '\n') said.pop_back();
      cluster->Stop();
      throw RayException("The local cluster did not start: `sunray start` " + how +
                         (said.empty() ? " and said nothing." : ":\n" + said));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  close(output);  // `sunray start` keeps its own copy
  cluster->token = ReadFile(session / "token");
  return cluster;
}

// Whether a TCP connection to `address` ("host:port") can be opened.
bool SomethingListensAt(const std::string &address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo *found = nullptr;
  if (getaddrinfo(host.c_str(), address.substr(colon + 1).c_str(), &hints, &found) != 0) {
    return false;
  }
  bool connected = false;
  for (addrinfo *at = found; at != nullptr && !connected; at = at->ai_next) {
    const int fd = socket(at->ai_family, at->ai_socktype | SOCK_CLOEXEC, at->ai_protocol);
    if (fd < 0) continue;
    connected = connect(fd, at->ai_addr, at->ai_addrlen) == 0;
    close(fd);
  }
  freeaddrinfo(found);
  return connected;
}

// The token of a cluster on this machine: SUNRAY_TOKEN, else the session
// whose control service is at `address`.
std::string FindToken(const std::string &address) {
  if (std::string token = Env(env::kToken); !token.empty()) return token;
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(SessionRoot(), error)) {
    if (entry.path().filename().string().rfind("session_", 0) != 0) continue;
    if (ReadFile(entry.path() / "control_address") == address) {
      return ReadFile(entry.path() / "token");
    }
  }
  if (!SomethingListensAt(address)) {
    throw RayException("Nothing listens at " + address +
                       ": no Sunray cluster runs there (`sunray start --head` starts one; "
                       "ray::Init() without an address starts a local cluster).");
  }
  throw RayException("No token for the cluster at " + address +
                     ": set SUNRAY_TOKEN to the content of its session's token file (`sunray "
                     "start` prints where it is).");
}

// The node daemon of a session on this machine whose control service is at
// `address` (the head's, or a node that joined it), if any: a driver uses
// its own machine's node, and on a machine with several, the one of the
// session root it was started with (SUNRAY_TEMP_DIR).
std::string FindLocalNode(const std::string &address) {
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(SessionRoot(), error)) {
    if (entry.path().filename().string().rfind("session_", 0) != 0) continue;
    if (ReadFile(entry.path() / "control_address") != address) continue;
    if (std::string node = ReadFile(entry.path() / "node_address"); !node.empty()) return node;
  }
  return "";
}

std::mutex embedded_mu;
std::map<ray::internal::RayRuntime *, std::unique_ptr<EmbeddedCluster>> embedded;

}  // namespace

bool StartedAsWorker() { return !Env(env::kStartupToken).empty(); }

void RunAsWorker(const ray::RayConfig &config,
                 const std::function<void(std::shared_ptr<ray::internal::RayRuntime>)> &install) {
  ClusterRuntimeOptions options;
  options.worker_mode = true;
  options.startup_token = std::stoll(Env(env::kStartupToken));
  // Processes this worker starts are not workers.
  unsetenv(env::kStartupToken);
  options.control_address = Env(env::kControlAddress);
  options.token = Env(env::kToken);
  options.node_address = Env(env::kNodeAddress);
  options.job_id_hex = Env(env::kJobId);
  options.ray_namespace = Env(env::kNamespace);
  options.detached_actors = Env(env::kDetachedActors) == "1";
  // The runtime env this worker was started with is its tasks' default.
  std::stringstream names(Env(env::kRuntimeEnvVars));
  for (std::string name; std::getline(names, name, ',');) {
    if (!name.empty()) options.env_vars[name] = Env(name.c_str());
  }
  const size_t colon = options.node_address.rfind(':');
  if (colon != std::string::npos) options.host = options.node_address.substr(0, colon);
  if (!config.code_search_path.empty()) {
    options.code_search_description = LoadCodeSearchPath(config.code_search_path);
  }
  // Nested tasks start workers like this one.
  options.worker_argv = OwnCommandLine();
  std::shared_ptr<ClusterRuntime> runtime;
  try {
    runtime = std::make_shared<ClusterRuntime>(options);
  } catch (const std::exception &e) {
    log::Get("worker")->critical("{}", e.what());
    _exit(1);
  }
  install(runtime);
  runtime->RunWorkerLoop();
}

std::shared_ptr<ray::internal::RayRuntime> ConnectDriver(const ray::RayConfig &config) {
  ClusterRuntimeOptions options;
  options.ray_namespace = config.ray_namespace;
  options.detached_actors = config.default_actor_lifetime == ray::ActorLifetime::DETACHED;
  options.worker_argv = WorkerArgv(config);
  if (config.runtime_env) {  // checked by ray::Init
    std::string ignored;
    if (auto vars =
            ParseRuntimeEnvInfo(config.runtime_env->SerializeToRuntimeEnvInfo(), &ignored)) {
      options.env_vars = *std::move(vars);
    }
  }
  std::unique_ptr<EmbeddedCluster> cluster;
  if (config.address.empty()) {
    cluster = StartEmbeddedCluster(config);
    options.control_address = cluster->control_address;
    options.token = cluster->token;
  } else {
    options.control_address = config.address;
    options.token = FindToken(config.address);
    options.node_address = FindLocalNode(config.address);
    // Served where its node serves (the node's address on the network).
    if (const size_t colon = options.node_address.rfind(':'); colon != std::string::npos) {
      options.host = options.node_address.substr(0, colon);
    }
  }
  std::shared_ptr<ClusterRuntime> runtime;
  try {
    runtime = std::make_shared<ClusterRuntime>(options);
  } catch (...) {
    if (cluster != nullptr) cluster->Stop();
    throw;
  }
  if (cluster != nullptr) {
    std::lock_guard lock(embedded_mu);
    embedded[runtime.get()] = std::move(cluster);
  }
  return runtime;
}

void ShutdownDriver(ray::internal::RayRuntime *runtime) {
  if (auto *cluster_runtime = dynamic_cast<ClusterRuntime *>(runtime)) cluster_runtime->Shutdown();
  std::unique_ptr<EmbeddedCluster> cluster;
  {
    std::lock_guard lock(embedded_mu);
    auto it = embedded.find(runtime);
    if (it == embedded.end()) return;
    cluster = std::move(it->second);
    embedded.erase(it);
  }
  cluster->Stop();
}

}  // namespace sunray
