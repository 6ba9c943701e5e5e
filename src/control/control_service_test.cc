#include "src/control/control_service.h"

#include <google/protobuf/descriptor.h>
#include <grpcpp/generic/generic_stub.h>
#include <gtest/gtest.h>

#include <future>

#include "src/testing/eventually.h"

#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/resources.h"
#include "src/rpc/rpc.h"

namespace sunray {
namespace {

using std::chrono::milliseconds;

constexpr char kToken[] = "test-cluster-token";
constexpr milliseconds kTimeout{5000};

class ControlServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto port = server_.Start("127.0.0.1:0", {&service_});
    ASSERT_TRUE(port.ok()) << port.status();
    address_ = "127.0.0.1:" + std::to_string(*port);
    stub_ = proto::ControlService::NewStub(rpc::MakeChannel(address_));
  }
  void TearDown() override { server_.Stop(); }

  std::unique_ptr<grpc::ClientContext> Context() {
    return rpc::MakeClientContext(kToken, kTimeout);
  }

  proto::NodeInfo MakeNode() {
    proto::NodeInfo node;
    node.set_node_id(NodeID::FromRandom().Binary());
    node.mutable_address()->set_ip("127.0.0.1");
    node.mutable_address()->set_port(4321);
    (*node.mutable_total()->mutable_amounts())["CPU"] = 2 * 10000;
    return node;
  }

  // Health checks that find no node at 127.0.0.1:4321 only once (its
  // first round) in these tests: the tests below that check health make
  // their own service.
  ControlService service_{{kToken, milliseconds(500), {.period = std::chrono::hours(1)}}};
  rpc::RpcServer server_;
  std::string address_;
  std::unique_ptr<proto::ControlService::Stub> stub_;
};

TEST_F(ControlServiceTest, RegisteredNodesAreListedAndCanDie) {
  proto::RegisterNodeRequest request;
  *request.mutable_node() = MakeNode();
  proto::RegisterNodeReply reply;
  ASSERT_TRUE(stub_->RegisterNode(Context().get(), request, &reply).ok());

  proto::GetAllNodesReply nodes;
  ASSERT_TRUE(stub_->GetAllNodes(Context().get(), {}, &nodes).ok());
  ASSERT_EQ(nodes.nodes_size(), 1);
  EXPECT_EQ(nodes.nodes(0).state(), proto::NodeInfo::ALIVE);
  EXPECT_EQ(nodes.nodes(0).total().amounts().at("CPU"), 20000);

  proto::UnregisterNodeRequest unregister;
  unregister.set_node_id(request.node().node_id());
  unregister.set_reason("stopped");
  proto::UnregisterNodeReply unregistered;
  ASSERT_TRUE(stub_->UnregisterNode(Context().get(), unregister, &unregistered).ok());
  nodes.Clear();
  ASSERT_TRUE(stub_->GetAllNodes(Context().get(), {}, &nodes).ok());
  EXPECT_EQ(nodes.nodes(0).state(), proto::NodeInfo::DEAD);
  EXPECT_EQ(nodes.nodes(0).death_reason(), "stopped");
}

TEST_F(ControlServiceTest, MalformedNodeIsRejectedWithAClearError) {
  proto::RegisterNodeRequest request;
  *request.mutable_node() = MakeNode();
  request.mutable_node()->set_node_id("not-an-id");
  proto::RegisterNodeReply reply;
  grpc::Status status = stub_->RegisterNode(Context().get(), request, &reply);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("node_id must be 28 bytes, got 9"), std::string::npos)
      << status.error_message();
  // The service keeps serving.
  proto::GetAllNodesReply nodes;
  EXPECT_TRUE(stub_->GetAllNodes(Context().get(), {}, &nodes).ok());
  EXPECT_EQ(nodes.nodes_size(), 0);
}

TEST_F(ControlServiceTest, JobsGetIncreasingIdsAndFinish) {
  proto::AddJobRequest request;
  request.set_driver_pid(42);
  request.set_ray_namespace("ns");
  proto::AddJobReply first, second;
  ASSERT_TRUE(stub_->AddJob(Context().get(), request, &first).ok());
  ASSERT_TRUE(stub_->AddJob(Context().get(), request, &second).ok());
  EXPECT_EQ(first.job().job_id(), JobIdFromNumber(1).Binary());
  EXPECT_EQ(second.job().job_id(), JobIdFromNumber(2).Binary());

  proto::MarkJobFinishedRequest finish;
  finish.set_job_id(first.job().job_id());
  proto::MarkJobFinishedReply finished;
  ASSERT_TRUE(stub_->MarkJobFinished(Context().get(), finish, &finished).ok());
  proto::GetAllJobsReply jobs;
  ASSERT_TRUE(stub_->GetAllJobs(Context().get(), {}, &jobs).ok());
  ASSERT_EQ(jobs.jobs_size(), 2);
  EXPECT_TRUE(jobs.jobs(0).finished());
  EXPECT_FALSE(jobs.jobs(1).finished());

  finish.set_job_id(JobIdFromNumber(0xffffffff).Binary());
  EXPECT_EQ(stub_->MarkJobFinished(Context().get(), finish, &finished).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ControlServiceTest, KvPutGetDeleteAndListByPrefixPerNamespace) {
  auto put = [&](const std::string &ns, const std::string &key, const std::string &value,
                 bool overwrite) {
    proto::KvPutRequest request;
    request.set_ray_namespace(ns);
    request.set_key(key);
    request.set_value(value);
    request.set_overwrite(overwrite);
    proto::KvPutReply reply;
    EXPECT_TRUE(stub_->KvPut(Context().get(), request, &reply).ok());
    return reply.added();
  };
  auto get = [&](const std::string &ns, const std::string &key) {
    proto::KvGetRequest request;
    request.set_ray_namespace(ns);
    request.set_key(key);
    proto::KvGetReply reply;
    EXPECT_TRUE(stub_->KvGet(Context().get(), request, &reply).ok());
    return reply.found() ? reply.value() : std::string("<missing>");
  };
  EXPECT_TRUE(put("a", "job/1", "x", false));
  EXPECT_FALSE(put("a", "job/1", "y", false));
  EXPECT_EQ(get("a", "job/1"), "x");
  EXPECT_FALSE(put("a", "job/1", "y", true));
  EXPECT_EQ(get("a", "job/1"), "y");
  EXPECT_TRUE(put("a", "job/2", "z", false));
  EXPECT_TRUE(put("a", "other", "o", false));
  EXPECT_TRUE(put("b", "job/1", "b", false));

  proto::KvKeysRequest keys_request;
  keys_request.set_ray_namespace("a");
  keys_request.set_prefix("job/");
  proto::KvKeysReply keys;
  ASSERT_TRUE(stub_->KvKeys(Context().get(), keys_request, &keys).ok());
  ASSERT_EQ(keys.keys_size(), 2);
  EXPECT_EQ(keys.keys(0), "job/1");
  EXPECT_EQ(keys.keys(1), "job/2");

  proto::KvDelRequest del;
  del.set_ray_namespace("a");
  del.set_key("job/");
  del.set_by_prefix(true);
  proto::KvDelReply deleted;
  ASSERT_TRUE(stub_->KvDel(Context().get(), del, &deleted).ok());
  EXPECT_EQ(deleted.deleted(), 2);
  EXPECT_EQ(get("a", "job/1"), "<missing>");
  EXPECT_EQ(get("a", "other"), "o");
  EXPECT_EQ(get("b", "job/1"), "b");
}

TEST_F(ControlServiceTest, ANodeReportsItsStateAndHearsWhenItWasDeclaredDead) {
  proto::RegisterNodeRequest request;
  *request.mutable_node() = MakeNode();
  proto::RegisterNodeReply registered;
  ASSERT_TRUE(stub_->RegisterNode(Context().get(), request, &registered).ok());
  proto::ReportNodeStateRequest report;
  report.set_node_id(request.node().node_id());
  (*report.mutable_available()->mutable_amounts())["CPU"] = 5000;
  report.set_pending_leases(3);
  proto::ReportNodeStateReply reported;
  ASSERT_TRUE(stub_->ReportNodeState(Context().get(), report, &reported).ok());
  proto::GetAllNodesReply nodes;
  ASSERT_TRUE(stub_->GetAllNodes(Context().get(), {}, &nodes).ok());
  ASSERT_EQ(nodes.nodes_size(), 1);
  EXPECT_EQ(nodes.nodes(0).available().amounts().at("CPU"), 5000);
  EXPECT_EQ(nodes.nodes(0).pending_leases(), 3);
  EXPECT_EQ(nodes.nodes(0).labels().at(kNodeIdLabel), BinaryToHex(request.node().node_id()));

  proto::UnregisterNodeRequest unregister;
  unregister.set_node_id(request.node().node_id());
  unregister.set_reason("health check failed: test");
  proto::UnregisterNodeReply unregistered;
  ASSERT_TRUE(stub_->UnregisterNode(Context().get(), unregister, &unregistered).ok());
  grpc::Status dead = stub_->ReportNodeState(Context().get(), report, &reported);
  EXPECT_EQ(dead.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(dead.error_message().find("was declared dead (health check failed: test)"),
            std::string::npos)
      << dead.error_message();

  report.set_node_id(NodeID::FromRandom().Binary());
  EXPECT_EQ(stub_->ReportNodeState(Context().get(), report, &reported).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

// A node daemon as the health checks see it: answers while it serves.
class HealthyNode final : public proto::NodeService::CallbackService {
 public:
  grpc::ServerUnaryReactor *CheckHealth(grpc::CallbackServerContext *context,
                                        const proto::CheckHealthRequest *,
                                        proto::CheckHealthReply *) override {
    return rpc::HandleUnary(context, kToken, [] { return absl::OkStatus(); });
  }
};

TEST(ControlServiceHealthTest, ANodeThatStopsAnsweringIsDeclaredDeadAndPublished) {
  ControlService service(
      {kToken,
       milliseconds(500),
       {.period = milliseconds(50), .timeout = milliseconds(500), .failure_threshold = 3}});
  rpc::RpcServer server;
  auto port = server.Start("127.0.0.1:0", {&service});
  ASSERT_TRUE(port.ok()) << port.status();
  auto stub =
      proto::ControlService::NewStub(rpc::MakeChannel("127.0.0.1:" + std::to_string(*port)));
  HealthyNode healthy;
  rpc::RpcServer node_server;
  auto node_port = node_server.Start("127.0.0.1:0", {&healthy});
  ASSERT_TRUE(node_port.ok()) << node_port.status();

  // Subscribed before either node registers: sees the death published.
  grpc::ClientContext subscription;
  subscription.AddMetadata(rpc::kTokenHeader, kToken);
  proto::SubscribeRequest subscribe;
  subscribe.set_nodes(true);
  auto stream = stub->Subscribe(&subscription, subscribe);
  stream->WaitForInitialMetadata();

  auto node_at = [](int port) {
    proto::RegisterNodeRequest request;
    proto::NodeInfo *node = request.mutable_node();
    node->set_node_id(NodeID::FromRandom().Binary());
    node->mutable_address()->set_ip("127.0.0.1");
    node->mutable_address()->set_port(port);
    return request;
  };
  const proto::RegisterNodeRequest alive = node_at(*node_port);
  proto::RegisterNodeReply registered;
  ASSERT_TRUE(
      stub->RegisterNode(rpc::MakeClientContext(kToken, kTimeout).get(), alive, &registered).ok());
  auto state_of = [&](const std::string &id) {
    proto::GetAllNodesReply nodes;
    EXPECT_TRUE(stub->GetAllNodes(rpc::MakeClientContext(kToken, kTimeout).get(), {}, &nodes).ok());
    for (const auto &node : nodes.nodes()) {
      if (node.node_id() == id) return node;
    }
    return proto::NodeInfo();
  };
  // Several rounds pass; it stays alive.
  for (int round = 0; round < 5; ++round) {
    std::this_thread::sleep_for(milliseconds(50));
    ASSERT_EQ(state_of(alive.node().node_id()).state(), proto::NodeInfo::ALIVE);
  }

  node_server.Stop();  // the node stops answering
  ASSERT_TRUE(Eventually(
      [&] { return state_of(alive.node().node_id()).state() == proto::NodeInfo::DEAD; }));
  const proto::NodeInfo dead = state_of(alive.node().node_id());
  EXPECT_NE(dead.death_reason().find("health check failed: failed 3 health checks in a row"),
            std::string::npos)
      << dead.death_reason();
  EXPECT_GT(dead.end_time_ms(), 0);

  proto::Notification notification;
  bool published_dead = false;
  while (!published_dead && stream->Read(&notification)) {
    published_dead = notification.node().node_id() == alive.node().node_id() &&
                     notification.node().state() == proto::NodeInfo::DEAD;
  }
  EXPECT_TRUE(published_dead);
  subscription.TryCancel();
  service.Stop();
  server.Stop();
}

// Calls `method` with an empty request and the given token (none if empty).
grpc::Status CallRaw(grpc::GenericStub &stub, const std::string &method, const std::string &token) {
  grpc::ClientContext context;
  if (!token.empty()) context.AddMetadata(rpc::kTokenHeader, token);
  context.set_deadline(std::chrono::system_clock::now() + kTimeout);
  grpc::Slice empty("");
  grpc::ByteBuffer request(&empty, 1);  // an empty protobuf message
  grpc::ByteBuffer response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

TEST_F(ControlServiceTest, EveryMethodRejectsCallersWithoutTheToken) {
  const auto *service = google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
      "sunray.proto.ControlService");
  ASSERT_NE(service, nullptr);
  ASSERT_GT(service->method_count(), 0);
  grpc::GenericStub stub(rpc::MakeChannel(address_));
  for (int i = 0; i < service->method_count(); ++i) {
    const std::string method = "/sunray.proto.ControlService/" + service->method(i)->name();
    EXPECT_EQ(CallRaw(stub, method, "").error_code(), grpc::StatusCode::UNAUTHENTICATED) << method;
    EXPECT_EQ(CallRaw(stub, method, "wrong-token").error_code(), grpc::StatusCode::UNAUTHENTICATED)
        << method;
  }
  // With the token, the same empty request gets past authentication.
  EXPECT_NE(CallRaw(stub, "/sunray.proto.ControlService/GetAllNodes", kToken).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

}  // namespace
}  // namespace sunray
