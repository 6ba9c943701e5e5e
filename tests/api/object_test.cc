// Objects: Put, Get (with timeouts, in bulk, by raw id), Wait, and the
// lifetime of objects as ObjectRefs come and go.
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using ray::internal::RayTimeoutException;
using ray::internal::UnreconstructableException;
using sunray_test::kTimeoutMs;
using sunray_test::Latch;
using sunray_test::Throws;

Latch gate;

int ObjectIdentity(int x) { return x; }
int ObjectWaitForGate(int x) {
  gate.Wait();
  return x;
}
void ObjectVoidWaitForGate() { gate.Wait(); }
int ObjectFail(int) { throw std::runtime_error("object task failed"); }

RAY_REMOTE(ObjectIdentity, ObjectWaitForGate, ObjectVoidWaitForGate, ObjectFail);

class ObjectTest : public sunray_test::RuntimeTest {};
SUNRAY_INSTANTIATE_RUNTIMES(ObjectTest);

template <typename T>
std::vector<std::string> IdsOf(const std::list<ray::ObjectRef<T>> &refs) {
  std::vector<std::string> ids;
  for (const auto &ref : refs) ids.push_back(ref.ID());
  return ids;
}

// --- Put and Get -----------------------------------------------------------

TEST_P(ObjectTest, PutThenGetReturnsTheValue) {
  auto ref = ray::Put(std::string("stored"));
  EXPECT_EQ(*ref.Get(), "stored");
  EXPECT_EQ(*ray::Get(ref), "stored");
  EXPECT_EQ(*ray::Get(ref, kTimeoutMs), "stored");
}

TEST_P(ObjectTest, EachPutMakesANewObject) {
  auto a = ray::Put(1);
  auto b = ray::Put(1);
  EXPECT_NE(a.ID(), b.ID());
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a != b);
}

TEST_P(ObjectTest, ObjectIdsAreTwentyEightBytes) {
  EXPECT_EQ(ray::Put(1).ID().size(), 28u);
  EXPECT_EQ(ray::Task(ObjectIdentity).Remote(1).ID().size(), 28u);
}

TEST_P(ObjectTest, EqualityComparesIds) {
  auto a = ray::Put(1);
  ray::ObjectRef<int> copy = a;
  ray::ObjectRef<int> by_id(a.ID());
  EXPECT_TRUE(a == copy);
  EXPECT_TRUE(a == by_id);
  EXPECT_FALSE(a != by_id);
  EXPECT_EQ(*by_id.Get(), 1);
}

TEST_P(ObjectTest, GetTimesOutOnASlowTask) {
  auto slow = ray::Task(ObjectWaitForGate).Remote(8);
  EXPECT_TRUE(Throws<RayTimeoutException>([&] { slow.Get(30); }));
  EXPECT_TRUE(Throws<RayTimeoutException>([&] { ray::Get(slow, 30); }));
  EXPECT_TRUE(Throws<RayTimeoutException>([&] { ray::Get(std::vector{slow}, 30); }));
  EXPECT_TRUE(
      Throws<RayTimeoutException>([&] { ray::Get<int>(std::vector<std::string>{slow.ID()}, 30); }));
  EXPECT_TRUE(Throws<RayTimeoutException>([&] { slow.Get(0); }));
  gate.Release();
  EXPECT_EQ(*slow.Get(kTimeoutMs), 8);
}

TEST_P(ObjectTest, VoidGetTimesOutOnASlowTask) {
  auto slow = ray::Task(ObjectVoidWaitForGate).Remote();
  EXPECT_TRUE(Throws<RayTimeoutException>([&] { slow.Get(30); }));
  gate.Release();
  EXPECT_NO_THROW(slow.Get(kTimeoutMs));
}

TEST_P(ObjectTest, GetOfAVectorReturnsValuesInOrder) {
  std::vector<ray::ObjectRef<int>> refs;
  for (int i = 0; i < 10; ++i) {
    refs.push_back(i % 2 == 0 ? ray::Put(i) : ray::Task(ObjectIdentity).Remote(i));
  }
  auto values = ray::Get(refs);
  ASSERT_EQ(values.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(*values[i], i);
  auto again = ray::Get(refs, kTimeoutMs);
  ASSERT_EQ(again.size(), 10u);
  EXPECT_EQ(*again[9], 9);
  EXPECT_TRUE(ray::Get(std::vector<ray::ObjectRef<int>>{}).empty());
}

TEST_P(ObjectTest, GetByRawIdsReturnsValuesInOrder) {
  auto a = ray::Put(std::string("a"));
  auto b = ray::Put(std::string("b"));
  auto values = ray::Get<std::string>(std::vector<std::string>{b.ID(), a.ID(), b.ID()});
  ASSERT_EQ(values.size(), 3u);
  EXPECT_EQ(*values[0], "b");
  EXPECT_EQ(*values[1], "a");
  EXPECT_EQ(*values[2], "b");
  EXPECT_EQ(*ray::Get<std::string>(std::vector<std::string>{a.ID()}, kTimeoutMs)[0], "a");
}

TEST_P(ObjectTest, GetOfAVectorThrowsTheErrorOfAFailedObject) {
  std::vector<ray::ObjectRef<int>> refs{ray::Put(1), ray::Task(ObjectFail).Remote(0)};
  EXPECT_TRUE(Throws<ray::internal::RayTaskException>([&] { ray::Get(refs, kTimeoutMs); },
                                                      {"object task failed"}));
}

TEST_P(ObjectTest, GetOfAnUnknownIdThrowsUnreconstructable) {
  EXPECT_TRUE(Throws<UnreconstructableException>(
      [] { ray::Get<int>(std::vector<std::string>{std::string(28, '\x01')}, kTimeoutMs); }));
}

// --- Wait ------------------------------------------------------------------

TEST_P(ObjectTest, WaitKeepsTheInputOrderInBothLists) {
  std::vector<ray::ObjectRef<int>> refs{ray::Task(ObjectWaitForGate).Remote(0), ray::Put(1),
                                        ray::Task(ObjectWaitForGate).Remote(2),
                                        ray::Task(ObjectIdentity).Remote(3), ray::Put(4)};
  ray::WaitResult<int> result = ray::Wait(refs, 3, kTimeoutMs);
  EXPECT_EQ(IdsOf(result.ready),
            (std::vector<std::string>{refs[1].ID(), refs[3].ID(), refs[4].ID()}));
  EXPECT_EQ(IdsOf(result.unready), (std::vector<std::string>{refs[0].ID(), refs[2].ID()}));
  gate.Release();
  result = ray::Wait(refs, 5, kTimeoutMs);
  EXPECT_EQ(result.ready.size(), 5u);
  EXPECT_TRUE(result.unready.empty());
  EXPECT_EQ(IdsOf(result.ready), IdsOf(std::list<ray::ObjectRef<int>>(refs.begin(), refs.end())));
}

TEST_P(ObjectTest, WaitReturnsOnceEnoughObjectsAreReady) {
  std::vector<ray::ObjectRef<int>> refs{ray::Put(0), ray::Task(ObjectWaitForGate).Remote(1),
                                        ray::Task(ObjectIdentity).Remote(2)};
  // Returns without the blocked one, long before the generous timeout.
  auto result = ray::Wait(refs, 2, kTimeoutMs);
  EXPECT_GE(result.ready.size(), 2u);
  EXPECT_EQ(result.ready.size() + result.unready.size(), 3u);
  ASSERT_EQ(result.unready.size(), 1u);
  EXPECT_EQ(result.unready.front(), refs[1]);
}

TEST_P(ObjectTest, WaitTimeoutReturnsAPartialResult) {
  std::vector<ray::ObjectRef<int>> refs{ray::Put(0), ray::Task(ObjectWaitForGate).Remote(1)};
  ray::WaitResult<int> result;
  ASSERT_NO_THROW(result = ray::Wait(refs, 2, 30));
  EXPECT_EQ(IdsOf(result.ready), std::vector<std::string>{refs[0].ID()});
  EXPECT_EQ(IdsOf(result.unready), std::vector<std::string>{refs[1].ID()});
}

TEST_P(ObjectTest, WaitForZeroObjectsReturnsAtOnce) {
  std::vector<ray::ObjectRef<int>> refs{ray::Task(ObjectWaitForGate).Remote(1)};
  auto result = ray::Wait(refs, 0, -1);
  EXPECT_TRUE(result.ready.empty());
  EXPECT_EQ(result.unready.size(), 1u);
}

TEST_P(ObjectTest, WaitCountsFailedObjectsAsReady) {
  std::vector<ray::ObjectRef<int>> refs{ray::Task(ObjectFail).Remote(0)};
  auto result = ray::Wait(refs, 1, kTimeoutMs);
  EXPECT_EQ(result.ready.size(), 1u);
}

TEST_P(ObjectTest, WaitForMoreObjectsThanGivenThrows) {
  std::vector<ray::ObjectRef<int>> refs{ray::Put(0), ray::Put(1)};
  EXPECT_TRUE(Throws<RayException>([&] { ray::Wait(refs, 3, kTimeoutMs); }));
  EXPECT_TRUE(Throws<RayException>([&] { ray::Wait(refs, -1, kTimeoutMs); }));
}

// --- ObjectRef copies and object lifetime ----------------------------------

TEST_P(ObjectTest, CopiesAndMovesKeepTheValueReachable) {
  auto original = std::make_unique<ray::ObjectRef<int>>(ray::Put(11));
  const std::string id = original->ID();
  ray::ObjectRef<int> copy(*original);
  ray::ObjectRef<int> assigned;
  assigned = copy;
  ray::ObjectRef<int> moved(std::move(copy));
  EXPECT_TRUE(copy.ID().empty());
  ray::ObjectRef<int> move_assigned;
  move_assigned = std::move(assigned);
  EXPECT_TRUE(assigned.ID().empty());
  original.reset();
  EXPECT_EQ(moved.ID(), id);
  EXPECT_EQ(*moved.Get(), 11);
  EXPECT_EQ(*move_assigned.Get(), 11);
}

TEST_P(ObjectTest, ObjectIsFreedWhenItsLastRefGoes) {
  std::string id;
  {
    auto ref = ray::Put(21);
    id = ref.ID();
    auto copy = std::make_unique<ray::ObjectRef<int>>(ref);
    {
      ray::ObjectRef<int> dropped = ref;  // a short-lived extra copy
    }
    EXPECT_EQ(*ray::Get<int>(std::vector<std::string>{id})[0], 21);
    ray::ObjectRef<int> released = std::move(ref);
    released = ray::ObjectRef<int>();  // assignment releases the old object
    // `copy` still holds it.
    EXPECT_EQ(*ray::Get<int>(std::vector<std::string>{id})[0], 21);
    copy.reset();
    EXPECT_TRUE(Throws<UnreconstructableException>(
        [&] { ray::Get<int>(std::vector<std::string>{id}, kTimeoutMs); }));
  }
}

TEST_P(ObjectTest, TaskResultIsFreedWhenItsRefGoes) {
  std::string id;
  {
    auto ref = ray::Task(ObjectIdentity).Remote(4);
    EXPECT_EQ(*ref.Get(kTimeoutMs), 4);
    id = ref.ID();
  }
  EXPECT_TRUE(Throws<UnreconstructableException>(
      [&] { ray::Get<int>(std::vector<std::string>{id}, kTimeoutMs); }));
}

TEST_P(ObjectTest, CopyAssignmentReleasesTheOverwrittenObject) {
  auto first = ray::Put(1);
  const std::string first_id = first.ID();
  auto second = ray::Put(2);
  first = second;
  EXPECT_EQ(*first.Get(), 2);
  EXPECT_TRUE(Throws<UnreconstructableException>(
      [&] { ray::Get<int>(std::vector<std::string>{first_id}, kTimeoutMs); }));
}

TEST_P(ObjectTest, RefInsideAPutValueKeepsItsObjectAlive) {
  auto inner = std::make_unique<ray::ObjectRef<int>>(ray::Put(33));
  const std::string inner_id = inner->ID();
  auto outer = std::make_unique<ray::ObjectRef<std::vector<ray::ObjectRef<int>>>>(
      ray::Put(std::vector<ray::ObjectRef<int>>{*inner}));
  inner.reset();  // only the outer value refers to it now
  EXPECT_EQ(*ray::Get<int>(std::vector<std::string>{inner_id}, kTimeoutMs)[0], 33);
  auto unpacked = outer->Get();
  ASSERT_EQ(unpacked->size(), 1u);
  EXPECT_EQ(*(*unpacked)[0].Get(), 33);
  unpacked.reset();
  outer.reset();  // the last holder of the inner object goes
  EXPECT_TRUE(Throws<UnreconstructableException>(
      [&] { ray::Get<int>(std::vector<std::string>{inner_id}, kTimeoutMs); }));
}

TEST_P(ObjectTest, RefDeserializedFromAValueKeepsItsObjectAlive) {
  auto inner = std::make_unique<ray::ObjectRef<int>>(ray::Put(44));
  const std::string inner_id = inner->ID();
  auto outer = std::make_unique<ray::ObjectRef<std::vector<ray::ObjectRef<int>>>>(
      ray::Put(std::vector<ray::ObjectRef<int>>{*inner}));
  inner.reset();
  ray::ObjectRef<int> borrowed = outer->Get()->at(0);
  outer.reset();  // the outer object and its hold on the inner one are gone
  EXPECT_EQ(*borrowed.Get(), 44);
  EXPECT_EQ(borrowed.ID(), inner_id);
}

}  // namespace
