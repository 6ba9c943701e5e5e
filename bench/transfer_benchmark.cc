// Object transfer between two nodes on this machine, next to raw TCP
// between two processes on the same link (loopback) as the ceiling.
//
//   [SUNRAY_BENCH_CLI=OTHER/sunray] bench/transfer_benchmark [--mib N] [--repeats R]
//
// Starts a head and a second node with `sunray start` (each in its own
// temporary SUNRAY_TEMP_DIR, stores of 2.5 x N MiB), then, as a driver on
// the head: a task pinned to the second node makes an N MiB result; once it
// is ready the head's node daemon pulls it (NodeService.PullObject, as a
// Get there would; object_transfer_gigabytes). Then, for the whole read,
// the driver Gets such results (remote_get_gigabytes: the pull, then the
// deserialization) and results made on the head itself
// (local_get_gigabytes: only the deserialization). Each is the median of R
// runs after a warm-up. Also the raw TCP figure (one process writing N MiB
// to another over a loopback socket, 4 MiB writes) and the ratio of the
// pull to raw TCP. The workers are this program (ray::Init comes first).
#include <netinet/in.h>
#include <ray/api.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>

#include "src/rpc/rpc.h"  // kTokenHeader only: no generated message is linked here

namespace {

using Clock = std::chrono::steady_clock;

std::string Made(int mib) { return std::string(static_cast<size_t>(mib) << 20, 'b'); }
RAY_REMOTE(Made);

std::string ReadFile(const std::string &path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string content = text.str();
  while (!content.empty() && (content.back() == '\n' || content.back() == ' ')) content.pop_back();
  return content;
}

// Runs a shell command; its exit code.
int Run(const std::string &command) { return std::system(command.c_str()); }

// A call to a node daemon by hand, its request as protobuf bytes: this
// program cannot link the generated messages (libsunray registers them
// already, and protobuf refuses a second copy).
std::string Field(int number, const std::string &value) {  // length-delimited
  std::string bytes(1, static_cast<char>((number << 3) | 2));
  for (uint64_t n = value.size();; n >>= 7) {
    if (n < 0x80) {
      bytes += static_cast<char>(n);
      break;
    }
    bytes += static_cast<char>((n & 0x7f) | 0x80);
  }
  return bytes + value;
}

grpc::Status CallNode(const std::string &node, const std::string &token, const std::string &method,
                      const std::string &bytes) {
  grpc::GenericStub stub(grpc::CreateChannel(node, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.AddMetadata(sunray::rpc::kTokenHeader, token);
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer reply;
  std::mutex mu;
  std::condition_variable answered;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &reply, [&](grpc::Status ended) {
    std::lock_guard<std::mutex> lock(mu);
    status = std::move(ended);
    done = true;
    answered.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  answered.wait(lock, [&] { return done; });
  return status;
}

// NodeService.PullObject (1 object_id, 2 from_address): `node` copies the
// object from the node at `from` into its store.
grpc::Status PullObject(const std::string &node, const std::string &token, const std::string &id,
                        const std::string &from) {
  return CallNode(node, token, "/sunray.proto.NodeService/PullObject",
                  Field(1, id) + Field(2, from));
}

// ObjectStoreService.DeleteObjects (1 object_ids) at `node`: frees its copy.
grpc::Status DeleteCopy(const std::string &node, const std::string &token, const std::string &id) {
  return CallNode(node, token, "/sunray.proto.ObjectStoreService/DeleteObjects", Field(1, id));
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

// Seconds to send `bytes` from a child process to this one over loopback TCP.
double RawTcpSeconds(size_t bytes) {
  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(listener, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr *>(&address), &length) != 0) {
    return -1;
  }
  const pid_t child = fork();
  if (child == 0) {
    const int out = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(out, reinterpret_cast<sockaddr *>(&address), sizeof(address)) != 0) _exit(1);
    std::vector<char> chunk(4 << 20, 'r');
    for (size_t sent = 0; sent < bytes;) {
      const ssize_t wrote = write(out, chunk.data(), std::min(chunk.size(), bytes - sent));
      if (wrote <= 0) _exit(1);
      sent += static_cast<size_t>(wrote);
    }
    close(out);
    _exit(0);
  }
  const int in = accept(listener, nullptr, nullptr);
  std::vector<char> received(bytes);
  const auto start = Clock::now();
  size_t got = 0;
  while (got < bytes) {
    const ssize_t read_now = read(in, received.data() + got, bytes - got);
    if (read_now <= 0) break;
    got += static_cast<size_t>(read_now);
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  close(in);
  close(listener);
  waitpid(child, nullptr, 0);
  return got == bytes ? seconds : -1;
}

}  // namespace

int main(int argc, char **argv) {
  ray::RayConfig config;
  int mib = 1024;
  int repeats = 3;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--mib") mib = std::atoi(argv[i + 1]);
    if (std::string(argv[i]) == "--repeats") repeats = std::atoi(argv[i + 1]);
  }
  if (getenv("SUNRAY_STARTUP_TOKEN") != nullptr) {
    ray::Init(config, argc, argv);  // a worker: never returns
    return 0;
  }
  // SUNRAY_BENCH_CLI: another build's `sunray` (its daemons move the
  // object), for before/after runs of one benchmark binary.
  const char *other_cli = getenv("SUNRAY_BENCH_CLI");
  const std::string cli = other_cli != nullptr ? other_cli : SUNRAY_CLI_PATH;
  char head_pattern[] = "/tmp/sunray-transfer-bench.XXXXXX";
  char node_pattern[] = "/tmp/sunray-transfer-bench.XXXXXX";
  const std::string head_root = mkdtemp(head_pattern);
  const std::string node_root = mkdtemp(node_pattern);
  const std::string store = std::to_string((static_cast<int64_t>(mib) << 20) * 5 / 2);
  int failed =
      Run("SUNRAY_TEMP_DIR=" + head_root + " " + cli +
          " start --head --port 0 --num-cpus 1 --object-store-memory " + store + " > /dev/null");
  const std::string control = ReadFile(head_root + "/session_latest/control_address");
  const std::string token = ReadFile(head_root + "/session_latest/token");
  if (failed == 0) {
    failed = Run("SUNRAY_TEMP_DIR=" + node_root + " SUNRAY_TOKEN=" + token + " " + cli +
                 " start --address " + control + " --num-cpus 1 --object-store-memory " + store +
                 " > /dev/null");
  }
  const std::string other = ReadFile(node_root + "/session_latest/node_id");
  int code = 1;
  if (failed == 0 && !other.empty()) {
    setenv("SUNRAY_TEMP_DIR", head_root.c_str(), 1);  // the driver's node: the head
    config.address = control;
    ray::Init(config, argc, argv);
    // Seconds to read a result made on `node`, per read after a warm-up.
    auto reads = [&](const std::string &node) {
      std::vector<double> seconds;
      for (int i = 0; i <= repeats; ++i) {
        auto made = ray::Task(Made)
                        .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{node, false})
                        .Remote(mib);
        std::vector<ray::ObjectRef<std::string>> refs = {made};
        ray::Wait(refs, 1, -1);
        const auto start = Clock::now();
        const size_t size = made.Get()->size();
        const double took = std::chrono::duration<double>(Clock::now() - start).count();
        if (size != static_cast<size_t>(mib) << 20) break;
        if (i > 0) seconds.push_back(took);  // the first warms the workers up
      }
      return seconds;
    };
    // The pull alone: the head's node daemon copies a result made on the
    // other node into its store (NodeService.PullObject, what a Get there
    // asks of it), timed without the deserialization a Get adds; then the
    // copy is deleted.
    auto pulls = [&]() {
      std::vector<double> seconds;
      const std::string head_node = ReadFile(head_root + "/session_latest/node_address");
      const std::string from = ReadFile(node_root + "/session_latest/node_address");
      for (int i = 0; i <= repeats; ++i) {
        auto made = ray::Task(Made)
                        .SetSchedulingStrategy(ray::NodeAffinitySchedulingStrategy{other, false})
                        .Remote(mib);
        std::vector<ray::ObjectRef<std::string>> refs = {made};
        ray::Wait(refs, 1, -1);
        const auto start = Clock::now();
        const grpc::Status pulled = PullObject(head_node, token, made.ID(), from);
        const double took = std::chrono::duration<double>(Clock::now() - start).count();
        if (!pulled.ok()) {
          std::cerr << "PullObject: " << pulled.error_message() << "\n";
          break;
        }
        // Freed at once, as a Get's copy is when its ref goes: the next pull
        // reuses pages already touched, as reads do.
        (void)DeleteCopy(head_node, token, made.ID());
        if (i > 0) seconds.push_back(took);
      }
      return seconds;
    };
    const std::vector<double> pulled = pulls();
    const std::vector<double> seconds = reads(other);
    const std::vector<double> local = reads(ReadFile(head_root + "/session_latest/node_id"));
    ray::Shutdown();
    std::vector<double> tcp;
    for (int i = 0; i < repeats; ++i) tcp.push_back(RawTcpSeconds(static_cast<size_t>(mib) << 20));
    if (static_cast<int>(seconds.size()) == repeats && static_cast<int>(local.size()) == repeats &&
        static_cast<int>(pulled.size()) == repeats) {
      const double gb = static_cast<double>(static_cast<size_t>(mib) << 20) / 1e9;
      const double transfer = gb / Median(pulled);
      const double raw = gb / Median(tcp);
      std::cout << std::fixed << std::setprecision(2) << "object_transfer_gigabytes (" << mib
                << " MiB, 2 nodes, the pull)  " << transfer
                << " GB/s\nremote_get_gigabytes (pull + deserialize)  " << gb / Median(seconds)
                << " GB/s\nlocal_get_gigabytes (deserialize)  " << gb / Median(local)
                << " GB/s\nraw_tcp_loopback_gigabytes  " << raw << " GB/s\ntransfer/raw  "
                << transfer / raw << std::endl;
      code = 0;
    }
  }
  Run("SUNRAY_TEMP_DIR=" + node_root + " " + cli + " stop > /dev/null");
  Run("SUNRAY_TEMP_DIR=" + head_root + " " + cli + " stop > /dev/null");
  std::filesystem::remove_all(head_root);
  std::filesystem::remove_all(node_root);
  return code;
}
