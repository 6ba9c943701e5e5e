// The object side against a map for a node store and a fake of the other
// processes: inline and node-store puts, taken put ids, writes in place,
// results sealed from the wire (values, errors, node-store copies, refs
// inside), Get and Wait with their deadlines, borrowed values fetched from
// their owner, frees deferred, Shutdown — with no process and no socket.
#include "src/worker/object_provider.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ray/api/ray_exception.h"
#include "src/testing/eventually.h"

namespace sunray {
namespace {

class FakeNodeStore : public NodeStore {
 public:
  absl::Status Put(const ObjectID &id, std::string_view data, const std::string &owner) override {
    absl::MutexLock lock(&mu);
    if (full) return absl::ResourceExhaustedError("object store full: 0 bytes free");
    if (taken_writes > 0) {
      --taken_writes;
      return absl::AlreadyExistsError("taken");
    }
    if (!objects.emplace(id.Binary(), std::string(data)).second) {
      return absl::AlreadyExistsError("taken");
    }
    owners[id.Binary()] = owner;
    return absl::OkStatus();
  }
  absl::Status PutIdempotent(const ObjectID &id, std::string_view data,
                             const std::string &owner) override {
    absl::MutexLock lock(&mu);
    objects.emplace(id.Binary(), std::string(data));
    owners[id.Binary()] = owner;
    return absl::OkStatus();
  }
  absl::StatusOr<char *> Create(const ObjectID &id, size_t size, const std::string &) override {
    absl::MutexLock lock(&mu);
    if (full) return absl::ResourceExhaustedError("object store full: 0 bytes free");
    if (taken_writes > 0) {
      --taken_writes;
      return absl::AlreadyExistsError("taken");
    }
    std::string &object = unsealed[id.Binary()];
    object.resize(size);
    return object.data();
  }
  absl::Status Seal(const ObjectID &id) override {
    absl::MutexLock lock(&mu);
    auto it = unsealed.find(id.Binary());
    if (it == unsealed.end()) return absl::NotFoundError("not created");
    objects[id.Binary()] = std::move(it->second);
    unsealed.erase(it);
    return absl::OkStatus();
  }
  absl::StatusOr<std::shared_ptr<ray::internal::ObjectBuffer>> Get(const ObjectID &id) override {
    absl::MutexLock lock(&mu);
    auto it = objects.find(id.Binary());
    if (it == objects.end()) return absl::NotFoundError("no such object");
    return std::make_shared<StringObject>(it->second);
  }
  absl::Status Delete(const std::vector<ObjectID> &ids) override {
    absl::MutexLock lock(&mu);
    for (const auto &id : ids) {
      objects.erase(id.Binary());
      deleted.insert(id.Binary());
    }
    return absl::OkStatus();
  }

  bool Has(const std::string &id) {
    absl::MutexLock lock(&mu);
    return objects.count(id) > 0;
  }

  absl::Mutex mu;
  std::map<std::string, std::string> objects;
  std::map<std::string, std::string> unsealed;
  std::map<std::string, std::string> owners;
  std::set<std::string> deleted;
  int taken_writes = 0;  // the next writes find their id taken
  bool full = false;
};

// Other processes: owners answer fetches when the test says so.
class FakeOwners : public OwnerClient {
 public:
  absl::Status AddBorrower(const std::string &, const std::string &, const std::string &) override {
    return absl::OkStatus();
  }
  void RemoveBorrower(const std::string &, const std::string &, const std::string &,
                      int64_t) override {}
  void WatchExit(const std::string &, std::function<void(absl::Status)>) override {}
  void GetOwnedObject(const std::string &, const std::string &id,
                      std::function<void(absl::StatusOr<proto::ObjectValue>)> done) override {
    absl::MutexLock lock(&mu);
    fetches[id] = std::move(done);
  }
  void Answer(const std::string &id, absl::StatusOr<proto::ObjectValue> value) {
    std::function<void(absl::StatusOr<proto::ObjectValue>)> done;
    {
      absl::MutexLock lock(&mu);
      done = std::move(fetches.at(id));
      fetches.erase(id);
    }
    done(std::move(value));
  }
  bool Fetching(const std::string &id) {
    absl::MutexLock lock(&mu);
    return fetches.count(id) > 0;
  }

  absl::Mutex mu;
  std::map<std::string, std::function<void(absl::StatusOr<proto::ObjectValue>)>> fetches;
};

constexpr char kMe[] = "127.0.0.1:1000";
constexpr char kOwner[] = "127.0.0.1:2000";

std::shared_ptr<msgpack::sbuffer> Bytes(size_t size, char fill = 'x') {
  auto buffer = std::make_shared<msgpack::sbuffer>();
  std::string data(size, fill);
  buffer->write(data.data(), data.size());
  return buffer;
}

std::string AsString(const std::shared_ptr<ray::internal::ObjectBuffer> &buffer) {
  return std::string(buffer->Data(), buffer->Size());
}

std::string ReturnId(int index) { return ObjectID::ForTask(TaskID::FromRandom(), index).Binary(); }

constexpr char kNodeA[] = "127.0.0.1:7000";  // this process's node
constexpr char kNodeB[] = "127.0.0.1:7001";

// Other nodes' stores: what each holds, the pulls asked of this node (which
// copy into `here`) and the deletes sent to each.
class FakeRemote : public RemoteStores {
 public:
  explicit FakeRemote(FakeNodeStore *here) : here_(here) {}
  absl::Status Pull(const std::string &id, const std::string &from,
                    const std::string &owner) override {
    absl::MutexLock lock(&mu);
    pulls.push_back(from + " " + BinaryToHex(id) + " " + owner);
    if (!refuse.ok()) return refuse;
    auto it = nodes[from].find(id);
    if (it == nodes[from].end()) return absl::NotFoundError("not at " + from);
    return here_->Put(ObjectID::FromBinary(id), it->second, owner);
  }
  void Delete(const std::string &node_address, const std::vector<std::string> &ids) override {
    absl::MutexLock lock(&mu);
    for (const auto &id : ids) {
      deletes[node_address].push_back(id);
      nodes[node_address].erase(id);
    }
  }

  absl::Mutex mu;
  std::map<std::string, std::map<std::string, std::string>> nodes;
  std::vector<std::string> pulls;
  std::map<std::string, std::vector<std::string>> deletes;
  absl::Status refuse;

 private:
  FakeNodeStore *here_;
};

class ObjectProviderTest : public ::testing::Test {
 protected:
  ~ObjectProviderTest() override {
    owned_.Shutdown();
    objects_.Shutdown();
  }

  // Runs the free actions deferred so far.
  int RunDeferred() {
    std::vector<std::function<void()>> work;
    {
      absl::MutexLock lock(&deferred_mu_);
      work.swap(deferred_);
    }
    for (auto &item : work) item();
    return static_cast<int>(work.size());
  }

  FakeNodeStore node_store_;
  FakeRemote remote_{&node_store_};
  FakeOwners owners_;
  MemoryStore owned_;
  ReferenceCounter refs_{kMe, &owned_, &owners_};
  absl::Mutex deferred_mu_;
  std::vector<std::function<void()>> deferred_;
  std::atomic<int> blocked_{0};    // guards made
  std::atomic<int> unblocked_{0};  // guards destroyed
  std::vector<std::string> results_freed_;
  ObjectProvider objects_{
      {.my_address = kMe,
       .node_address = kNodeA,
       .driver_task_id = TaskID::FromRandom(),
       .defer =
           [this](std::function<void()> work) {
             absl::MutexLock lock(&deferred_mu_);
             deferred_.push_back(std::move(work));
           },
       .blocking = [this]() -> std::shared_ptr<void> {
         ++blocked_;
         return std::shared_ptr<void>(nullptr, [this](void *) { ++unblocked_; });
       },
       .result_freed = [this](const std::string &id) { results_freed_.push_back(id); }},
      &owned_,
      &refs_,
      &node_store_,
      &remote_};
};

TEST_F(ObjectProviderTest, ASmallPutStaysInlineAndALargeOneGoesToTheNodeStore) {
  const std::string small = objects_.Put(Bytes(10, 's'), {}).value();
  const std::string large = objects_.Put(Bytes(kMaxInlineObjectBytes + 1, 'l'), {}).value();
  EXPECT_TRUE(objects_.Owns(small));
  EXPECT_TRUE(objects_.Owns(large));
  EXPECT_FALSE(node_store_.Has(small));
  EXPECT_TRUE(node_store_.Has(large));
  EXPECT_EQ(node_store_.owners[large], kMe);
  auto values = objects_.Get({small, large}, 0).value();
  EXPECT_EQ(AsString(values[0]), std::string(10, 's'));
  EXPECT_EQ(AsString(values[1]), std::string(kMaxInlineObjectBytes + 1, 'l'));
  EXPECT_EQ(blocked_, 0) << "nothing to wait for";
  proto::ObjectValue wire;
  objects_.OwnedValueToProto(large, &wire);
  EXPECT_TRUE(wire.in_store());
}

TEST_F(ObjectProviderTest, FreeingALargePutDeletesItsNodeStoreCopyLaterOffTheLock) {
  const std::string large = objects_.Put(Bytes(kMaxInlineObjectBytes + 1), {}).value();
  owned_.AddReference(large);
  EXPECT_EQ(objects_.NodeStoreCopies(), 1u);
  owned_.RemoveReference(large);
  EXPECT_FALSE(objects_.Owns(large));
  EXPECT_TRUE(node_store_.Has(large)) << "deleted later, not under the memory store's lock";
  EXPECT_EQ(RunDeferred(), 1);
  EXPECT_FALSE(node_store_.Has(large));
  EXPECT_EQ(objects_.NodeStoreCopies(), 0u);
}

TEST_F(ObjectProviderTest, APutWhoseIdAnEarlierAttemptTookDrawsAnother) {
  node_store_.taken_writes = 2;
  const std::string id = objects_.Put(Bytes(kMaxInlineObjectBytes + 1), {}).value();
  EXPECT_TRUE(node_store_.Has(id));
  EXPECT_TRUE(objects_.Owns(id));
  EXPECT_EQ(node_store_.objects.size(), 1u);
}

TEST_F(ObjectProviderTest, APutTheStoreCannotTakeFailsWithItsReasonAndLeavesNothing) {
  node_store_.full = true;
  const absl::StatusOr<std::string> put = objects_.Put(Bytes(kMaxInlineObjectBytes + 1), {});
  ASSERT_FALSE(put.ok());
  EXPECT_NE(put.status().message().find("Put failed: object store full"), std::string::npos)
      << put.status();
  EXPECT_EQ(owned_.Size(), 0u);
  EXPECT_EQ(objects_.NodeStoreCopies(), 0u);
}

TEST_F(ObjectProviderTest, PutDirectWritesInPlaceAndAWriteThatThrowsLeavesNothing) {
  EXPECT_EQ(objects_.PutDirect(10, [](char *) {}, {}).value(), "") << "small: the caller puts it";
  const size_t size = kMaxInlineObjectBytes + 5;
  const std::string id =
      objects_.PutDirect(size, [&](char *at) { std::fill(at, at + size, 'd'); }, {}).value();
  EXPECT_EQ(AsString(objects_.Get({id}, 0).value()[0]), std::string(size, 'd'));

  EXPECT_THROW((void)objects_.PutDirect(
                   size, [](char *) { throw std::runtime_error("the writer failed"); }, {}),
               std::runtime_error);
  EXPECT_EQ(node_store_.objects.size(), 1u) << "only the first";
  EXPECT_TRUE(node_store_.unsealed.empty());
  EXPECT_EQ(owned_.Size(), 1u);
}

TEST_F(ObjectProviderTest, AGetWaitsForAResultSealedOnAnotherThreadAndCountsAsBlocked) {
  const std::string id = ReturnId(1);
  owned_.CreatePending(id);
  owned_.AddReference(id);
  std::thread answer([&] {
    // (Once the Get blocks: what it waits for comes later.)
    (void)Eventually([&] { return blocked_ > 0; });
    proto::ObjectValue value;
    value.set_data("the result");
    objects_.SealFromProto(id, value);
  });
  auto values = objects_.Get({id}, 10000).value();
  answer.join();
  EXPECT_EQ(AsString(values[0]), "the result");
  EXPECT_EQ(blocked_, 1);
  EXPECT_EQ(unblocked_, 1);
  owned_.RemoveReference(id);
}

TEST_F(ObjectProviderTest, GetTimesOutNamingTheObjectAndWaitSaysWhichAreReady) {
  const std::string pending = ReturnId(1);
  owned_.CreatePending(pending);
  owned_.AddReference(pending);
  const std::string ready = objects_.Put(Bytes(3), {}).value();
  const auto timed_out = objects_.Get({ready, pending}, 30);
  ASSERT_FALSE(timed_out.ok());
  EXPECT_TRUE(absl::IsDeadlineExceeded(timed_out.status())) << timed_out.status();
  EXPECT_NE(timed_out.status().message().find(BinaryToHex(pending)), std::string::npos)
      << timed_out.status();
  EXPECT_EQ(objects_.Wait({pending, ready}, 1, 1000), (std::vector<bool>{false, true}));
  EXPECT_EQ(objects_.Wait({pending, ready}, 2, 30), (std::vector<bool>{false, true}));
  EXPECT_EQ(objects_.Wait({pending}, 1, 0), (std::vector<bool>{false})) << "a poll";
  owned_.RemoveReference(pending);
}

TEST_F(ObjectProviderTest, AnErrorSealedFromTheWireIsWhatGetFailsWith) {
  const std::string id = ReturnId(1);
  owned_.CreatePending(id);
  owned_.AddReference(id);
  proto::ObjectValue value;
  value.set_is_error(true);
  ErrorToProto(ErrorInfo{ErrorType::kTaskExecution, "f threw", "f", "", ""}, value.mutable_error());
  objects_.SealFromProto(id, value);
  const auto failed = objects_.Get({id}, 0);
  ASSERT_FALSE(failed.ok());
  const std::optional<ErrorInfo> error = ObjectErrorOf(failed.status());
  ASSERT_TRUE(error.has_value()) << failed.status();
  EXPECT_EQ(error->type, ErrorType::kTaskExecution);
  EXPECT_EQ(error->message, "f threw");
  EXPECT_THROW(ThrowStatus(failed.status()), ray::internal::RayTaskException);
  proto::ObjectValue wire;
  objects_.OwnedValueToProto(id, &wire);
  EXPECT_TRUE(wire.is_error());
  owned_.RemoveReference(id);
}

TEST_F(ObjectProviderTest, AResultInTheNodeStoreIsReadThereAndLostWhenItIsGone) {
  const std::string id = ReturnId(1);
  owned_.CreatePending(id);
  owned_.AddReference(id);
  ASSERT_TRUE(objects_.PutResult(id, "big result", "someone").ok());
  proto::ObjectValue value;
  value.set_in_store(true);
  objects_.SealFromProto(id, value);
  EXPECT_EQ(AsString(objects_.Get({id}, 0).value()[0]), "big result");
  EXPECT_EQ(objects_.NodeStoreCopies(), 1u);

  ASSERT_TRUE(node_store_.Delete({ObjectID::FromBinary(id)}).ok());
  const auto lost = objects_.Get({id}, 0);
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.status().message().find("is lost"), std::string::npos) << lost.status();
  EXPECT_THROW(ThrowStatus(lost.status()), ray::internal::UnreconstructableException);
  owned_.RemoveReference(id);
}

TEST_F(ObjectProviderTest, ABorrowedValueIsFetchedFromItsOwner) {
  const std::string id = ReturnId(7);
  refs_.AddBorrowed(id, kOwner, 1);
  std::thread owner([&] {
    (void)Eventually([&] { return owners_.Fetching(id); });
    proto::ObjectValue value;
    value.set_data("borrowed value");
    owners_.Answer(id, value);
  });
  auto values = objects_.Get({id}, 10000).value();
  owner.join();
  EXPECT_EQ(AsString(values[0]), "borrowed value");
  refs_.RemoveLocalReference(id);
}

TEST_F(ObjectProviderTest, RefsInsideAResultAreHeldUntilItIsFreed) {
  const std::string inner_owned = objects_.Put(Bytes(3), {}).value();
  owned_.AddReference(inner_owned);  // the registration the worker made for us
  const std::string inner_borrowed = ReturnId(9);
  const std::string outer = ReturnId(1);
  owned_.CreatePending(outer);
  owned_.AddReference(outer);
  proto::ObjectValue value;
  value.set_data("holds two refs");
  for (const auto &[id, owner] :
       {std::pair{inner_owned, std::string(kMe)}, std::pair{inner_borrowed, std::string(kOwner)}}) {
    proto::ObjectRefInfo *info = value.add_contained();
    info->set_object_id(id);
    info->set_owner_address(owner);
  }
  objects_.SealFromProto(outer, value);
  EXPECT_TRUE(refs_.IsBorrowed(inner_borrowed));
  EXPECT_TRUE(objects_.Owns(inner_owned)) << "held by the outer value";

  owned_.RemoveReference(outer);
  EXPECT_FALSE(objects_.Owns(inner_owned)) << "freed with the outer value";
  EXPECT_TRUE(refs_.IsBorrowed(inner_borrowed)) << "released later, off the lock";
  RunDeferred();
  EXPECT_FALSE(refs_.IsBorrowed(inner_borrowed));
}

TEST_F(ObjectProviderTest, ShutdownDeletesTheNodeStoreCopiesAndFreesRunNoMore) {
  const std::string kept = objects_.Put(Bytes(kMaxInlineObjectBytes + 1), {}).value();
  owned_.AddReference(kept);
  const std::string freed = objects_.Put(Bytes(kMaxInlineObjectBytes + 1), {}).value();
  owned_.AddReference(freed);
  const std::string result = ReturnId(1);
  proto::ObjectValue value;
  value.set_data("v");
  owned_.CreatePending(result);
  owned_.AddReference(result);
  ASSERT_TRUE(objects_.SealFromProto(result, value, /*report_free=*/true));
  owned_.Shutdown();
  objects_.Shutdown();
  EXPECT_FALSE(node_store_.Has(kept));
  EXPECT_FALSE(node_store_.Has(freed));
  owned_.RemoveReference(freed);
  owned_.RemoveReference(result);
  EXPECT_EQ(RunDeferred(), 0) << "nothing deferred after Shutdown";
  EXPECT_TRUE(results_freed_.empty()) << "the task manager may be gone";
}

// (The task manager's lineage goes with the result it could rebuild.)
TEST_F(ObjectProviderTest, AFreedResultIsHeardOfAtOnceWhenAskedButNotAnErrorOrAPut) {
  const std::string value_id = ReturnId(1);
  const std::string error_id = ReturnId(2);
  for (const auto &id : {value_id, error_id}) {
    owned_.CreatePending(id);
    owned_.AddReference(id);
  }
  proto::ObjectValue value;
  value.set_data("v");
  EXPECT_TRUE(objects_.SealFromProto(value_id, value, /*report_free=*/true));
  proto::ObjectValue error;
  error.set_is_error(true);
  EXPECT_TRUE(objects_.SealFromProto(error_id, error, true));
  const std::string unreported = ReturnId(4);
  owned_.CreatePending(unreported);
  owned_.AddReference(unreported);
  EXPECT_TRUE(objects_.SealFromProto(unreported, value, /*report_free=*/false));
  const std::string put = objects_.Put(Bytes(3), {}).value();
  owned_.AddReference(put);
  EXPECT_TRUE(results_freed_.empty());

  for (const auto &id : {value_id, error_id, put, unreported}) owned_.RemoveReference(id);
  EXPECT_EQ(results_freed_, (std::vector<std::string>{value_id})) << "not deferred";
  EXPECT_EQ(RunDeferred(), 0);

  // A result nobody refers to any more is dropped, and heard of as freed.
  const std::string gone = ReturnId(3);
  EXPECT_FALSE(objects_.SealFromProto(gone, value, true));
  EXPECT_EQ(results_freed_.back(), gone);
}

TEST_F(ObjectProviderTest, AResultOnAnotherNodeIsPulledHereAndEveryCopyGoesWhenFreed) {
  const std::string id = ReturnId(1);
  owned_.CreatePending(id);
  owned_.AddReference(id);
  remote_.nodes[kNodeB][id] = "made on node b";
  proto::ObjectValue value;
  value.set_in_store(true);
  value.set_node_address(kNodeB);  // where its worker stored it
  objects_.SealFromProto(id, value);
  // A borrower or a task argument learns where it is and whom to tell.
  proto::ObjectValue wire;
  objects_.OwnedValueToProto(id, &wire);
  EXPECT_EQ(wire.node_address(), kNodeB);
  EXPECT_EQ(wire.owner_address(), kMe);

  EXPECT_EQ(AsString(objects_.Get({id}, 0).value()[0]), "made on node b");
  EXPECT_EQ(remote_.pulls,
            std::vector<std::string>{std::string(kNodeB) + " " + BinaryToHex(id) + " " + kMe});
  // The node that pulled tells the owner (here: this node).
  EXPECT_TRUE(objects_.AddLocation(id, kNodeA));
  EXPECT_EQ(AsString(objects_.Get({id}, 0).value()[0]), "made on node b");
  EXPECT_EQ(remote_.pulls.size(), 1u) << "read from the copy here";

  owned_.RemoveReference(id);
  RunDeferred();
  EXPECT_EQ(remote_.deletes[kNodeB], std::vector<std::string>{id});
  EXPECT_FALSE(node_store_.Has(id)) << "this node's copy too";
  EXPECT_FALSE(objects_.AddLocation(id, kNodeB)) << "freed: a late copy is deleted by its node";
}

TEST_F(ObjectProviderTest, ACopyThatCannotBePulledIsLostNamingTheNode) {
  const std::string id = ReturnId(1);
  owned_.CreatePending(id);
  owned_.AddReference(id);
  proto::ObjectValue value;
  value.set_in_store(true);
  value.set_node_address(kNodeB);
  objects_.SealFromProto(id, value);
  remote_.refuse = absl::UnavailableError("connection refused");
  const auto lost = objects_.Get({id}, 0);
  ASSERT_FALSE(lost.ok());
  EXPECT_NE(lost.status().message().find("could not be pulled from node " + std::string(kNodeB) +
                                         " (connection refused)"),
            std::string::npos)
      << lost.status();
  EXPECT_THROW(ThrowStatus(lost.status()), ray::internal::UnreconstructableException);
  owned_.RemoveReference(id);
}

TEST_F(ObjectProviderTest, ABorrowedValueOnAnotherNodeIsPulledTellingItsOwner) {
  const std::string id = ReturnId(7);
  refs_.AddBorrowed(id, kOwner, 1);
  remote_.nodes[kNodeB][id] = "borrowed bytes";
  std::thread owner([&] {
    (void)Eventually([&] { return owners_.Fetching(id); });
    proto::ObjectValue value;
    value.set_in_store(true);
    value.set_node_address(kNodeB);
    value.set_owner_address(kOwner);
    owners_.Answer(id, value);
  });
  auto values = objects_.Get({id}, 10000).value();
  owner.join();
  EXPECT_EQ(AsString(values[0]), "borrowed bytes");
  EXPECT_EQ(remote_.pulls,
            std::vector<std::string>{std::string(kNodeB) + " " + BinaryToHex(id) + " " + kOwner});
  refs_.RemoveLocalReference(id);
}

}  // namespace
}  // namespace sunray
