// The actor directory through the control service's RPCs: creation,
// names, long polls and subscriptions (fixture: actor_directory_test_fixture.h).
#include "src/control/actor_directory_test_fixture.h"

namespace sunray::control_testing {
namespace {

TEST_F(ActorDirectoryTest, ACreatedActorIsLeasedAWorkerAndBecomesAlive) {
  RegisterNode(4);
  ActorOptions options;
  options.detached = true;
  const std::string id = CreateOk(options);
  const proto::ActorInfo alive = WaitForState(id, proto::ActorInfo::ALIVE);
  EXPECT_EQ(alive.actor_id(), id);
  EXPECT_EQ(alive.job_id(), JobIdFromNumber(1).Binary());
  EXPECT_EQ(alive.class_name(), "Counter");
  EXPECT_EQ(alive.node_id(), node_id_);
  EXPECT_EQ(alive.address(), "127.0.0.1:" + std::to_string(node_address_port_));
  EXPECT_EQ(alive.pid(), 10001);
  EXPECT_EQ(alive.num_restarts(), 0);
  EXPECT_GE(alive.version(), 2);

  auto leases = node_.Leases();
  ASSERT_EQ(leases.size(), 1u);
  EXPECT_EQ(leases[0].job_id(), JobIdFromNumber(1).Binary());
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
  RegisterNode(1, NodeID::FromRandom().Binary());
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
}  // namespace sunray::control_testing
