#include "src/worker/reference_counter.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "src/core/object_error.h"

namespace sunray {
namespace {

constexpr char kMe[] = "10.0.0.1:1000";
constexpr char kOwner[] = "10.0.0.2:2000";
constexpr char kBorrower[] = "10.0.0.3:3000";

// The other processes, as the reference counter sees them: records every
// call; asynchronous ones wait until the test completes them.
class FakeOwners : public OwnerClient {
 public:
  struct Removal {
    std::string owner, id, borrower;
    int64_t count;
  };

  absl::Status AddBorrower(const std::string &owner, const std::string &id,
                           const std::string &borrower) override {
    absl::MutexLock lock(&mu_);
    add_borrower_calls_.push_back(owner + " " + id + " " + borrower);
    return add_borrower_answer_;
  }
  void RemoveBorrower(const std::string &owner, const std::string &id, const std::string &borrower,
                      int64_t count) override {
    absl::MutexLock lock(&mu_);
    removals_.push_back({owner, id, borrower, count});
  }
  void WatchExit(const std::string &address, std::function<void(absl::Status)> done) override {
    absl::MutexLock lock(&mu_);
    watches_[address].push_back(std::move(done));
  }
  void GetOwnedObject(const std::string &owner, const std::string &id,
                      std::function<void(absl::StatusOr<proto::ObjectValue>)> done) override {
    absl::MutexLock lock(&mu_);
    fetches_.push_back({owner + " " + id, std::move(done)});
  }

  void AnswerAddBorrowerWith(absl::Status status) {
    absl::MutexLock lock(&mu_);
    add_borrower_answer_ = std::move(status);
  }
  std::vector<std::string> add_borrower_calls() {
    absl::MutexLock lock(&mu_);
    return add_borrower_calls_;
  }
  std::vector<Removal> removals() {
    absl::MutexLock lock(&mu_);
    return removals_;
  }
  size_t watches(const std::string &address) {
    absl::MutexLock lock(&mu_);
    return watches_[address].size();
  }
  size_t fetches() {
    absl::MutexLock lock(&mu_);
    return fetches_.size();
  }
  // Ends the oldest watch of `address` (as when that process exits).
  void EndWatch(const std::string &address, absl::Status status) {
    std::function<void(absl::Status)> done;
    {
      absl::MutexLock lock(&mu_);
      done = std::move(watches_[address].front());
      watches_[address].pop_front();
    }
    done(std::move(status));
  }
  // Answers the oldest fetch.
  void AnswerFetch(absl::StatusOr<proto::ObjectValue> value) {
    std::function<void(absl::StatusOr<proto::ObjectValue>)> done;
    {
      absl::MutexLock lock(&mu_);
      done = std::move(fetches_.front().second);
      fetches_.pop_front();
    }
    done(std::move(value));
  }

 private:
  absl::Mutex mu_;
  absl::Status add_borrower_answer_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> add_borrower_calls_ ABSL_GUARDED_BY(mu_);
  std::vector<Removal> removals_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::deque<std::function<void(absl::Status)>>> watches_
      ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<std::string, std::function<void(absl::StatusOr<proto::ObjectValue>)>>>
      fetches_ ABSL_GUARDED_BY(mu_);
};

proto::ObjectValue Data(const std::string &data) {
  proto::ObjectValue value;
  value.set_data(data);
  return value;
}

class ReferenceCounterTest : public testing::Test {
 protected:
  // An object owned here, sealed, with one local reference (an ObjectRef).
  void Own(const std::string &id) {
    store_.CreatePending(id);
    MemoryStore::Value value;
    value.data = std::make_shared<SharedSbufferObject>(std::make_shared<msgpack::sbuffer>());
    ASSERT_TRUE(store_.Seal(id, std::move(value), {}));
    refs_.AddLocalReference(id);
  }

  MemoryStore store_;
  FakeOwners owners_;
  ReferenceCounter refs_{kMe, &store_, &owners_};
};

TEST_F(ReferenceCounterTest, AnOwnedObjectIsFreedWithItsLastLocalReference) {
  Own("a");
  refs_.AddLocalReference("a");
  EXPECT_EQ(refs_.OwnerOf("a"), kMe);
  refs_.RemoveLocalReference("a");
  EXPECT_TRUE(store_.Contains("a"));
  refs_.RemoveLocalReference("a");
  EXPECT_FALSE(store_.Contains("a"));
  EXPECT_EQ(refs_.OwnerOf("a"), "");
}

TEST_F(ReferenceCounterTest, ABorrowerRegistersOnceAndReleasesEveryRegistrationWithItsLastRef) {
  refs_.AddBorrowedReference("b", kOwner);
  refs_.AddBorrowedReference("b", kOwner);  // registered already: no second call
  refs_.AddBorrowed("b", kOwner, 1);        // a ref inside a result, registered for us
  EXPECT_EQ(owners_.add_borrower_calls(),
            std::vector<std::string>{std::string(kOwner) + " b " + kMe});
  EXPECT_EQ(refs_.OwnerOf("b"), kOwner);
  EXPECT_EQ(refs_.LocalCountForTest("b"), 3);
  EXPECT_EQ(refs_.RegistrationsForTest("b"), 2);

  refs_.RemoveLocalReference("b");
  refs_.RemoveLocalReference("b");
  EXPECT_TRUE(owners_.removals().empty());
  refs_.RemoveLocalReference("b");
  auto removals = owners_.removals();
  ASSERT_EQ(removals.size(), 1u);
  EXPECT_EQ(removals[0].owner, kOwner);
  EXPECT_EQ(removals[0].id, "b");
  EXPECT_EQ(removals[0].borrower, kMe);
  EXPECT_EQ(removals[0].count, 2);
  EXPECT_FALSE(refs_.IsBorrowed("b"));
}

TEST_F(ReferenceCounterTest, AFailedRegistrationCountsNothingAndTheRefReadsAsLost) {
  owners_.AnswerAddBorrowerWith(absl::UnavailableError("connection refused"));
  refs_.AddBorrowedReference("c", kOwner);
  EXPECT_EQ(refs_.RegistrationsForTest("c"), 0);
  auto value = refs_.BorrowedValue("c");
  ASSERT_TRUE(value.has_value());
  ASSERT_TRUE(value->is_error());
  EXPECT_EQ(value->error().type(), proto::OBJECT_LOST);
  EXPECT_NE(value->error().message().find(std::string("its owner at ") + kOwner +
                                          " cannot be reached (connection refused)"),
            std::string::npos)
      << value->error().message();
  // The value is known (lost): nothing is fetched.
  bool done = false;
  refs_.FetchBorrowed("c", [&] { done = true; });
  EXPECT_TRUE(done);
  EXPECT_EQ(owners_.fetches(), 0u);
  // Nothing was registered, so nothing is released at the owner.
  refs_.RemoveLocalReference("c");
  EXPECT_TRUE(owners_.removals().empty());
}

TEST_F(ReferenceCounterTest, AnOwnerThatNoLongerHasTheObjectIsNamed) {
  owners_.AnswerAddBorrowerWith(absl::NotFoundError("freed"));
  refs_.AddBorrowedReference("d", kOwner);
  auto value = refs_.BorrowedValue("d");
  ASSERT_TRUE(value.has_value());
  EXPECT_NE(value->error().message().find("no longer has it"), std::string::npos);
}

TEST_F(ReferenceCounterTest, ALaterRegistrationOutranksALostMark) {
  refs_.AddBorrowed("e", kOwner, 1);
  refs_.AddBorrowed("e", kOwner, 0);
  refs_.MarkBorrowedLost("e", "the sender could not register it");
  EXPECT_FALSE(refs_.BorrowedValue("e").has_value());  // still to be fetched
}

TEST_F(ReferenceCounterTest, ConcurrentFetchesOfOneObjectMakeOneCall) {
  refs_.AddBorrowedReference("f", kOwner);
  int done = 0;
  refs_.FetchBorrowed("f", [&] { ++done; });
  refs_.FetchBorrowed("f", [&] { ++done; });
  EXPECT_EQ(owners_.fetches(), 1u);
  EXPECT_EQ(done, 0);
  owners_.AnswerFetch(Data("value of f"));
  EXPECT_EQ(done, 2);
  ASSERT_TRUE(refs_.BorrowedValue("f").has_value());
  EXPECT_EQ(refs_.BorrowedValue("f")->data(), "value of f");
  refs_.FetchBorrowed("f", [&] { ++done; });  // here already
  EXPECT_EQ(done, 3);
  EXPECT_EQ(owners_.fetches(), 0u);
}

TEST_F(ReferenceCounterTest, AFetchFromAnUnreachableOwnerReadsAsLost) {
  refs_.AddBorrowedReference("g", kOwner);
  bool done = false;
  refs_.FetchBorrowed("g", [&] { done = true; });
  owners_.AnswerFetch(absl::UnavailableError("the owner died"));
  EXPECT_TRUE(done);
  auto value = refs_.BorrowedValue("g");
  ASSERT_TRUE(value.has_value());
  EXPECT_TRUE(value->is_error());
  EXPECT_NE(value->error().message().find("the owner died"), std::string::npos);
}

TEST_F(ReferenceCounterTest, ReleasingAnObjectWhileItIsFetchedWakesTheWaiters) {
  refs_.AddBorrowedReference("h", kOwner);
  bool done = false;
  refs_.FetchBorrowed("h", [&] { done = true; });
  refs_.RemoveLocalReference("h");
  EXPECT_TRUE(done);
  owners_.AnswerFetch(Data("too late"));  // dropped: nobody holds it
  EXPECT_FALSE(refs_.IsBorrowed("h"));
}

TEST_F(ReferenceCounterTest, ABorrowerReleasesAtMostWhatItHolds) {
  Own("i");
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "i"));
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "i"));
  EXPECT_EQ(owners_.watches(kBorrower), 1u);  // watched from its first registration
  EXPECT_EQ(refs_.BorrowerCountForTest(kBorrower, "i"), 2);
  EXPECT_EQ(refs_.ReleaseBorrower(kBorrower, "i", 5), 2);
  EXPECT_TRUE(store_.Contains("i"));  // our own ObjectRef still holds it
  EXPECT_EQ(refs_.ReleaseBorrower(kBorrower, "i", 1), 0);
  refs_.RemoveLocalReference("i");
  EXPECT_FALSE(store_.Contains("i"));
}

TEST_F(ReferenceCounterTest, AReleaseFromNobodyOrAStrangerReleasesNothing) {
  Own("j");
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "j"));
  EXPECT_EQ(refs_.ReleaseBorrower("", "j", 5), 0);
  EXPECT_EQ(refs_.ReleaseBorrower("10.9.9.9:1", "j", 5), 0);
  EXPECT_EQ(refs_.ReleaseBorrower(kMe, "j", 5), 0);
  EXPECT_EQ(refs_.ReleaseBorrower(kBorrower, "j", -3), 0);
  EXPECT_TRUE(store_.Contains("j"));
  EXPECT_EQ(refs_.BorrowerCountForTest(kBorrower, "j"), 1);
}

TEST_F(ReferenceCounterTest, AnExitedBorrowersRegistrationsAreReleased) {
  Own("k");
  Own("l");
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "k"));
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "k"));
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "l"));
  refs_.RemoveLocalReference("k");
  refs_.RemoveLocalReference("l");
  EXPECT_TRUE(store_.Contains("k"));
  EXPECT_TRUE(store_.Contains("l"));
  owners_.EndWatch(kBorrower, absl::UnavailableError("exited"));
  EXPECT_FALSE(store_.Contains("k"));
  EXPECT_FALSE(store_.Contains("l"));
  // A registration after it was seen gone starts a new watch.
  Own("m");
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "m"));
  EXPECT_EQ(owners_.watches(kBorrower), 1u);
}

TEST_F(ReferenceCounterTest, AWatchCancelledAtOurShutdownReleasesNothing) {
  Own("n");
  ASSERT_TRUE(refs_.RegisterBorrower(kBorrower, "n"));
  owners_.EndWatch(kBorrower, absl::CancelledError("shutting down"));
  EXPECT_EQ(refs_.BorrowerCountForTest(kBorrower, "n"), 1);
}

TEST_F(ReferenceCounterTest, OnlyOwnedObjectsTakeBorrowers) {
  EXPECT_FALSE(refs_.RegisterBorrower(kBorrower, "unknown"));
  Own("o");
  EXPECT_FALSE(refs_.RegisterBorrower("", "o"));
  EXPECT_EQ(owners_.watches(kBorrower), 0u);
  EXPECT_EQ(owners_.watches(""), 0u);
}

TEST_F(ReferenceCounterTest, OurOwnRegistrationIsAPlainReference) {
  Own("p");
  ASSERT_TRUE(refs_.RegisterBorrower(kMe, "p"));  // taken for a result sent to ourselves
  EXPECT_EQ(owners_.watches(kMe), 0u);
  refs_.RemoveLocalReference("p");
  EXPECT_TRUE(store_.Contains("p"));
  refs_.RemoveLocalReference("p");  // whoever took it releases it
  EXPECT_FALSE(store_.Contains("p"));
}

TEST_F(ReferenceCounterTest, RefsCopiedOnManyThreadsReleaseOnce) {
  refs_.AddBorrowedReference("q", kOwner);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 10000; ++i) {
        refs_.AddLocalReference("q");
        refs_.RemoveLocalReference("q");
      }
    });
  }
  for (auto &thread : threads) thread.join();
  EXPECT_TRUE(owners_.removals().empty());
  refs_.RemoveLocalReference("q");
  EXPECT_EQ(owners_.removals().size(), 1u);
}

}  // namespace
}  // namespace sunray
