// The control client against a scripted control service in this process:
// answers become absl::Status, a malformed answer is refused naming the
// field, and a stopped client's watches end Cancelled.
#include "src/worker/control_client.h"

#include <gtest/gtest.h>

#include <future>

#include "src/rpc/rpc.h"

namespace sunray {
namespace {

constexpr char kToken[] = "token";

// Answers AddJob with `job_id`, GetActorInfo NOT_FOUND, and holds
// KillActor's callers until they give up.
class ScriptedControl : public proto::ControlService::CallbackService {
 public:
  std::string job_id = JobIdFromNumber(7).Binary();

  grpc::ServerUnaryReactor *AddJob(grpc::CallbackServerContext *context,
                                   const proto::AddJobRequest *,
                                   proto::AddJobReply *reply) override {
    return rpc::HandleUnary(context, kToken, [&] {
      reply->mutable_job()->set_job_id(job_id);
      return absl::OkStatus();
    });
  }
  grpc::ServerUnaryReactor *GetActorInfo(grpc::CallbackServerContext *context,
                                         const proto::GetActorInfoRequest *request,
                                         proto::GetActorInfoReply *) override {
    return rpc::HandleUnary(context, kToken, [&] {
      return absl::NotFoundError("no actor " + BinaryToHex(request->actor_id()));
    });
  }
};

class ControlClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto port = server_.Start("127.0.0.1:0", {&control_});
    ASSERT_TRUE(port.ok()) << port.status();
    address_ = "127.0.0.1:" + std::to_string(*port);
  }

  ScriptedControl control_;
  rpc::RpcServer server_;
  std::string address_;
};

TEST_F(ControlClientTest, AnAnswerBecomesTheJobItNames) {
  GrpcControlClient client(kToken, address_);
  absl::StatusOr<proto::JobInfo> job = client.AddJob({}, kConnectTimeout);
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->job_id(), JobIdFromNumber(7).Binary());
}

// A peer's bad answer is an error naming what was wrong, not a nil id.
TEST_F(ControlClientTest, AJobIdOfTheWrongSizeIsAMalformedAnswer) {
  control_.job_id = "01000000";  // hex, as the wire carried it once
  GrpcControlClient client(kToken, address_);
  absl::StatusOr<proto::JobInfo> job = client.AddJob({}, kConnectTimeout);
  ASSERT_FALSE(job.ok());
  EXPECT_TRUE(absl::IsInternal(job.status())) << job.status();
  EXPECT_NE(job.status().message().find("malformed answer: AddJob's job_id must be 4 bytes, got 8"),
            std::string::npos)
      << job.status();
}

TEST_F(ControlClientTest, AWrongTokenIsUnauthenticated) {
  GrpcControlClient client("not the token", address_);
  EXPECT_TRUE(absl::IsUnauthenticated(client.AddJob({}, kConnectTimeout).status()));
}

TEST_F(ControlClientTest, AWatchEndsWithTheServicesAnswerThenCancelledOnceStopped) {
  GrpcControlClient client(kToken, address_);
  std::promise<absl::Status> first;
  client.WatchActor("actor", -1,
                    [&](absl::StatusOr<proto::ActorInfo> info) { first.set_value(info.status()); });
  const absl::Status answered = first.get_future().get();
  EXPECT_TRUE(absl::IsNotFound(answered)) << answered;
  EXPECT_NE(answered.message().find(BinaryToHex("actor")), std::string::npos) << answered;

  client.Stop();
  bool called = false;
  client.WatchActor("actor", -1, [&](absl::StatusOr<proto::ActorInfo> info) {
    EXPECT_TRUE(absl::IsCancelled(info.status())) << info.status();
    called = true;
  });
  EXPECT_TRUE(called);  // at once, on this thread
}

TEST(ControlClientUnreachableTest, ABlockingCallToNobodyFailsWithinItsTimeout) {
  GrpcControlClient client(kToken, "127.0.0.1:1");
  absl::StatusOr<std::vector<proto::NodeInfo>> nodes =
      client.GetAllNodes(std::chrono::milliseconds(500));
  EXPECT_FALSE(nodes.ok());
  EXPECT_TRUE(absl::IsUnavailable(nodes.status()) || absl::IsDeadlineExceeded(nodes.status()))
      << nodes.status();
}

}  // namespace
}  // namespace sunray
