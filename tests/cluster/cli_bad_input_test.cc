// How the sunray command and its daemons take bad input and failures: a
// huge request without the token, a lease request whose caller gave up,
// Ray's start options, a full disk, and a driver pointed where nothing
// listens.
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <optional>
#include <string>

#include "node.grpc.pb.h"
#include "src/common/process.h"
#include "src/common/session.h"
#include "src/rpc/rpc.h"
#include "tests/cluster/cli_test_support.h"

namespace sunray {
namespace cli_test {
namespace {

// VmHWM (peak resident memory) of `pid` in KiB, or -1.
int64_t PeakResidentKiB(pid_t pid) {
  auto status = ReadFileToString("/proc/" + std::to_string(pid) + "/status");
  if (!status.ok()) return -1;
  const size_t at = status->find("VmHWM:");
  return at == std::string::npos ? -1 : std::atoll(status->c_str() + at + 6);
}

// Regression: one 256 MiB request without a token took the node daemon from
// 18 to 656 MiB before it was refused (gRPC reads a unary request whole
// before the token check runs).
TEST_F(CliTest, AHugeRequestWithoutTheTokenDoesNotGrowTheNodeDaemon) {
  ASSERT_EQ(RunSunray("start --head --port 0 --object-store-memory 10000000").exit_code, 0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  auto node = ReadFileToString(*session + "/node_address");
  const pid_t node_pid = ReadPid(*session + "/pids/node.pid");
  ASSERT_TRUE(node.ok());
  const int64_t before = PeakResidentKiB(node_pid);
  ASSERT_GT(before, 0);
  {
    grpc::GenericStub stub(rpc::MakeChannel(*node));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Slice huge(std::string(256 << 20, 'x'));
    grpc::ByteBuffer request(&huge, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, "/sunray.proto.ObjectStoreService/CreateObject", grpc::StubOptions(),
                   &request, &response,
                   [&](grpc::Status status) { done.set_value(std::move(status)); });
    EXPECT_FALSE(done.get_future().get().ok());
  }
  const int64_t after = PeakResidentKiB(node_pid);
  // (A sanitizer's shadow memory doubles what the daemon touches.)
  EXPECT_LT(after - before, (100 << 10) * (kUnderSanitizer ? 2 : 1))
      << "the node daemon grew from " << before << " KiB to " << after << " KiB";
  EXPECT_TRUE(ProcessAlive(node_pid));
}

// Regression: a lease request whose caller gave up stayed counted ("2
// pending, 2 infeasible" long after), and would have been granted to nobody.
TEST_F(CliTest, ALeaseRequestWhoseCallerGaveUpStopsWaiting) {
  Cluster cluster;
  StartCluster(1, &cluster);
  const std::string &node = cluster.node, &token = cluster.token;
  auto infeasible =
      RequestLease(node, token, "GPU", 1, JobIdFromNumber(1).Binary(), false, milliseconds(300));
  auto waiting =
      RequestLease(node, token, "CPU", 2, JobIdFromNumber(1).Binary(), false, milliseconds(300));
  EXPECT_EQ(infeasible.get().first.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_EQ(waiting.get().first.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  proto::GetNodeStatsReply stats;
  EXPECT_TRUE(Eventually([&] {
    stats = proto::GetNodeStatsReply();
    grpc::Status status = cluster.node_stub->GetNodeStats(cluster.Context().get(), {}, &stats);
    return status.ok() && stats.pending_leases() == 0 && stats.infeasible_leases() == 0;
  })) << stats.DebugString();
  // The node's CPU is free for the next caller.
  auto next = RequestLease(node, token, "CPU", 1).get();
  EXPECT_TRUE(next.first.ok()) << next.first.error_message();
}

// A worker that does not say where it takes task streams would be leased
// out and fail every task sent to it: the node refuses it at registration.
TEST_F(CliTest, AWorkerRegistrationWithoutATaskAddressIsRefusedNamingIt) {
  Cluster cluster;
  StartCluster(1, &cluster);
  proto::RegisterWorkerRequest request;
  request.set_startup_token(12345);
  request.set_pid(getpid());
  request.set_address("127.0.0.1:1");
  proto::RegisterWorkerReply reply;
  const grpc::Status status =
      cluster.node_stub->RegisterWorker(cluster.Context().get(), request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("task address"), std::string::npos)
      << status.error_message();
}

// Ids travel as their bytes: an id in another form (here the hex of job 1,
// as the wire carried it before) is refused naming the field, and nothing
// waits on it.
TEST_F(CliTest, AnIdOfTheWrongSizeIsRefusedNamingTheField) {
  Cluster cluster;
  StartCluster(1, &cluster);
  auto lease = RequestLease(cluster.node, cluster.token, "CPU", 1, "01000000").get();
  EXPECT_EQ(lease.first.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(lease.first.error_message().find("RequestWorkerLease: job_id must be 4 bytes, got 8"),
            std::string::npos)
      << lease.first.error_message();

  proto::RegisterDriverRequest driver;
  driver.set_pid(getpid());
  proto::RegisterDriverReply registered;
  grpc::Status status =
      cluster.node_stub->RegisterDriver(cluster.Context().get(), driver, &registered);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("RegisterDriver: job_id must be 4 bytes, got 0"),
            std::string::npos)
      << status.error_message();

  proto::MarkJobFinishedRequest finished;
  finished.set_job_id("01000000");
  proto::MarkJobFinishedReply finished_reply;
  status =
      cluster.control_stub->MarkJobFinished(cluster.Context().get(), finished, &finished_reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("MarkJobFinished: job_id must be 4 bytes"),
            std::string::npos)
      << status.error_message();

  proto::GetNodeStatsReply stats;
  ASSERT_TRUE(cluster.node_stub->GetNodeStats(cluster.Context().get(), {}, &stats).ok());
  EXPECT_EQ(stats.node_id().size(), NodeID::kSize);
  EXPECT_EQ(stats.pending_leases(), 0);
}

// Regression: `sunray start --head --include-dashboard false` (as Ray users
// pass it, also through RayConfig::head_args) failed, and so did ray::Init.
TEST_F(CliTest, RayStartOptionsWithoutAMeaningHereAreIgnoredWithOneWarning) {
  CommandResult started = RunSunray(
      "start --head --port 0 --num-cpus 1 --object-store-memory 10000000 --memory 2000000000 "
      "--include-dashboard false --disable-usage-stats --dashboard-port=8265");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_NE(started.output.find("ignoring Ray options that Sunray has no use for: "
                                "--include-dashboard, --dashboard-port, --disable-usage-stats"),
            std::string::npos)
      << started.output;
  CommandResult status = RunSunray("status");
  EXPECT_NE(status.output.find("memory 1.9/1.9 GiB"), std::string::npos) << status.output;
}

// Runs `script` (sh) in a private mount namespace, with $DIR a 1 MiB tmpfs
// that has two pages free; returns nullopt where no such namespace can be made.
std::optional<CommandResult> RunOnAlmostFullDisk(const std::string &script) {
  char pattern[] = "/tmp/sunray-full-disk.XXXXXX";
  if (mkdtemp(pattern) == nullptr) return std::nullopt;
  const std::string dir = pattern;
  const std::string command =
      "unshare --mount sh -c '"
      "mount --make-rprivate / 2>/dev/null; "
      "mount -t tmpfs -o size=1m tmpfs " +
      dir +
      " || exit 77; "
      "DIR=" +
      dir +
      "; mkdir $DIR/root; "
      "dd if=/dev/zero of=$DIR/pad bs=4096 count=2 2>/dev/null; "
      "dd if=/dev/zero of=$DIR/fill bs=4096 2>/dev/null; rm $DIR/pad; " +
      script + "' 2>&1";
  CommandResult result;
  FILE *pipe = popen(command.c_str(), "r");
  if (pipe != nullptr) {
    char buffer[4096];
    size_t read = 0;
    while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) result.output.append(buffer, read);
    const int status = pclose(pipe);
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::error_code ignored;
  fs::remove_all(dir, ignored);  // the tmpfs went with the namespace
  const bool no_namespace =
      result.exit_code == 77 || (result.exit_code == 1 && result.output.find("unshare") == 0);
  if (pipe == nullptr || no_namespace) {
    return std::nullopt;
  }
  return result;
}

// Regression: with a few pages free, `sunray start` waited 15 s and said
// "the control daemon did not start:" with nothing after, left an empty
// session dir, and an embedded ray::Init said "The local cluster did not
// start: " with nothing after either.
TEST_F(CliTest, AFullDiskFailsStartAtOnceNamingTheCauseAndLeavesNothing) {
  const std::string cli = SUNRAY_CLI_PATH;
  const auto started_at = std::chrono::steady_clock::now();
  auto result =
      RunOnAlmostFullDisk("export SUNRAY_TEMP_DIR=$DIR/root; " + cli +
                          " start --head --port 0 --object-store-memory 10000000; echo exit=$?; "
                          "echo left: $(ls -A $DIR/root); " +
                          cli + " stop >/dev/null");
  if (!result) GTEST_SKIP() << "cannot make a private mount namespace with a tmpfs here";
  EXPECT_LT(std::chrono::steady_clock::now() - started_at, std::chrono::seconds(10));
  EXPECT_NE(result->output.find("exit=1"), std::string::npos) << result->output;
  EXPECT_NE(result->output.find("No space left on device"), std::string::npos) << result->output;
  EXPECT_NE(result->output.find("/root/session_"), std::string::npos) << result->output;
  EXPECT_NE(result->output.find("left:\n"), std::string::npos) << result->output;

  auto embedded = RunOnAlmostFullDisk("export SUNRAY_TEMP_DIR=$DIR/root; " +
                                      std::string(SUNRAY_TEST_DRIVER_PATH) +
                                      " hold-put; echo left: $(ls -A $DIR/root)");
  ASSERT_TRUE(embedded.has_value());
  EXPECT_NE(embedded->output.find("error The local cluster did not start: `sunray start` "
                                  "exited with status 1"),
            std::string::npos)
      << embedded->output;
  EXPECT_NE(embedded->output.find("No space left on device"), std::string::npos)
      << embedded->output;
  EXPECT_NE(embedded->output.find("left:\n"), std::string::npos) << embedded->output;
}

// Regression: after `sunray stop`, a driver given the old address said "No
// token for the cluster at ..."; the cause is that nothing listens there.
TEST_F(CliTest, ADriverPointedWhereNothingListensSaysSo) {
  ASSERT_EQ(RunSunray("start --head --port 0 --object-store-memory 10000000").exit_code, 0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  auto address = ReadFileToString(*session + "/control_address");
  ASSERT_TRUE(address.ok());
  ASSERT_EQ(RunSunray("stop").exit_code, 0);
  unsetenv("SUNRAY_TOKEN");
  const std::string command = std::string(SUNRAY_TEST_DRIVER_PATH) + " --ray_address=" + *address +
                              " hold-put 2>&1 </dev/null";
  std::string output;
  FILE *pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char buffer[4096];
  size_t read = 0;
  while ((read = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, read);
  EXPECT_NE(pclose(pipe), 0);
  EXPECT_NE(output.find("error Nothing listens at " + *address), std::string::npos) << output;
}

}  // namespace
}  // namespace cli_test
}  // namespace sunray
