// The actor directory through the control service's RPCs, against a fake
// node daemon (grants leases, kills workers and reports their deaths as a
// real node's reaper does) and a fake worker (answers creation tasks).
#include <gtest/gtest.h>

#include <deque>
#include <future>
#include <set>

#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/control/control_service.h"
#include "src/rpc/async_caller.h"
#include "src/rpc/rpc.h"
#include "worker.grpc.pb.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

constexpr char kToken[] = "test-cluster-token";
constexpr milliseconds kTimeout{10000};
constexpr int kActorDied = 1;  // sunray::ErrorType::kActorDied

template <typename Condition>
bool Eventually(Condition &&condition) {
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(2));
  }
  return true;
}

// A node daemon's NodeService as the actor directory uses it.
class FakeNode final : public proto::NodeService::CallbackService {
 public:
  struct Kill {
    int64_t token;
    bool force;
  };

  FakeNode() : calls_(kToken) {}

  // Where granted workers serve, and where deaths are reported.
  void Configure(std::string worker_address, std::string node_id, std::string control_address) {
    absl::MutexLock lock(&mu_);
    worker_address_ = std::move(worker_address);
    node_id_ = std::move(node_id);
    control_address_ = std::move(control_address);
  }
  // Held lease requests wait until Release (or Stop).
  void HoldLeases(bool hold) {
    absl::MutexLock lock(&mu_);
    hold_ = hold;
  }
  void FailLeases(bool fail) {
    absl::MutexLock lock(&mu_);
    fail_ = fail;
  }
  void ReleaseHeldLeases() {
    std::deque<Held> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto &lease : held) Grant(lease.reactor, lease.reply);
  }

  std::vector<proto::RequestWorkerLeaseRequest> Leases() {
    absl::MutexLock lock(&mu_);
    return leases_;
  }
  std::vector<Kill> Kills() {
    absl::MutexLock lock(&mu_);
    return kills_;
  }
  bool Killed(int64_t token) {
    for (const Kill &kill : Kills()) {
      if (kill.token == token) return true;
    }
    return false;
  }
  int NumHeld() {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(held_.size());
  }

  // Reports the death of the worker with `token` to control, as the
  // node's reaper does.
  void ReportDeath(int64_t token, const std::string &reason) {
    std::string control, node;
    {
      absl::MutexLock lock(&mu_);
      control = control_address_;
      node = node_id_;
    }
    proto::ReportWorkerDeathRequest request;
    request.set_node_id(node);
    request.set_startup_token(token);
    request.set_pid(static_cast<int32_t>(10000 + token));
    request.set_reason(reason);
    calls_.Call<proto::ControlService>(
        control, &proto::ControlService::Stub::async::ReportWorkerDeath, request, kTimeout,
        [](const grpc::Status &, const proto::ReportWorkerDeathReply &) {});
  }

  void Stop() {
    {
      absl::MutexLock lock(&mu_);
      fail_ = true;
    }
    std::deque<Held> held;
    {
      absl::MutexLock lock(&mu_);
      held.swap(held_);
    }
    for (auto &lease : held) {
      lease.reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "stopping"));
    }
    calls_.Stop();
  }

  grpc::ServerUnaryReactor *RequestWorkerLease(grpc::CallbackServerContext *context,
                                               const proto::RequestWorkerLeaseRequest *request,
                                               proto::RequestWorkerLeaseReply *reply) override {
    grpc::ServerUnaryReactor *reactor = context->DefaultReactor();
    if (!rpc::Authenticate(*context, reactor, kToken)) return reactor;
    {
      absl::MutexLock lock(&mu_);
      leases_.push_back(*request);
      if (fail_) {
        reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the worker exited"));
        return reactor;
      }
      if (hold_) {
        held_.push_back({reactor, reply});
        return reactor;
      }
    }
    Grant(reactor, reply);
    return reactor;
  }

  grpc::ServerUnaryReactor *KillWorker(grpc::CallbackServerContext *context,
                                       const proto::KillWorkerRequest *request,
                                       proto::KillWorkerReply *) override {
    return rpc::HandleUnary(context, kToken, [&] {
      {
        absl::MutexLock lock(&mu_);
        kills_.push_back({request->startup_token(), request->force()});
      }
      ReportDeath(request->startup_token(), "killed by signal 9");
      return absl::OkStatus();
    });
  }

 private:
  struct Held {
    grpc::ServerUnaryReactor *reactor;
    proto::RequestWorkerLeaseReply *reply;
  };

  void Grant(grpc::ServerUnaryReactor *reactor, proto::RequestWorkerLeaseReply *reply) {
    {
      absl::MutexLock lock(&mu_);
      const int64_t token = next_token_++;
      reply->set_lease_id(token);
      reply->set_worker_address(worker_address_);
      reply->set_worker_pid(static_cast<int32_t>(10000 + token));
    }
    reactor->Finish(grpc::Status::OK);
  }

  rpc::AsyncCaller calls_;
  absl::Mutex mu_;
  std::string worker_address_ ABSL_GUARDED_BY(mu_);
  std::string node_id_ ABSL_GUARDED_BY(mu_);
  std::string control_address_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool fail_ ABSL_GUARDED_BY(mu_) = false;
  int64_t next_token_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<Held> held_ ABSL_GUARDED_BY(mu_);
  std::vector<proto::RequestWorkerLeaseRequest> leases_ ABSL_GUARDED_BY(mu_);
  std::vector<Kill> kills_ ABSL_GUARDED_BY(mu_);
};

// Workers' WorkerService: runs creation tasks as told.
class FakeWorker final : public proto::WorkerService::CallbackService {
 public:
  enum class Creation { kSucceed, kThrow, kFailTheCall };

  void SetCreation(Creation creation) {
    absl::MutexLock lock(&mu_);
    creation_ = creation;
  }
  std::vector<proto::TaskSpec> Tasks() {
    absl::MutexLock lock(&mu_);
    return tasks_;
  }
  int NumExits() {
    absl::MutexLock lock(&mu_);
    return exits_;
  }

  grpc::ServerUnaryReactor *PushTask(grpc::CallbackServerContext *context,
                                     const proto::PushTaskRequest *request,
                                     proto::PushTaskReply *reply) override {
    return rpc::HandleUnary(context, kToken, [&]() -> absl::Status {
      absl::MutexLock lock(&mu_);
      tasks_.push_back(request->task());
      switch (creation_) {
        case Creation::kSucceed:
          break;
        case Creation::kThrow:
          reply->mutable_result()->set_is_error(true);
          reply->mutable_result()->mutable_error()->set_type(0);
          reply->mutable_result()->mutable_error()->set_message("Counter: std::runtime_error: no");
          break;
        case Creation::kFailTheCall:
          return absl::UnavailableError("the worker crashed");
      }
      return absl::OkStatus();
    });
  }

  grpc::ServerUnaryReactor *Exit(grpc::CallbackServerContext *context, const proto::ExitRequest *,
                                 proto::ExitReply *) override {
    return rpc::HandleUnary(context, kToken, [&] {
      absl::MutexLock lock(&mu_);
      ++exits_;
      return absl::OkStatus();
    });
  }

 private:
  absl::Mutex mu_;
  Creation creation_ ABSL_GUARDED_BY(mu_) = Creation::kSucceed;
  std::vector<proto::TaskSpec> tasks_ ABSL_GUARDED_BY(mu_);
  int exits_ ABSL_GUARDED_BY(mu_) = 0;
};

struct ActorOptions {
  std::string name;
  std::string ray_namespace;
  int max_restarts = 0;
  bool detached = false;
  uint32_t job = 1;
  double cpus = 1;
};

class ActorDirectoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto control_port = control_server_.Start("127.0.0.1:0", {&service_});
    ASSERT_TRUE(control_port.ok()) << control_port.status();
    control_address_ = "127.0.0.1:" + std::to_string(*control_port);
    auto node_port = node_server_.Start("127.0.0.1:0", {&node_, &worker_});
    ASSERT_TRUE(node_port.ok()) << node_port.status();
    node_address_port_ = *node_port;
    node_.Configure("127.0.0.1:" + std::to_string(*node_port), node_id_, control_address_);
    stub_ = proto::ControlService::NewStub(rpc::MakeChannel(control_address_));
  }
  void TearDown() override {
    service_.Stop();
    node_.Stop();
    control_server_.Stop();
    node_server_.Stop();
  }

  std::unique_ptr<grpc::ClientContext> Context(milliseconds timeout = kTimeout) {
    return rpc::MakeClientContext(kToken, timeout);
  }

  // Registers the fake node (under `node_id`, default the fake's own id).
  void RegisterNode(double cpus, std::string node_id = "") {
    proto::RegisterNodeRequest request;
    proto::NodeInfo *node = request.mutable_node();
    node->set_node_id(node_id.empty() ? node_id_ : node_id);
    node->mutable_address()->set_ip("127.0.0.1");
    node->mutable_address()->set_port(node_address_port_);
    (*node->mutable_total()->mutable_amounts())["CPU"] = static_cast<int64_t>(cpus * 10000);
    proto::RegisterNodeReply reply;
    ASSERT_TRUE(stub_->RegisterNode(Context().get(), request, &reply).ok());
  }

  grpc::Status Create(const std::string &actor_id, const ActorOptions &options) {
    proto::CreateActorRequest request;
    proto::TaskSpec *task = request.mutable_creation_task();
    task->set_type(proto::TaskSpec::ACTOR_CREATION);
    task->set_actor_id(actor_id);
    JobID job;
    std::memcpy(job.MutableData(), &options.job, sizeof(options.job));
    task->set_job_id(job.Binary());
    task->set_class_name("Counter");
    task->set_function_name("Counter::Create");
    (*request.mutable_resources()->mutable_amounts())["CPU"] =
        static_cast<int64_t>(options.cpus * 10000);
    request.add_argv("/bin/worker");
    request.add_env("A=1");
    request.set_name(options.name);
    request.set_ray_namespace(options.ray_namespace);
    request.set_detached(options.detached);
    request.set_max_restarts(options.max_restarts);
    proto::CreateActorReply reply;
    return stub_->CreateActor(Context().get(), request, &reply);
  }

  std::string CreateOk(const ActorOptions &options = {}) {
    const std::string id = ActorID::FromRandom().Binary();
    grpc::Status status = Create(id, options);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return id;
  }

  // Creates an actor with `max_restarts` and waits until it is ALIVE.
  std::string CreateAlive(int max_restarts) {
    ActorOptions options;
    options.max_restarts = max_restarts;
    const std::string id = CreateOk(options);
    WaitForState(id, proto::ActorInfo::ALIVE);
    return id;
  }

  // Long polls until `done(info)` holds; returns the last info seen.
  template <typename Done>
  proto::ActorInfo WaitFor(const std::string &actor_id, Done &&done) {
    proto::ActorInfo info;
    int64_t version = -1;
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      proto::GetActorInfoRequest request;
      request.set_actor_id(actor_id);
      request.set_after_version(version);
      proto::GetActorInfoReply reply;
      grpc::Status status = stub_->GetActorInfo(Context().get(), request, &reply);
      if (!status.ok()) {
        ADD_FAILURE() << "GetActorInfo: " << status.error_message();
        break;
      }
      info = reply.actor();
      EXPECT_GT(info.version(), version);
      if (done(info)) return info;
      version = info.version();
    }
    ADD_FAILURE() << "gave up waiting; last state " << proto::ActorInfo::State_Name(info.state());
    return info;
  }
  proto::ActorInfo WaitForState(const std::string &actor_id, proto::ActorInfo::State state) {
    return WaitFor(actor_id,
                   [state](const proto::ActorInfo &info) { return info.state() == state; });
  }

  // Kills; `after` gets the actor's state as the reply tells it.
  grpc::Status Kill(const std::string &actor_id, bool no_restart,
                    proto::ActorInfo *after = nullptr) {
    proto::KillActorRequest request;
    request.set_actor_id(actor_id);
    request.set_no_restart(no_restart);
    proto::KillActorReply reply;
    grpc::Status status = stub_->KillActor(Context().get(), request, &reply);
    if (after != nullptr) *after = reply.actor();
    return status;
  }

  std::future<std::pair<grpc::Status, proto::ActorInfo>> Poll(const std::string &actor_id,
                                                              int64_t after_version,
                                                              milliseconds timeout = kTimeout) {
    return std::async(std::launch::async, [this, actor_id, after_version, timeout] {
      proto::GetActorInfoRequest request;
      request.set_actor_id(actor_id);
      request.set_after_version(after_version);
      proto::GetActorInfoReply reply;
      grpc::Status status = stub_->GetActorInfo(Context(timeout).get(), request, &reply);
      return std::make_pair(status, reply.actor());
    });
  }

  const std::string node_id_ = NodeID::FromRandom().Hex();
  ControlService service_{{kToken, milliseconds(20)}};
  FakeNode node_;
  FakeWorker worker_;
  rpc::RpcServer control_server_;
  rpc::RpcServer node_server_;
  std::string control_address_;
  int node_address_port_ = 0;
  std::unique_ptr<proto::ControlService::Stub> stub_;
};

TEST_F(ActorDirectoryTest, ACreatedActorIsLeasedAWorkerAndBecomesAlive) {
  RegisterNode(4);
  ActorOptions options;
  options.detached = true;
  const std::string id = CreateOk(options);
  const proto::ActorInfo alive = WaitForState(id, proto::ActorInfo::ALIVE);
  EXPECT_EQ(alive.actor_id(), id);
  EXPECT_EQ(alive.job_id(), "01000000");
  EXPECT_EQ(alive.class_name(), "Counter");
  EXPECT_EQ(alive.node_id(), node_id_);
  EXPECT_EQ(alive.address(), "127.0.0.1:" + std::to_string(node_address_port_));
  EXPECT_EQ(alive.pid(), 10001);
  EXPECT_EQ(alive.num_restarts(), 0);
  EXPECT_GE(alive.version(), 2);

  auto leases = node_.Leases();
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].job_id(), "01000000");
  EXPECT_EQ(leases[0].resources().amounts().at("CPU"), 10000);
  EXPECT_EQ(leases[0].argv(0), "/bin/worker");
  EXPECT_EQ(leases[0].env(0), "A=1");
  EXPECT_TRUE(leases[0].detached());
  auto tasks = worker_.Tasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].actor_id(), id);
  EXPECT_EQ(tasks[0].restart_count(), 0);

  // after_version -1 answers at once with the current state.
  auto now = Poll(id, -1).get();
  ASSERT_TRUE(now.first.ok());
  EXPECT_EQ(now.second.version(), alive.version());
}

TEST_F(ActorDirectoryTest, AThrowingConstructorMakesTheActorDeadWithItsErrorAndFreesTheWorker) {
  RegisterNode(4);
  worker_.SetCreation(FakeWorker::Creation::kThrow);
  ActorOptions options;
  options.max_restarts = 3;  // a constructor error is not restarted
  const std::string id = CreateOk(options);
  const proto::ActorInfo dead = WaitForState(id, proto::ActorInfo::DEAD);
  EXPECT_EQ(dead.death_cause().message(), "Counter: std::runtime_error: no");
  EXPECT_EQ(dead.num_restarts(), 0);
  EXPECT_TRUE(Eventually([&] { return node_.Killed(1); }));
  EXPECT_EQ(node_.Leases().size(), 1u);
}

TEST_F(ActorDirectoryTest, AFailedCreationCallCountsAsAWorkerDeath) {
  RegisterNode(4);
  worker_.SetCreation(FakeWorker::Creation::kFailTheCall);
  const std::string id = CreateOk();
  const proto::ActorInfo dead = WaitForState(id, proto::ActorInfo::DEAD);
  EXPECT_EQ(dead.death_cause().type(), kActorDied);
  EXPECT_NE(dead.death_cause().message().find("failed while creating it"), std::string::npos)
      << dead.death_cause().message();
  EXPECT_NE(dead.death_cause().message().find("the worker crashed"), std::string::npos);
  EXPECT_TRUE(Eventually([&] { return node_.Killed(1); }));
}

TEST_F(ActorDirectoryTest, NamesAreUniquePerNamespaceAmongActorsThatAreNotDead) {
  RegisterNode(4);
  const std::string first = CreateOk({"counter", "ns1"});
  grpc::Status taken = Create(ActorID::FromRandom().Binary(), {"counter", "ns1"});
  EXPECT_EQ(taken.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_NE(taken.error_message().find("counter"), std::string::npos) << taken.error_message();
  const std::string other_namespace = CreateOk({"counter", "ns2"});
  EXPECT_EQ(Create(first, {}).error_code(), grpc::StatusCode::ALREADY_EXISTS);  // same id

  auto named = [&](const std::string &name, const std::string &ray_namespace) {
    proto::GetNamedActorRequest request;
    request.set_name(name);
    request.set_ray_namespace(ray_namespace);
    proto::GetNamedActorReply reply;
    grpc::Status status = stub_->GetNamedActor(Context().get(), request, &reply);
    return std::make_pair(status.error_code(), reply.actor().actor_id());
  };
  EXPECT_EQ(named("counter", "ns1"), std::make_pair(grpc::StatusCode::OK, first));
  EXPECT_EQ(named("counter", "ns2"), std::make_pair(grpc::StatusCode::OK, other_namespace));
  EXPECT_EQ(named("counter", "ns3").first, grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(named("other", "ns1").first, grpc::StatusCode::NOT_FOUND);

  // A dead actor's name is free again.
  WaitForState(first, proto::ActorInfo::ALIVE);
  ASSERT_TRUE(Kill(first, /*no_restart=*/true).ok());
  WaitForState(first, proto::ActorInfo::DEAD);
  EXPECT_EQ(named("counter", "ns1").first, grpc::StatusCode::NOT_FOUND);
  const std::string again = CreateOk({"counter", "ns1"});
  EXPECT_EQ(named("counter", "ns1"), std::make_pair(grpc::StatusCode::OK, again));
}

TEST_F(ActorDirectoryTest, MalformedCreateRequestsAreRejected) {
  EXPECT_EQ(Create("short", {}).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  ActorOptions options;
  options.max_restarts = -2;
  EXPECT_EQ(Create(ActorID::FromRandom().Binary(), options).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(ActorDirectoryTest, GetActorInfoLongPollsUntilANewerVersion) {
  auto unknown = Poll(ActorID::FromRandom().Binary(), -1).get();
  EXPECT_EQ(unknown.first.error_code(), grpc::StatusCode::NOT_FOUND);

  // No node yet: the actor stays PENDING at version 1.
  const std::string id = CreateOk();
  auto pending = Poll(id, -1).get();
  ASSERT_TRUE(pending.first.ok());
  EXPECT_EQ(pending.second.state(), proto::ActorInfo::PENDING);
  EXPECT_EQ(pending.second.version(), 1);

  auto waiting = Poll(id, 1);
  EXPECT_EQ(waiting.wait_for(milliseconds(100)), std::future_status::timeout);
  // A poll whose caller gives up ends with its deadline.
  auto expiring = Poll(id, 1, milliseconds(50)).get();
  EXPECT_EQ(expiring.first.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);

  RegisterNode(4);
  ASSERT_EQ(waiting.wait_for(kTimeout), std::future_status::ready);
  auto changed = waiting.get();
  ASSERT_TRUE(changed.first.ok()) << changed.first.error_message();
  EXPECT_GT(changed.second.version(), 1);
}

TEST_F(ActorDirectoryTest, StopAnswersWaitingLongPolls) {
  const std::string id = CreateOk();
  auto waiting = Poll(id, 1);
  EXPECT_EQ(waiting.wait_for(milliseconds(50)), std::future_status::timeout);
  service_.Stop();
  ASSERT_EQ(waiting.wait_for(kTimeout), std::future_status::ready);
  EXPECT_EQ(waiting.get().first.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(ActorDirectoryTest, AnActorWaitsForANodeThatFitsIt) {
  RegisterNode(1, NodeID::FromRandom().Hex());
  ActorOptions options;
  options.cpus = 2;
  const std::string id = CreateOk(options);
  auto waiting = Poll(id, 1);
  EXPECT_EQ(waiting.wait_for(milliseconds(100)), std::future_status::timeout);
  EXPECT_TRUE(node_.Leases().empty());
  RegisterNode(4);  // a second node, big enough
  const proto::ActorInfo alive = WaitForState(id, proto::ActorInfo::ALIVE);
  EXPECT_EQ(alive.node_id(), node_id_);
}

TEST_F(ActorDirectoryTest, AWorkerDeathRestartsTheActorUntilMaxRestartsIsUsedUp) {
  RegisterNode(4);
  const std::string id = CreateAlive(1);
  EXPECT_EQ(Poll(id, -1).get().second.pid(), 10001);

  node_.ReportDeath(99, "exited with status 0");  // not an actor's worker: ignored
  node_.ReportDeath(1, "exited with status 1");
  const proto::ActorInfo second = WaitFor(id, [](const proto::ActorInfo &info) {
    return info.state() == proto::ActorInfo::ALIVE && info.num_restarts() == 1;
  });
  EXPECT_EQ(second.pid(), 10002);
  auto tasks = worker_.Tasks();
  ASSERT_EQ(tasks.size(), 2u);
  EXPECT_EQ(tasks[1].restart_count(), 1);

  node_.ReportDeath(2, "killed by signal 11");
  const proto::ActorInfo dead = WaitForState(id, proto::ActorInfo::DEAD);
  EXPECT_EQ(dead.num_restarts(), 1);
  EXPECT_EQ(dead.death_cause().type(), kActorDied);
  const std::string &message = dead.death_cause().message();
  EXPECT_NE(message.find(BinaryToHex(id)), std::string::npos) << message;
  EXPECT_NE(message.find("Counter"), std::string::npos) << message;
  EXPECT_NE(message.find("10002"), std::string::npos) << message;
  EXPECT_NE(message.find(node_id_), std::string::npos) << message;
  EXPECT_NE(message.find("killed by signal 11"), std::string::npos) << message;
  EXPECT_EQ(node_.Leases().size(), 2u);
}

TEST_F(ActorDirectoryTest, UnlimitedRestartsKeepTheActorComingBack) {
  RegisterNode(4);
  const std::string id = CreateAlive(-1);
  for (int token = 1; token <= 3; ++token) {
    node_.ReportDeath(token, "exited with status 1");
    WaitFor(id, [token](const proto::ActorInfo &info) {
      return info.state() == proto::ActorInfo::ALIVE && info.num_restarts() == token;
    });
  }
}

TEST_F(ActorDirectoryTest, KillActorStopsTheWorkerAndRestartsUnlessNoRestart) {
  RegisterNode(4);
  const std::string id = CreateAlive(5);

  proto::ActorInfo after;
  ASSERT_TRUE(Kill(id, /*no_restart=*/false, &after).ok());
  // The reply already tells the restart, before the old worker is gone.
  EXPECT_EQ(after.state(), proto::ActorInfo::RESTARTING);
  EXPECT_EQ(after.num_restarts(), 1);
  WaitFor(id, [](const proto::ActorInfo &info) {
    return info.state() == proto::ActorInfo::ALIVE && info.num_restarts() == 1;
  });
  // The old worker's exit, its kill and the restart are separate calls: any
  // may land first.
  EXPECT_TRUE(Eventually([&] { return worker_.NumExits() == 1; }));
  ASSERT_TRUE(Eventually([&] { return node_.Killed(1); }));
  EXPECT_EQ(node_.Kills()[0].token, 1);
  EXPECT_TRUE(node_.Kills()[0].force);

  ASSERT_TRUE(Kill(id, /*no_restart=*/true, &after).ok());
  EXPECT_EQ(after.state(), proto::ActorInfo::DEAD);
  const proto::ActorInfo dead = WaitForState(id, proto::ActorInfo::DEAD);
  EXPECT_EQ(dead.death_cause().type(), kActorDied);
  EXPECT_NE(dead.death_cause().message().find("killed by ray::KillActor"), std::string::npos)
      << dead.death_cause().message();
  EXPECT_TRUE(Eventually([&] { return node_.Killed(2); }));  // the worker goes after
  EXPECT_TRUE(Kill(id, true).ok());                          // killing a dead actor changes nothing

  EXPECT_EQ(Kill(ActorID::FromRandom().Binary(), true).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(ActorDirectoryTest, KillingAnActorWithoutAWorkerYet) {
  // Queued (no node): dies at once with no_restart.
  const std::string queued = CreateOk();
  ASSERT_TRUE(Kill(queued, /*no_restart=*/true).ok());
  EXPECT_EQ(WaitForState(queued, proto::ActorInfo::DEAD).death_cause().type(), kActorDied);

  // Leasing: the worker granted later is killed, not used.
  node_.HoldLeases(true);
  RegisterNode(4);
  const std::string leasing = CreateOk();
  ASSERT_TRUE(Eventually([&] { return node_.NumHeld() == 1; }));
  ASSERT_TRUE(Kill(leasing, /*no_restart=*/true).ok());
  WaitForState(leasing, proto::ActorInfo::DEAD);
  node_.ReleaseHeldLeases();
  EXPECT_TRUE(Eventually([&] { return node_.Killed(1); }));
  EXPECT_TRUE(worker_.Tasks().empty());

  // Without no_restart: killed once leased, then created again.
  ActorOptions options;
  options.max_restarts = 1;
  const std::string restarting = CreateOk(options);
  ASSERT_TRUE(Eventually([&] { return node_.NumHeld() == 1; }));
  ASSERT_TRUE(Kill(restarting, /*no_restart=*/false).ok());
  node_.HoldLeases(false);
  node_.ReleaseHeldLeases();
  const proto::ActorInfo alive = WaitForState(restarting, proto::ActorInfo::ALIVE);
  EXPECT_EQ(alive.num_restarts(), 1);
  EXPECT_TRUE(node_.Killed(2));
}

TEST_F(ActorDirectoryTest, RepeatedLeaseFailuresEndTheActorWithoutUsingRestarts) {
  RegisterNode(4);
  node_.FailLeases(true);
  ActorOptions options;
  options.max_restarts = -1;
  const std::string id = CreateOk(options);
  const proto::ActorInfo dead = WaitForState(id, proto::ActorInfo::DEAD);
  EXPECT_EQ(dead.num_restarts(), 0);
  EXPECT_NE(dead.death_cause().message().find("could not be created"), std::string::npos)
      << dead.death_cause().message();
  EXPECT_NE(dead.death_cause().message().find("the worker exited"), std::string::npos);
  EXPECT_EQ(node_.Leases().size(), 5u);
}

TEST_F(ActorDirectoryTest, MarkJobFinishedKillsTheJobsActorsExceptDetachedOnes) {
  RegisterNode(8);
  proto::AddJobReply job;
  ASSERT_TRUE(stub_->AddJob(Context().get(), {}, &job).ok());
  ASSERT_EQ(job.job().job_id(), "01000000");
  ActorOptions owned;
  owned.max_restarts = -1;
  ActorOptions detached = owned;
  detached.detached = true;
  ActorOptions other_job = owned;
  other_job.job = 2;
  const std::string owned_id = CreateOk(owned);
  const std::string detached_id = CreateOk(detached);
  const std::string other_id = CreateOk(other_job);
  const std::string pending_id = CreateOk({"", "", 0, false, 1, 100});  // fits no node
  const int64_t detached_pid = WaitForState(detached_id, proto::ActorInfo::ALIVE).pid();
  const int64_t other_pid = WaitForState(other_id, proto::ActorInfo::ALIVE).pid();
  WaitForState(owned_id, proto::ActorInfo::ALIVE);

  proto::MarkJobFinishedRequest finish;
  finish.set_job_id("01000000");
  proto::MarkJobFinishedReply finished;
  ASSERT_TRUE(stub_->MarkJobFinished(Context().get(), finish, &finished).ok());
  for (const std::string &id : {owned_id, pending_id}) {
    const proto::ActorInfo dead = WaitForState(id, proto::ActorInfo::DEAD);
    EXPECT_NE(dead.death_cause().message().find("its owner (job 01000000) finished"),
              std::string::npos)
        << dead.death_cause().message();
  }
  auto detached_now = Poll(detached_id, -1).get().second;
  EXPECT_EQ(detached_now.state(), proto::ActorInfo::ALIVE);
  EXPECT_FALSE(node_.Killed(detached_pid - 10000));
  EXPECT_EQ(Poll(other_id, -1).get().second.state(), proto::ActorInfo::ALIVE);
  EXPECT_FALSE(node_.Killed(other_pid - 10000));
}

TEST_F(ActorDirectoryTest, UnregisteringANodeRestartsItsActors) {
  RegisterNode(4);
  const std::string id = CreateAlive(1);
  proto::UnregisterNodeRequest request;
  request.set_node_id(node_id_);
  request.set_reason("stopped");
  proto::UnregisterNodeReply reply;
  ASSERT_TRUE(stub_->UnregisterNode(Context().get(), request, &reply).ok());
  // No node left: it waits to be created again.
  const proto::ActorInfo restarting = WaitForState(id, proto::ActorInfo::RESTARTING);
  EXPECT_EQ(restarting.num_restarts(), 1);
  RegisterNode(4);
  WaitForState(id, proto::ActorInfo::ALIVE);
}

TEST_F(ActorDirectoryTest, SubscribersReceiveActorAndNodeChangesInOrder) {
  grpc::ClientContext context;
  context.AddMetadata(rpc::kTokenHeader, kToken);
  proto::SubscribeRequest request;
  request.set_actors(true);
  request.set_nodes(true);
  auto stream = stub_->Subscribe(&context, request);
  stream->WaitForInitialMetadata();  // subscribed

  RegisterNode(4);
  const std::string id = CreateAlive(1);
  node_.ReportDeath(1, "exited with status 1");

  proto::Notification notification;
  ASSERT_TRUE(stream->Read(&notification));
  ASSERT_TRUE(notification.has_node());
  EXPECT_EQ(notification.node().node_id(), node_id_);
  EXPECT_EQ(notification.node().state(), proto::NodeInfo::ALIVE);
  std::vector<proto::ActorInfo::State> states;
  int64_t version = 0;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(stream->Read(&notification));
    ASSERT_TRUE(notification.has_actor());
    EXPECT_EQ(notification.actor().version(), version + 1);
    version = notification.actor().version();
    states.push_back(notification.actor().state());
  }
  EXPECT_EQ(states, (std::vector<proto::ActorInfo::State>{
                        proto::ActorInfo::PENDING, proto::ActorInfo::ALIVE,
                        proto::ActorInfo::RESTARTING, proto::ActorInfo::ALIVE}));
  // Stopping the service ends the stream.
  service_.Stop();
  while (stream->Read(&notification)) {
  }
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace sunray
