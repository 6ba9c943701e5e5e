// The sunray command against real daemon processes.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <optional>
#include <thread>

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>

#include <future>

#include "control.grpc.pb.h"
#include "node.grpc.pb.h"
#include "objstore.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/process.h"
#include "src/common/session.h"
#include "src/objstore/store_client.h"
#include "src/rpc/rpc.h"
#include "tests/cluster/cli_test_support.h"

namespace sunray {
namespace cli_test {
namespace {

TEST_F(CliTest, StartStatusStopLeavesNothingBehind) {
  CommandResult started = RunSunray(
      "start --head --port 0 --num-cpus 3 --resources '{\"accel\": 0.5}' "
      "--object-store-memory 50000000");
  ASSERT_EQ(started.exit_code, 0) << started.output;
  EXPECT_NE(started.output.find("Control service: 127.0.0.1:"), std::string::npos)
      << started.output;
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  const pid_t control = ReadPid(*session + "/pids/control.pid");
  const pid_t node = ReadPid(*session + "/pids/node.pid");
  ASSERT_TRUE(ProcessAlive(control));
  ASSERT_TRUE(ProcessAlive(node));
  EXPECT_EQ(fs::status(*session + "/token").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);

  CommandResult status = RunSunray("status");
  ASSERT_EQ(status.exit_code, 0) << status.output;
  EXPECT_NE(status.output.find("Nodes: 1 alive"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("CPU 3/3"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("accel 0.5/0.5"), std::string::npos) << status.output;

  CommandResult stopped = RunSunray("stop");
  ASSERT_EQ(stopped.exit_code, 0) << stopped.output;
  EXPECT_NE(stopped.output.find("Stopped 2 daemon(s)"), std::string::npos) << stopped.output;
  EXPECT_FALSE(ProcessAlive(control));
  EXPECT_FALSE(ProcessAlive(node));
  EXPECT_TRUE(fs::is_empty(root_)) << "left behind in " << root_;
}

// Calls every method of `service_name` at `address` with an empty request
// and `token` (none if empty); returns the methods that were NOT rejected as
// unauthenticated.
std::vector<std::string> MethodsNotRejected(const std::string &address,
                                            const google::protobuf::ServiceDescriptor *service,
                                            const std::string &token) {
  if (service == nullptr) return {"<no service>"};
  const std::string service_name = service->full_name();
  grpc::GenericStub stub(rpc::MakeChannel(address));
  std::vector<std::string> accepted;
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method = "/" + service_name + "/" + service->method(i)->name();
    grpc::ClientContext context;
    if (!token.empty()) context.AddMetadata(rpc::kTokenHeader, token);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::Slice empty("");
    grpc::ByteBuffer request(&empty, 1);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status status) { done.set_value(std::move(status)); });
    if (done.get_future().get().error_code() != grpc::StatusCode::UNAUTHENTICATED) {
      accepted.push_back(method);
    }
  }
  return accepted;
}

TEST_F(CliTest, EveryDaemonPortRejectsClientsWithoutTheToken) {
  ASSERT_EQ(RunSunray("start --head --port 0 --object-store-memory 10000000").exit_code, 0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  auto control = ReadFileToString(*session + "/control_address");
  auto node = ReadFileToString(*session + "/node_address");
  ASSERT_TRUE(control.ok() && node.ok());
  for (const std::string token : {"", "wrong-token"}) {
    // Reached through generated messages, so the descriptors are linked in.
    EXPECT_EQ(
        MethodsNotRejected(
            *control,
            proto::KvPutRequest::descriptor()->file()->FindServiceByName("ControlService"), token),
        std::vector<std::string>());
    EXPECT_EQ(
        MethodsNotRejected(
            *node,
            proto::GetNodeStatsRequest::descriptor()->file()->FindServiceByName("NodeService"),
            token),
        std::vector<std::string>());
    EXPECT_EQ(MethodsNotRejected(*node,
                                 proto::GetObjectRequest::descriptor()->file()->FindServiceByName(
                                     "ObjectStoreService"),
                                 token),
              std::vector<std::string>());
  }
}

TEST_F(CliTest, BadResourcesAreRejectedBeforeAnythingStarts) {
  CommandResult result = RunSunray("start --head --port 0 --resources '{\"x\": -1}'");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("'x' must be a non-negative number"), std::string::npos)
      << result.output;
  EXPECT_TRUE(ListSessions().empty());
}

TEST_F(CliTest, DaemonRejectsClientsWithoutTheClusterToken) {
  ASSERT_EQ(RunSunray("start --head --port 0 --object-store-memory 10000000").exit_code, 0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  auto address = ReadFileToString(*session + "/control_address");
  auto token = ReadFileToString(*session + "/token");
  ASSERT_TRUE(address.ok() && token.ok());
  auto stub = proto::ControlService::NewStub(rpc::MakeChannel(*address));
  proto::GetAllNodesReply reply;
  grpc::ClientContext anonymous;
  EXPECT_EQ(stub->GetAllNodes(&anonymous, {}, &reply).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(stub->GetAllNodes(rpc::MakeClientContext("guess", milliseconds(5000)).get(), {}, &reply)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(
      stub->GetAllNodes(rpc::MakeClientContext(*token, milliseconds(5000)).get(), {}, &reply).ok());
}

TEST_F(CliTest, A256MiBObjectGoesThroughTheNodesStoreAndStopLeavesNothing) {
  ASSERT_EQ(RunSunray("start --head --port 0 --object-store-memory 400000000").exit_code, 0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  auto socket = ReadFileToString(*session + "/store_socket");
  auto node = ReadFileToString(*session + "/node_address");
  auto token = ReadFileToString(*session + "/token");
  ASSERT_TRUE(socket.ok() && node.ok() && token.ok());
  const pid_t node_pid = ReadPid(*session + "/pids/node.pid");
  {
    auto client = StoreClient::Connect({*socket, *node, *token});
    ASSERT_TRUE(client.ok()) << client.status();
    const size_t size = 256u << 20;
    const ObjectID id = ObjectID::ForTask(TaskID::FromRandom(), 1);
    auto destination = (*client)->Create(id, size, 0);
    ASSERT_TRUE(destination.ok()) << destination.status();
    for (size_t i = 0; i < size; i += 4096) (*destination)[i] = static_cast<char>(i >> 12);
    ASSERT_TRUE((*client)->Seal(id).ok());
    auto view = (*client)->Get(id);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_EQ((*view)->size(), size);
    for (size_t i = 0; i < size; i += 4096) {
      ASSERT_EQ((*view)->data()[i], static_cast<char>(i >> 12)) << i;
    }
    // The memfd segment is visible in the daemon's mappings while it runs.
    auto maps = ReadFileToString("/proc/" + std::to_string(node_pid) + "/maps");
    ASSERT_TRUE(maps.ok());
    EXPECT_NE(maps->find("memfd:sunray-objects-"), std::string::npos);
    auto too_big = (*client)->Create(ObjectID::ForTask(TaskID::FromRandom(), 1), size, 0);
    EXPECT_TRUE(absl::IsResourceExhausted(too_big.status())) << too_big.status();
  }
  ASSERT_EQ(RunSunray("stop").exit_code, 0);
  EXPECT_FALSE(ProcessAlive(node_pid));
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(CliTest, LeasesStartWorkersAndStatusShowsUsageAndDemand) {
  ASSERT_EQ(
      RunSunray("start --head --port 0 --num-cpus 1 --object-store-memory 10000000").exit_code, 0);
  auto session = LatestSession();
  ASSERT_TRUE(session.ok());
  auto node = ReadFileToString(*session + "/node_address");
  auto token = ReadFileToString(*session + "/token");
  ASSERT_TRUE(node.ok() && token.ok());

  auto first = RequestLease(*node, *token, "CPU", 1).get();
  ASSERT_TRUE(first.first.ok()) << first.first.error_message();
  const pid_t worker = first.second.worker_pid();
  EXPECT_TRUE(ProcessAlive(worker));
  // The worker prints once its registration call returns, just after the
  // node granted the lease.
  const std::string log_path =
      *session + "/logs/worker-" + std::to_string(first.second.lease_id()) + ".out";
  absl::StatusOr<std::string> log;
  Eventually([&] {
    log = ReadFileToString(log_path);
    return log.ok() && log->find("registered") != std::string::npos;
  });
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("registered"), std::string::npos) << *log;

  auto waiting = RequestLease(*node, *token, "CPU", 1);     // no CPU left
  auto infeasible = RequestLease(*node, *token, "GPU", 1);  // the node has none
  CommandResult status;
  Eventually([&] {
    status = RunSunray("status");
    return status.output.find("2 pending lease request(s), 1 infeasible") != std::string::npos;
  });
  EXPECT_NE(status.output.find("CPU 0/1"), std::string::npos) << status.output;
  EXPECT_NE(status.output.find("2 pending lease request(s), 1 infeasible"), std::string::npos)
      << status.output;

  // Returning the lease hands the same worker to the waiting request.
  auto stub = proto::NodeService::NewStub(rpc::MakeChannel(*node));
  proto::ReturnWorkerRequest give_back;
  give_back.set_lease_id(first.second.lease_id());
  proto::ReturnWorkerReply returned;
  ASSERT_TRUE(stub->ReturnWorker(rpc::MakeClientContext(*token, milliseconds(5000)).get(),
                                 give_back, &returned)
                  .ok());
  auto second = waiting.get();
  ASSERT_TRUE(second.first.ok()) << second.first.error_message();
  EXPECT_EQ(second.second.worker_pid(), worker);

  // Stopping fails the infeasible request and kills the worker.
  ASSERT_EQ(RunSunray("stop").exit_code, 0);
  auto never = infeasible.get();
  EXPECT_FALSE(never.first.ok());
  EXPECT_FALSE(ProcessAlive(worker));
  EXPECT_TRUE(fs::is_empty(root_));
}

// The daemons log through one logger per component, at the level of
// `--log-level`, else of SUNRAY_LOG_LEVEL, into the session's logs.
TEST_F(CliTest, TheLogLevelComesFromTheFlagElseTheEnvironment) {
  auto start_and_read_node_log = [&](const std::string &flags) {
    CommandResult started =
        RunSunray("start --head --port 0 --object-store-memory 10000000 " + flags);
    EXPECT_EQ(started.exit_code, 0) << started.output;
    auto session = LatestSession();
    std::string log =
        session.ok() ? ReadFileToString(*session + "/logs/node.out").value_or("") : "";
    EXPECT_EQ(RunSunray("stop").exit_code, 0);
    return log;
  };
  const std::string by_default = start_and_read_node_log("");
  EXPECT_NE(by_default.find("] [node] [info] [pid "), std::string::npos) << by_default;
  EXPECT_NE(by_default.find(" serving on 127.0.0.1:"), std::string::npos) << by_default;

  EXPECT_EQ(start_and_read_node_log("--log-level warning").find("serving on"), std::string::npos);

  setenv("SUNRAY_LOG_LEVEL", "error", 1);
  const std::string by_environment = start_and_read_node_log("");
  const std::string flag_over_environment = start_and_read_node_log("--log-level info");
  unsetenv("SUNRAY_LOG_LEVEL");
  EXPECT_EQ(by_environment.find("serving on"), std::string::npos) << by_environment;
  EXPECT_NE(flag_over_environment.find("serving on"), std::string::npos) << flag_over_environment;

  CommandResult bad = RunSunray("start --head --port 0 --log-level loud");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("'loud' is not a log level: trace, debug, info"), std::string::npos)
      << bad.output;
  EXPECT_TRUE(ListSessions().empty());
}

TEST_F(CliTest, StatusWithoutAClusterSaysSo) {
  CommandResult status = RunSunray("status");
  EXPECT_EQ(status.exit_code, 1);
  EXPECT_NE(status.output.find("no Sunray session"), std::string::npos) << status.output;
}

TEST_F(CliTest, UnknownOptionIsRejected) {
  CommandResult result = RunSunray("start --head --frobnicate");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("frobnicate"), std::string::npos) << result.output;
}

TEST_F(CliTest, BlockingHeadStopsItsDaemonsOnSignal) {
  auto cli = SpawnProcess({SUNRAY_CLI_PATH, "start", "--head", "--port", "0", "--block",
                           "--object-store-memory", "10000000"},
                          {root_ + "/cli.out", false, false, {}});
  ASSERT_TRUE(cli.ok());
  std::string session;
  Eventually(
      [&] {
        auto latest = LatestSession();
        if (latest.ok() && fs::exists(*latest + "/node_address")) session = *latest;
        return !session.empty();
      },
      std::chrono::seconds(15));
  ASSERT_FALSE(session.empty());
  const pid_t control = ReadPid(session + "/pids/control.pid");
  const pid_t node = ReadPid(session + "/pids/node.pid");
  ASSERT_TRUE(ProcessAlive(control));
  ASSERT_TRUE(ProcessAlive(node));
  kill(*cli, SIGINT);
  int status = 0;
  ASSERT_EQ(waitpid(*cli, &status, 0), *cli);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(ProcessAlive(control));
  EXPECT_FALSE(ProcessAlive(node));
  EXPECT_FALSE(fs::exists(session));
}

TEST_F(CliTest, KillWorkerStopsALeasedWorkerAndADeadWorkerFreesItsLease) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(StartCluster(1, &cluster));
  auto first = RequestLease(cluster.node, cluster.token, "CPU", 1).get();
  ASSERT_TRUE(first.first.ok()) << first.first.error_message();
  EXPECT_EQ(cluster.Available("CPU"), 0);

  ASSERT_TRUE(cluster.KillWorker(first.second.lease_id(), /*force=*/false).ok());
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(first.second.worker_pid()); }));
  EXPECT_TRUE(Eventually([&] { return cluster.Available("CPU") == 10000; }));
  EXPECT_EQ(cluster.KillWorker(first.second.lease_id(), true).error_code(),
            grpc::StatusCode::NOT_FOUND);

  // A worker that dies on its own ends its lease the same way.
  auto second = RequestLease(cluster.node, cluster.token, "CPU", 1).get();
  ASSERT_TRUE(second.first.ok()) << second.first.error_message();
  EXPECT_NE(second.second.worker_pid(), first.second.worker_pid());
  kill(second.second.worker_pid(), SIGKILL);
  EXPECT_TRUE(Eventually([&] { return cluster.Available("CPU") == 10000; }));

  ASSERT_EQ(RunSunray("stop").exit_code, 0);
  EXPECT_TRUE(fs::is_empty(root_));
}

// A crash is diagnosable from the daemon's log alone: it names the signal and
// the stack (the two crashes found this way before needed cores).
TEST_F(CliTest, ACrashingDaemonWritesItsStackToItsLog) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(StartCluster(1, &cluster));
  const pid_t node = ReadPid(cluster.session + "/pids/node.pid");
  ASSERT_TRUE(ProcessAlive(node));
  ASSERT_EQ(kill(node, SIGSEGV), 0);
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(node); }));
  absl::StatusOr<std::string> log;
  EXPECT_TRUE(Eventually([&] {
    log = ReadFileToString(cluster.session + "/logs/node.out");
    return log.ok() && log->find("SIGSEGV") != std::string::npos;
  })) << (log.ok() ? *log : std::string(log.status().message()));
  RunSunray("stop");  // the control daemon, and what the node left
  EXPECT_TRUE(fs::is_empty(root_));
}

// Long polls the actor until `done(info)` holds; returns the last info seen.
template <typename Done>
proto::ActorInfo WaitForActor(const Cluster &cluster, const std::string &actor_id, Done &&done) {
  proto::ActorInfo info;
  int64_t version = -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    proto::GetActorInfoRequest request;
    request.set_actor_id(actor_id);
    request.set_after_version(version);
    proto::GetActorInfoReply reply;
    grpc::Status status =
        cluster.control_stub->GetActorInfo(cluster.Context().get(), request, &reply);
    if (!status.ok()) {
      ADD_FAILURE() << status.error_message();
      break;
    }
    info = reply.actor();
    if (done(info)) return info;
    version = info.version();
  }
  ADD_FAILURE() << "gave up; last state " << proto::ActorInfo::State_Name(info.state());
  return info;
}

std::string CreateFakeActor(const Cluster &cluster, int max_restarts) {
  const std::string id = ActorID::FromRandom().Binary();
  proto::CreateActorRequest request;
  request.mutable_creation_task()->set_type(proto::TaskSpec::ACTOR_CREATION);
  request.mutable_creation_task()->set_actor_id(id);
  request.mutable_creation_task()->set_job_id(JobIdFromNumber(1).Binary());
  request.mutable_creation_task()->set_class_name("Fake");
  (*request.mutable_resources()->mutable_amounts())["CPU"] = 10000;
  request.add_argv(SUNRAY_FAKE_WORKER_PATH);
  request.add_env("SUNRAY_NODE_ADDRESS=" + cluster.node);
  request.add_env("SUNRAY_TOKEN=" + cluster.token);
  request.set_max_restarts(max_restarts);
  proto::CreateActorReply reply;
  grpc::Status status = cluster.control_stub->CreateActor(cluster.Context().get(), request, &reply);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return id;
}

TEST_F(CliTest, AnActorRestartsWhenItsWorkerProcessDiesAndKillActorEndsIt) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(StartCluster(2, &cluster));
  const std::string id = CreateFakeActor(cluster, /*max_restarts=*/1);
  auto alive = [](const proto::ActorInfo &info) { return info.state() == proto::ActorInfo::ALIVE; };
  const proto::ActorInfo first = WaitForActor(cluster, id, alive);
  ASSERT_TRUE(ProcessAlive(first.pid()));

  // The node reaps the worker and reports it; control restarts the actor.
  kill(first.pid(), SIGKILL);
  const proto::ActorInfo second = WaitForActor(cluster, id, [](const proto::ActorInfo &info) {
    return info.state() == proto::ActorInfo::ALIVE && info.num_restarts() == 1;
  });
  ASSERT_NE(second.pid(), first.pid());
  kill(second.pid(), SIGKILL);
  const proto::ActorInfo dead = WaitForActor(cluster, id, [](const proto::ActorInfo &info) {
    return info.state() == proto::ActorInfo::DEAD;
  });
  EXPECT_NE(dead.death_cause().message().find("killed by signal 9"), std::string::npos)
      << dead.death_cause().message();
  EXPECT_TRUE(Eventually([&] { return cluster.Available("CPU") == 20000; }));

  // KillActor: the worker is asked to exit, then killed; no restart.
  const std::string killed = CreateFakeActor(cluster, /*max_restarts=*/-1);
  const proto::ActorInfo running = WaitForActor(cluster, killed, alive);
  proto::KillActorRequest kill_request;
  kill_request.set_actor_id(killed);
  kill_request.set_no_restart(true);
  proto::KillActorReply kill_reply;
  ASSERT_TRUE(
      cluster.control_stub->KillActor(cluster.Context().get(), kill_request, &kill_reply).ok());
  const proto::ActorInfo ended = WaitForActor(cluster, killed, [](const proto::ActorInfo &info) {
    return info.state() == proto::ActorInfo::DEAD;
  });
  EXPECT_NE(ended.death_cause().message().find("killed by ray::KillActor"), std::string::npos)
      << ended.death_cause().message();
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(running.pid()); }));

  ASSERT_EQ(RunSunray("stop").exit_code, 0);
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(CliTest, WhenADriverExitsItsJobsWorkersStopExceptDetachedOnes) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(StartCluster(4, &cluster));
  proto::AddJobReply job;
  ASSERT_TRUE(cluster.control_stub->AddJob(cluster.Context().get(), {}, &job).ok());
  ASSERT_EQ(job.job().job_id(), JobIdFromNumber(1).Binary());
  auto driver = SpawnProcess({"/bin/sleep", "1000"}, {});
  ASSERT_TRUE(driver.ok());
  proto::RegisterDriverRequest register_driver;
  register_driver.set_job_id(JobIdFromNumber(1).Binary());
  register_driver.set_pid(*driver);
  proto::RegisterDriverReply registered;
  ASSERT_TRUE(
      cluster.node_stub->RegisterDriver(cluster.Context().get(), register_driver, &registered)
          .ok());

  auto owned =
      RequestLease(cluster.node, cluster.token, "CPU", 1, JobIdFromNumber(1).Binary()).get();
  auto detached =
      RequestLease(cluster.node, cluster.token, "CPU", 1, JobIdFromNumber(1).Binary(), true).get();
  auto other =
      RequestLease(cluster.node, cluster.token, "CPU", 1, JobIdFromNumber(2).Binary()).get();
  for (auto *lease : {&owned, &detached, &other}) {
    ASSERT_TRUE(lease->first.ok()) << lease->first.error_message();
  }
  auto waiting = RequestLease(cluster.node, cluster.token, "GPU", 1, JobIdFromNumber(1).Binary());

  kill(*driver, SIGKILL);
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(owned.second.worker_pid()); }));
  auto dropped = waiting.get();
  EXPECT_EQ(dropped.first.error_code(), grpc::StatusCode::CANCELLED)
      << dropped.first.error_message();
  EXPECT_TRUE(Eventually([&] {
    proto::GetAllJobsReply jobs;
    return cluster.control_stub->GetAllJobs(cluster.Context().get(), {}, &jobs).ok() &&
           jobs.jobs_size() == 1 && jobs.jobs(0).finished();
  }));
  EXPECT_TRUE(ProcessAlive(detached.second.worker_pid()));
  EXPECT_TRUE(ProcessAlive(other.second.worker_pid()));

  // UnregisterDriver does the same at once (and may repeat).
  proto::UnregisterDriverRequest unregister;
  unregister.set_job_id(JobIdFromNumber(2).Binary());
  proto::UnregisterDriverReply unregistered;
  for (int i = 0; i < 2; ++i) {
    ASSERT_TRUE(
        cluster.node_stub->UnregisterDriver(cluster.Context().get(), unregister, &unregistered)
            .ok());
  }
  EXPECT_TRUE(Eventually([&] { return !ProcessAlive(other.second.worker_pid()); }));
  EXPECT_TRUE(ProcessAlive(detached.second.worker_pid()));

  waitpid(*driver, nullptr, 0);
  ASSERT_EQ(RunSunray("stop").exit_code, 0);
  EXPECT_FALSE(ProcessAlive(detached.second.worker_pid()));
  EXPECT_TRUE(fs::is_empty(root_));
}

}  // namespace
}  // namespace cli_test
}  // namespace sunray
