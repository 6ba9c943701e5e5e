// The actor directory through the control service's RPCs: restarts after
// worker deaths, KillActor, and actors ended with their job or node
// (fixture: actor_directory_test_fixture.h).
#include "src/control/actor_directory_test_fixture.h"

namespace sunray::control_testing {
namespace {

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
  EXPECT_NE(message.find(BinaryToHex(node_id_)), std::string::npos) << message;
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
  ASSERT_EQ(job.job().job_id(), JobIdFromNumber(1).Binary());
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
  finish.set_job_id(JobIdFromNumber(1).Binary());
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

}  // namespace
}  // namespace sunray::control_testing
