// Test support for the actor directory's tests: the control service's RPCs
// against a fake node daemon (grants leases, kills workers and reports their
// deaths as a real node's pool does) and a fake worker (answers creation
// tasks), and the fixture that wires them.
#pragma once

#include <gtest/gtest.h>

#include <deque>
#include <future>
#include <set>

#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/control/control_service.h"
#include "src/rpc/async_caller.h"
#include "src/rpc/rpc.h"
#include "src/testing/eventually.h"
#include "worker.grpc.pb.h"

namespace sunray::control_testing {

using std::chrono::milliseconds;

constexpr char kToken[] = "test-cluster-token";
constexpr milliseconds kTimeout = Deadline(milliseconds(10000));
constexpr int kActorDied = 1;  // sunray::ErrorType::kActorDied

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
  // Alive for the control service's health checks.
  grpc::ServerUnaryReactor *CheckHealth(grpc::CallbackServerContext *context,
                                        const proto::CheckHealthRequest *,
                                        proto::CheckHealthReply *) override {
    return rpc::HandleUnary(context, kToken, [] { return absl::OkStatus(); });
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
          reply->mutable_result()->mutable_error()->set_type(proto::TASK_EXECUTION_EXCEPTION);
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

  const std::string node_id_ = NodeID::FromRandom().Binary();
  ControlService service_{{kToken, milliseconds(20), {}}};
  FakeNode node_;
  FakeWorker worker_;
  rpc::RpcServer control_server_;
  rpc::RpcServer node_server_;
  std::string control_address_;
  int node_address_port_ = 0;
  std::unique_ptr<proto::ControlService::Stub> stub_;
};

}  // namespace sunray::control_testing
