#include "src/objstore/object_store.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

namespace sunray {
namespace {

constexpr size_t kMiB = 1 << 20;

// Clients 1 to 9 are connected.
std::unique_ptr<ObjectStore> MakeStore(size_t capacity) {
  auto store = ObjectStore::Create({capacity, "sunray-test-store"});
  EXPECT_TRUE(store.ok()) << store.status();
  for (ObjectStore::ClientId client = 1; client < 10; ++client) (*store)->AddClient(client);
  return *std::move(store);
}

ObjectID RandomObject() { return ObjectID::ForTask(TaskID::FromRandom(), 1); }

TEST(ObjectStoreTest, CreateSealGetReadsWhatWasWritten) {
  auto store = MakeStore(4 * kMiB);
  const ObjectID id = RandomObject();
  auto location = store->CreateObject(id, 5, 2, /*creator=*/1);
  ASSERT_TRUE(location.ok()) << location.status();
  EXPECT_EQ(location->offset % 64, 0u);
  std::memcpy(store->segment().base() + location->offset, "helloMD", 7);
  EXPECT_TRUE(absl::IsUnavailable(store->Get(id, 2).status()));
  ASSERT_TRUE(store->Seal(id).ok());
  auto read = store->Get(id, 2);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(std::string(store->segment().base() + read->offset, 5), "hello");
  EXPECT_EQ(read->metadata_size, 2u);
  EXPECT_TRUE(store->ContainsSealed(id));
}

TEST(ObjectStoreTest, SecondMappingSeesTheSameBytesZeroCopy) {
  auto store = MakeStore(kMiB);
  const ObjectID id = RandomObject();
  auto location = store->CreateObject(id, 3, 0, 1);
  ASSERT_TRUE(location.ok());
  std::memcpy(store->segment().base() + location->offset, "abc", 3);
  ASSERT_TRUE(store->Seal(id).ok());
  // What another process does with the descriptor it receives.
  auto mapping = SharedMemorySegment::Attach(dup(store->segment().fd()));
  ASSERT_TRUE(mapping.ok()) << mapping.status();
  EXPECT_EQ(std::string((*mapping)->base() + location->offset, 3), "abc");
}

TEST(ObjectStoreTest, DuplicateCreateIsRejected) {
  auto store = MakeStore(kMiB);
  const ObjectID id = RandomObject();
  ASSERT_TRUE(store->CreateObject(id, 10, 0, 1).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(store->CreateObject(id, 10, 0, 1).status()));
}

// A retried task's worker writes the return id an earlier attempt may have
// written: it must be told apart from a real conflict.
TEST(ObjectStoreTest, CreatingAnIdAnotherClientIsWritingIsAbortedUntilItEnds) {
  auto store = MakeStore(kMiB);
  const ObjectID id = RandomObject();
  ASSERT_TRUE(store->CreateObject(id, 10, 0, 1).ok());
  auto second = store->CreateObject(id, 10, 0, 2);
  EXPECT_TRUE(absl::IsAborted(second.status())) << second.status();
  EXPECT_NE(second.status().message().find("still being written by client 1"), std::string::npos);
  store->ReleaseClient(1);  // the first writer died: its object is aborted
  ASSERT_TRUE(store->CreateObject(id, 10, 0, 2).ok());
  ASSERT_TRUE(store->Seal(id).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(store->CreateObject(id, 10, 0, 3).status()));
}

// Regression: CreateObject and GetObject with a client id nobody was given
// answered OK, so a late request of a dead client left an object that no
// one would ever seal or release.
TEST(ObjectStoreTest, ClientsThatAreNotConnectedAreRefused) {
  auto store = MakeStore(kMiB);
  const ObjectID id = RandomObject();
  auto unknown = store->CreateObject(id, 10, 0, 42);
  EXPECT_TRUE(absl::IsFailedPrecondition(unknown.status())) << unknown.status();
  EXPECT_NE(unknown.status().message().find("store client 42 is not connected"), std::string::npos);
  ASSERT_TRUE(store->CreateObject(id, 10, 0, 1).ok());
  ASSERT_TRUE(store->Seal(id).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Get(id, 42).status()));
  store->ReleaseClient(2);
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Get(id, 2).status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(store->CreateObject(RandomObject(), 10, 0, 2).status()));
  EXPECT_EQ(store->GetStats().num_objects, 1u);
}

TEST(ObjectStoreTest, ObjectLargerThanTheStoreFailsWithSizes) {
  auto store = MakeStore(kMiB);
  auto result = store->CreateObject(RandomObject(), 2 * kMiB, 0, 1);
  ASSERT_TRUE(absl::IsResourceExhausted(result.status()));
  const std::string message(result.status().message());
  EXPECT_NE(message.find("object store full"), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(2 * kMiB)), std::string::npos) << message;
  EXPECT_NE(message.find(std::to_string(kMiB)), std::string::npos) << message;
}

TEST(ObjectStoreTest, FullStoreRefusesUntilSpaceIsFreed) {
  auto store = MakeStore(kMiB);
  const ObjectID first = RandomObject();
  ASSERT_TRUE(store->CreateObject(first, 700 * 1024, 0, 1).ok());
  ASSERT_TRUE(store->Seal(first).ok());
  EXPECT_TRUE(
      absl::IsResourceExhausted(store->CreateObject(RandomObject(), 700 * 1024, 0, 1).status()));
  ASSERT_TRUE(store->Release(first, 1).ok());
  ASSERT_TRUE(store->Delete(first).ok());
  EXPECT_TRUE(store->CreateObject(RandomObject(), 700 * 1024, 0, 1).ok());
}

TEST(ObjectStoreTest, DeleteOwnedByFreesADeadOwnersObjectsOnly) {
  auto store = MakeStore(kMiB);
  const ObjectID mine = RandomObject(), pinned = RandomObject(), other = RandomObject(),
                 anonymous = RandomObject();
  for (const auto &[id, owner] : std::vector<std::pair<ObjectID, std::string>>{
           {mine, "owner:1"}, {pinned, "owner:1"}, {other, "owner:2"}, {anonymous, ""}}) {
    ASSERT_TRUE(store->CreateObject(id, 100, 0, 1, owner).ok());
    ASSERT_TRUE(store->Seal(id).ok());
    ASSERT_TRUE(store->Release(id, 1).ok());
  }
  ASSERT_TRUE(store->Get(pinned, 7).ok());  // a reader still maps it
  EXPECT_EQ(store->DeleteOwnedBy("owner:1"), 2);
  EXPECT_EQ(store->DeleteOwnedBy(""), 0);
  EXPECT_FALSE(store->ContainsSealed(mine));
  EXPECT_EQ(store->GetStats().num_objects, 3u);
  ASSERT_TRUE(store->Release(pinned, 7).ok());  // the reader is done: freed
  EXPECT_EQ(store->GetStats().num_objects, 2u);
  EXPECT_TRUE(store->ContainsSealed(other));
  EXPECT_TRUE(store->ContainsSealed(anonymous));
}

TEST(ObjectStoreTest, DeleteWaitsForPinsToBeReleased) {
  auto store = MakeStore(kMiB);
  const ObjectID id = RandomObject();
  ASSERT_TRUE(store->CreateObject(id, 100, 0, 1).ok());
  ASSERT_TRUE(store->Seal(id).ok());
  ASSERT_TRUE(store->Release(id, 1).ok());
  ASSERT_TRUE(store->Get(id, 7).ok());
  ASSERT_TRUE(store->Delete(id).ok());
  EXPECT_EQ(store->GetStats().num_objects, 1u);  // still pinned by client 7
  EXPECT_TRUE(absl::IsNotFound(store->Get(id, 8).status()));
  ASSERT_TRUE(store->Release(id, 7).ok());
  EXPECT_EQ(store->GetStats().num_objects, 0u);
  EXPECT_EQ(store->GetStats().used_bytes, 0u);
}

TEST(ObjectStoreTest, ReleaseClientDropsPinsAndAbortsUnsealedObjects) {
  auto store = MakeStore(kMiB);
  const ObjectID sealed = RandomObject();
  const ObjectID unsealed = RandomObject();
  ASSERT_TRUE(store->CreateObject(sealed, 100, 0, 1).ok());
  ASSERT_TRUE(store->Seal(sealed).ok());
  ASSERT_TRUE(store->Delete(sealed).ok());
  ASSERT_TRUE(store->CreateObject(unsealed, 100, 0, 1).ok());
  EXPECT_EQ(store->GetStats().num_objects, 2u);
  store->ReleaseClient(1);
  EXPECT_EQ(store->GetStats().num_objects, 0u);
  EXPECT_EQ(store->GetStats().used_bytes, 0u);
}

TEST(ObjectStoreTest, AbortFreesOnlyTheCreatorsUnsealedObject) {
  auto store = MakeStore(kMiB);
  const ObjectID id = RandomObject();
  ASSERT_TRUE(store->CreateObject(id, 100, 0, 1).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(store->Abort(id, 2)));
  EXPECT_TRUE(store->Abort(id, 1).ok());
  EXPECT_TRUE(absl::IsNotFound(store->Seal(id)));
}

TEST(ObjectStoreTest, ManyObjectsReuseFreedSpace) {
  auto store = MakeStore(4 * kMiB);
  for (int round = 0; round < 50; ++round) {
    std::vector<ObjectID> ids;
    for (int i = 0; i < 30; ++i) {
      ids.push_back(RandomObject());
      ASSERT_TRUE(store->CreateObject(ids.back(), 100 * 1024, 16, 1).ok()) << round << " " << i;
      ASSERT_TRUE(store->Seal(ids.back()).ok());
      ASSERT_TRUE(store->Release(ids.back(), 1).ok());
    }
    for (const auto &id : ids) ASSERT_TRUE(store->Delete(id).ok());
  }
  EXPECT_EQ(store->GetStats().used_bytes, 0u);
}

}  // namespace
}  // namespace sunray
