#include "src/rpc/frame_loop.h"

#include <gtest/gtest.h>

#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace sunray::rpc {
namespace {

// What one end of a connection saw.
struct Seen {
  absl::Mutex mu;
  std::vector<std::string> frames ABSL_GUARDED_BY(mu);
  std::vector<std::thread::id> frame_threads ABSL_GUARDED_BY(mu);  // who ran on_frame
  bool read_ended ABSL_GUARDED_BY(mu) = false;
  std::promise<absl::Status> closed;

  FrameConnection::Handlers Handlers() {
    FrameConnection::Handlers handlers;
    handlers.on_frame = [this](uint8_t type, std::string &payload) {
      absl::MutexLock lock(&mu);
      frames.push_back(std::to_string(type) + ":" + payload);
      frame_threads.push_back(std::this_thread::get_id());
    };
    handlers.on_read_end = [this] {
      absl::MutexLock lock(&mu);
      read_ended = true;
    };
    handlers.on_closed = [this](const absl::Status &status) { closed.set_value(status); };
    return handlers;
  }
  size_t Count() {
    absl::MutexLock lock(&mu);
    return frames.size();
  }
  bool WaitForFrames(size_t count) {
    absl::MutexLock lock(&mu);
    const auto arrived = [&] {
      mu.AssertHeld();
      return frames.size() >= count;
    };
    return mu.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(10));
  }
  absl::Status WaitForClose() {
    auto future = closed.get_future();
    if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      return absl::DeadlineExceededError("not closed");
    }
    return future.get();
  }
};

class FrameLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_loop_.Start().ok());
    ASSERT_TRUE(client_loop_.Start().ok());
    auto port = server_loop_.Listen("127.0.0.1", [this](std::shared_ptr<FrameConnection> c) {
      c->MarkAuthenticated();
      {
        absl::MutexLock lock(&mu_);
        accepted_ = c;
      }
      return server_seen_.Handlers();
    });
    ASSERT_TRUE(port.ok()) << port.status();
    address_ = "127.0.0.1:" + std::to_string(*port);
  }
  void TearDown() override {
    {
      absl::MutexLock lock(&mu_);
      accepted_.reset();
    }
    client_loop_.Stop();
    server_loop_.Stop();
  }
  std::shared_ptr<FrameConnection> Accepted() {
    absl::MutexLock lock(&mu_);
    const auto ready = [this] {
      mu_.AssertHeld();
      return accepted_ != nullptr;
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(10));
    return accepted_;
  }

  // A client whose first frame has reached the server (so it is connected
  // and Accepted() knows the server's end); null if that did not happen.
  std::shared_ptr<FrameConnection> Greeted(Seen &seen) {
    const size_t before = server_seen_.Count();
    auto client = client_loop_.Connect(address_, seen.Handlers());
    if (!client.ok() || !(*client)->Send(1, "hello") || !server_seen_.WaitForFrames(before + 1)) {
      return nullptr;
    }
    return *client;
  }
  static void AbortAndWait(FrameConnection &client, Seen &seen) {
    client.Abort(absl::CancelledError("done"));
    EXPECT_TRUE(absl::IsCancelled(seen.WaitForClose()));
  }

  FrameLoop server_loop_{{}};
  FrameLoop client_loop_{{}};
  std::string address_;
  Seen server_seen_;
  absl::Mutex mu_;
  std::shared_ptr<FrameConnection> accepted_ ABSL_GUARDED_BY(mu_);
};

TEST_F(FrameLoopTest, FramesArriveInOrderAndBothEndsCloseCleanly) {
  Seen client_seen;
  auto client = client_loop_.Connect(address_, client_seen.Handlers());
  ASSERT_TRUE(client.ok()) << client.status();
  // Sent before the connection is up: queued, then written in order.
  ASSERT_TRUE((*client)->Send(1, "one"));
  ASSERT_TRUE((*client)->Send(2, ""));
  ASSERT_TRUE((*client)->Send(3, "three"));
  (*client)->CloseWrite();
  EXPECT_FALSE((*client)->Send(4, "after the end"));
  ASSERT_TRUE(server_seen_.WaitForFrames(3));
  auto server_end = Accepted();
  ASSERT_NE(server_end, nullptr);
  ASSERT_TRUE(server_end->Send(9, "answer"));
  server_end->CloseWrite();
  EXPECT_TRUE(client_seen.WaitForClose().ok());
  EXPECT_TRUE(server_seen_.WaitForClose().ok());
  absl::MutexLock lock(&server_seen_.mu);
  EXPECT_EQ(server_seen_.frames, (std::vector<std::string>{"1:one", "2:", "3:three"}));
  EXPECT_TRUE(server_seen_.read_ended);
  absl::MutexLock client_lock(&client_seen.mu);
  EXPECT_EQ(client_seen.frames, std::vector<std::string>{"9:answer"});
}

TEST_F(FrameLoopTest, AFrameLargerThanTheSocketBufferIsWrittenWholeThenItsActionRuns) {
  Seen client_seen;
  auto client = client_loop_.Connect(address_, client_seen.Handlers());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Send(1, "hello"));
  ASSERT_TRUE(server_seen_.WaitForFrames(1));
  const std::string big(24 << 20, 'b');  // far beyond what the kernel takes at once
  std::promise<void> written;
  ASSERT_TRUE(
      (*client)->Send(2, big, FrameConnection::Delivery::kNow, [&] { written.set_value(); }));
  ASSERT_TRUE((*client)->Send(3, "after"));
  ASSERT_EQ(written.get_future().wait_for(std::chrono::seconds(20)), std::future_status::ready);
  ASSERT_TRUE(server_seen_.WaitForFrames(3));
  absl::MutexLock lock(&server_seen_.mu);
  EXPECT_EQ(server_seen_.frames[1].size(), big.size() + 2);
  EXPECT_EQ(server_seen_.frames[2], "3:after");
  (*client)->Abort(absl::CancelledError("done"));
  EXPECT_TRUE(absl::IsCancelled(client_seen.WaitForClose()));
}

TEST_F(FrameLoopTest, FramesSentSoonGoOutInOrderBeforeTheEndOfWriting) {
  Seen client_seen;
  auto client = client_loop_.Connect(address_, client_seen.Handlers());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Send(1, "now"));
  std::vector<std::string> expected{"1:now"};
  for (int i = 0; i < 100; ++i) {
    const auto delivery =
        i % 10 == 0 ? FrameConnection::Delivery::kNow : FrameConnection::Delivery::kSoon;
    ASSERT_TRUE((*client)->Send(2, std::to_string(i), delivery));
    expected.push_back("2:" + std::to_string(i));
  }
  (*client)->CloseWrite();  // the queued frames still go first
  ASSERT_TRUE(server_seen_.WaitForFrames(expected.size()));
  auto server_end = Accepted();
  ASSERT_NE(server_end, nullptr);
  server_end->CloseWrite();
  EXPECT_TRUE(client_seen.WaitForClose().ok());
  absl::MutexLock lock(&server_seen_.mu);
  EXPECT_EQ(server_seen_.frames, expected);
}

TEST_F(FrameLoopTest, NothingListeningBreaksTheConnectionNamingTheAddress) {
  FrameLoop other({});
  ASSERT_TRUE(other.Start().ok());
  auto port = other.Listen("127.0.0.1", [](auto) { return FrameConnection::Handlers{}; });
  ASSERT_TRUE(port.ok());
  other.Stop();  // the port is free again, nobody listens
  Seen seen;
  auto client = client_loop_.Connect("127.0.0.1:" + std::to_string(*port), seen.Handlers());
  ASSERT_TRUE(client.ok());
  const absl::Status status = seen.WaitForClose();
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("127.0.0.1:" + std::to_string(*port)), std::string::npos)
      << status;
}

TEST_F(FrameLoopTest, AbortBreaksBothEnds) {
  Seen client_seen;
  auto client = client_loop_.Connect(address_, client_seen.Handlers());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Send(1, "x"));
  ASSERT_TRUE(server_seen_.WaitForFrames(1));
  (*client)->Abort(absl::CancelledError("given up"));
  EXPECT_TRUE(absl::IsCancelled(client_seen.WaitForClose()));
  const absl::Status server_side = server_seen_.WaitForClose();
  EXPECT_TRUE(absl::IsUnavailable(server_side)) << server_side;  // reset, not a clean end
}

TEST_F(FrameLoopTest, AFrameOverTheLimitBreaksTheConnection) {
  FrameLoop small({.max_frame_bytes = 1024});
  ASSERT_TRUE(small.Start().ok());
  Seen seen;
  auto port = small.Listen("127.0.0.1", [&](std::shared_ptr<FrameConnection> c) {
    c->MarkAuthenticated();
    return seen.Handlers();
  });
  ASSERT_TRUE(port.ok());
  Seen client_seen;
  auto client = client_loop_.Connect("127.0.0.1:" + std::to_string(*port), client_seen.Handlers());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE((*client)->Send(1, std::string(2048, 'x')));
  const absl::Status status = seen.WaitForClose();
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_TRUE(absl::IsUnavailable(client_seen.WaitForClose()));  // the sender sees it broke
  absl::MutexLock lock(&seen.mu);
  EXPECT_TRUE(seen.frames.empty());
  small.Stop();
}

// --- ReadHere: the waiting thread reads ------------------------------------

TEST_F(FrameLoopTest, AThreadInReadHereRunsTheHandlersOfWhatArrivesThenTheLoopReadsAgain) {
  Seen client_seen;
  auto client = Greeted(client_seen);
  ASSERT_NE(client, nullptr);
  auto server_end = Accepted();
  ASSERT_NE(server_end, nullptr);

  // The answer is sent once this thread is reading (or about to).
  std::thread answerer([&] {
    absl::SleepFor(absl::Milliseconds(20));
    ASSERT_TRUE(server_end->Send(7, "answer"));
  });
  const auto result = client->ReadHere(ReadWaker::ForThisThread(), absl::Now() + absl::Seconds(10),
                                       [&] { return client_seen.Count() >= 1; });
  answerer.join();
  EXPECT_EQ(result, FrameConnection::ReadHereResult::kSatisfied);
  {
    absl::MutexLock lock(&client_seen.mu);
    ASSERT_EQ(client_seen.frames, std::vector<std::string>{"7:answer"});
    EXPECT_EQ(client_seen.frame_threads[0], std::this_thread::get_id());
  }
  // Reading is the loop's again.
  ASSERT_TRUE(server_end->Send(8, "later"));
  ASSERT_TRUE(client_seen.WaitForFrames(2));
  {
    absl::MutexLock lock(&client_seen.mu);
    EXPECT_NE(client_seen.frame_threads[1], std::this_thread::get_id());
  }
  server_end->CloseWrite();
  client->CloseWrite();
  EXPECT_TRUE(client_seen.WaitForClose().ok());
}

TEST_F(FrameLoopTest, ReadHereEndsWhenWokenAndAtItsDeadline) {
  Seen client_seen;
  auto client = Greeted(client_seen);
  ASSERT_NE(client, nullptr);
  ReadWaker &waker = ReadWaker::ForThisThread();

  const absl::Time start = absl::Now();
  EXPECT_EQ(client->ReadHere(waker, start + absl::Milliseconds(50), [] { return false; }),
            FrameConnection::ReadHereResult::kDeadline);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));

  std::thread waking([&] {
    absl::SleepFor(absl::Milliseconds(20));
    waker.Wake();
  });
  EXPECT_EQ(client->ReadHere(waker, absl::Now() + absl::Seconds(10), [] { return false; }),
            FrameConnection::ReadHereResult::kWoken);
  waking.join();
  waker.Wake();  // on its own thread: nothing to wake
  EXPECT_EQ(client->ReadHere(waker, absl::Now() + absl::Milliseconds(10), [] { return false; }),
            FrameConnection::ReadHereResult::kDeadline);
  AbortAndWait(*client, client_seen);
}

TEST_F(FrameLoopTest, AnAbortDuringReadHereEndsItAndTheLoopClosesTheConnectionAfter) {
  Seen client_seen;
  auto client = Greeted(client_seen);
  ASSERT_NE(client, nullptr);
  std::thread aborter([&] {
    absl::SleepFor(absl::Milliseconds(20));
    client->Abort(absl::CancelledError("given up"));
  });
  EXPECT_EQ(client->ReadHere(ReadWaker::ForThisThread(), absl::Now() + absl::Seconds(10),
                             [] { return false; }),
            FrameConnection::ReadHereResult::kWoken);
  aborter.join();
  EXPECT_TRUE(absl::IsCancelled(client_seen.WaitForClose()));
  // Broken: not read here any more.
  EXPECT_EQ(
      client->ReadHere(ReadWaker::ForThisThread(), absl::InfiniteFuture(), [] { return false; }),
      FrameConnection::ReadHereResult::kNotNow);
}

TEST_F(FrameLoopTest, ThePeersEndDuringReadHereIsToldHereAndTheConnectionClosesCleanly) {
  Seen client_seen;
  auto client = Greeted(client_seen);
  ASSERT_NE(client, nullptr);
  auto server_end = Accepted();
  ASSERT_NE(server_end, nullptr);
  client->CloseWrite();
  ASSERT_TRUE(server_end->Send(2, "last"));
  server_end->CloseWrite();
  const auto result = client->ReadHere(ReadWaker::ForThisThread(), absl::Now() + absl::Seconds(10),
                                       [] { return false; });
  // Either this thread saw the end, or the loop read it first.
  EXPECT_EQ(result, FrameConnection::ReadHereResult::kNotNow);
  EXPECT_TRUE(client_seen.WaitForClose().ok());
  absl::MutexLock lock(&client_seen.mu);
  EXPECT_EQ(client_seen.frames, std::vector<std::string>{"2:last"});
  EXPECT_TRUE(client_seen.read_ended);
}

TEST_F(FrameLoopTest, TwoThreadsNeverReadOneConnectionAtOnce) {
  Seen client_seen;
  auto client = Greeted(client_seen);
  ASSERT_NE(client, nullptr);
  auto server_end = Accepted();
  ASSERT_NE(server_end, nullptr);
  constexpr int kFrames = 2000;
  std::atomic<bool> stop{false};
  auto reader = [&] {
    while (!stop.load()) {
      (void)client->ReadHere(ReadWaker::ForThisThread(), absl::Now() + absl::Milliseconds(5),
                             [&] { return client_seen.Count() % 7 == 0; });
    }
  };
  std::thread first(reader);
  std::thread second(reader);
  for (int i = 0; i < kFrames; ++i) ASSERT_TRUE(server_end->Send(2, std::to_string(i)));
  const bool all = client_seen.WaitForFrames(kFrames);
  stop = true;
  first.join();
  second.join();
  AbortAndWait(*client, client_seen);
  ASSERT_TRUE(all);
  absl::MutexLock lock(&client_seen.mu);
  for (int i = 0; i < kFrames; ++i) ASSERT_EQ(client_seen.frames[i], "2:" + std::to_string(i));
}

TEST(FrameLoopAddressTest, AnAddressWithoutAPortIsRefused) {
  FrameLoop loop({});
  ASSERT_TRUE(loop.Start().ok());
  EXPECT_TRUE(absl::IsInvalidArgument(loop.Connect("no-port", {}).status()));
  loop.Stop();
}

}  // namespace
}  // namespace sunray::rpc
