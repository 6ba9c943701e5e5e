// Actors: creation, method calls, ordering, concurrency, inheritance,
// handles as values, named actors and creation options.
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using sunray_test::kTimeoutMs;
using sunray_test::Latch;
using sunray_test::Throws;

Latch gate;

int ActorPlus(int a, int b) { return a + b; }
int ActorWaitForGate(int x) {
  gate.Wait();
  return x;
}

class Accumulator {
 public:
  explicit Accumulator(int start) : value_(start) {}
  static Accumulator *Create(int start) { return new Accumulator(start); }
  static Accumulator *CreateEmpty() { return new Accumulator(0); }

  int Add(int x) { return value_ += x; }
  int Value() const { return value_; }
  void Reset() { value_ = 0; }
  void Append(int x) { items_.push_back(x); }
  std::vector<int> Items() const { return items_; }
  std::string Join(const std::string &separator, std::vector<std::string> &&parts) {
    std::string joined;
    for (size_t i = 0; i < parts.size(); ++i) joined += (i ? separator : "") + parts[i];
    return joined;
  }
  // Returns only once a second call is inside too (or after 5 s).
  bool Rendezvous() {
    std::unique_lock lock(mu_);
    ++arrived_;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::seconds(5), [this] { return arrived_ >= 2; });
  }
  int AddThroughTask(int x) { return value_ = *ray::Task(ActorPlus).Remote(value_, x).Get(); }

 private:
  int value_;
  std::vector<int> items_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
};

class Animal {
 public:
  virtual ~Animal() = default;
  static Animal *Create() { return new Animal(); }
  virtual std::string Sound() const { return "..."; }
  int Legs() const { return legs_; }

 protected:
  int legs_ = 4;
};

class Dog : public Animal {
 public:
  static Dog *Create(int legs) {
    auto *dog = new Dog();
    dog->legs_ = legs;
    return dog;
  }
  std::string Sound() const override { return "woof"; }
  std::string Fetch(const std::string &thing) { return "fetched " + thing; }
};

int AddThroughHandle(ray::ActorHandle<Accumulator> handle, int x) {
  return *handle.Task(&Accumulator::Add).Remote(x).Get();
}
ray::ActorHandle<Accumulator> SpawnAccumulator(int start) {
  return ray::Actor(Accumulator::Create).Remote(start);
}

RAY_REMOTE(ActorPlus, ActorWaitForGate, AddThroughHandle, SpawnAccumulator);
RAY_REMOTE(Accumulator::Create, Accumulator::CreateEmpty, &Accumulator::Add, &Accumulator::Value,
           &Accumulator::Reset, &Accumulator::Append, &Accumulator::Items, &Accumulator::Join,
           &Accumulator::Rendezvous, &Accumulator::AddThroughTask);
RAY_REMOTE(Animal::Create, Dog::Create, &Animal::Sound, &Animal::Legs, &Dog::Fetch);

class ActorTest : public sunray_test::RuntimeTest {};
SUNRAY_INSTANTIATE_RUNTIMES(ActorTest);

// --- Creation and calls ----------------------------------------------------

TEST_P(ActorTest, MethodCallsSeeTheConstructorArguments) {
  ray::ActorHandle<Accumulator> actor = ray::Actor(Accumulator::Create).Remote(10);
  EXPECT_FALSE(actor.ID().empty());
  EXPECT_EQ(*actor.Task(&Accumulator::Add).Remote(5).Get(kTimeoutMs), 15);
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 15);
}

TEST_P(ActorTest, FactoryWithoutArgumentsWorks) {
  auto actor = ray::Actor(Accumulator::CreateEmpty).Remote();
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 0);
}

TEST_P(ActorTest, ConstructorTakesAnObjectRefArgument) {
  auto actor = ray::Actor(Accumulator::Create).Remote(ray::Put(7));
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 7);
}

TEST_P(ActorTest, ConstructorWaitsForAnUnfinishedObjectRefArgument) {
  auto actor = ray::Actor(Accumulator::Create).Remote(ray::Task(ActorWaitForGate).Remote(3));
  auto value = actor.Task(&Accumulator::Value).Remote();
  EXPECT_TRUE(Throws<ray::internal::RayTimeoutException>([&] { value.Get(50); }));
  gate.Release();
  EXPECT_EQ(*value.Get(kTimeoutMs), 3);
}

TEST_P(ActorTest, StateIsKeptBetweenCalls) {
  auto actor = ray::Actor(Accumulator::Create).Remote(0);
  for (int i = 1; i <= 10; ++i) actor.Task(&Accumulator::Add).Remote(i);
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 55);
}

TEST_P(ActorTest, VoidMethodGetWaitsForTheCall) {
  auto actor = ray::Actor(Accumulator::Create).Remote(9);
  ray::ObjectRef<void> reset = actor.Task(&Accumulator::Reset).Remote();
  reset.Get(kTimeoutMs);
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 0);
}

TEST_P(ActorTest, MethodArgumentsMayBeRefsAndReferences) {
  auto actor = ray::Actor(Accumulator::Create).Remote(0);
  EXPECT_EQ(*actor.Task(&Accumulator::Add).Remote(ray::Put(4)).Get(kTimeoutMs), 4);
  EXPECT_EQ(
      *actor.Task(&Accumulator::Add).Remote(ray::Task(ActorPlus).Remote(1, 1)).Get(kTimeoutMs), 6);
  EXPECT_EQ(*actor.Task(&Accumulator::Join)
                 .Remote(std::string(","), std::vector<std::string>{"a", "b", "c"})
                 .Get(kTimeoutMs),
            "a,b,c");
}

TEST_P(ActorTest, ActorMethodMaySubmitTasksAndWait) {
  auto actor = ray::Actor(Accumulator::Create).Remote(1);
  EXPECT_EQ(*actor.Task(&Accumulator::AddThroughTask).Remote(2).Get(kTimeoutMs), 3);
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 3);
}

TEST_P(ActorTest, ActorsAreIndependent) {
  auto a = ray::Actor(Accumulator::Create).Remote(0);
  auto b = ray::Actor(Accumulator::Create).Remote(100);
  a.Task(&Accumulator::Add).Remote(1);
  b.Task(&Accumulator::Add).Remote(2);
  EXPECT_NE(a.ID(), b.ID());
  EXPECT_EQ(*a.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 1);
  EXPECT_EQ(*b.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 102);
}

// --- Ordering and concurrency ---------------------------------------------

TEST_P(ActorTest, ActorCallsRunInSubmissionOrder) {
  auto actor = ray::Actor(Accumulator::Create).Remote(0);
  for (int i = 0; i < 1000; ++i) actor.Task(&Accumulator::Append).Remote(i);
  auto items = actor.Task(&Accumulator::Items).Remote().Get(kTimeoutMs);
  ASSERT_EQ(items->size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ((*items)[i], i) << "at " << i;
}

TEST_P(ActorTest, MaxConcurrencyAboveOneRunsCallsConcurrently) {
  auto actor = ray::Actor(Accumulator::Create).SetMaxConcurrency(2).Remote(0);
  auto first = actor.Task(&Accumulator::Rendezvous).Remote();
  auto second = actor.Task(&Accumulator::Rendezvous).Remote();
  EXPECT_TRUE(*first.Get(kTimeoutMs));
  EXPECT_TRUE(*second.Get(kTimeoutMs));
}

TEST_P(ActorTest, MaxConcurrencyBelowOneIsRejected) {
  EXPECT_TRUE(
      Throws<RayException>([] { ray::Actor(Accumulator::Create).SetMaxConcurrency(0).Remote(0); }));
  EXPECT_TRUE(Throws<RayException>(
      [] { ray::Actor(Accumulator::Create).SetMaxConcurrency(-1).Remote(0); }));
}

// Each of an actor's max_concurrency is a thread of its own: a number from
// a typo (or a peer) must not start a million of them.
TEST_P(ActorTest, MaxConcurrencyOverTheLimitIsRejectedNamingIt) {
  try {
    ray::Actor(Accumulator::Create).SetMaxConcurrency(1000000).Remote(0);
    ADD_FAILURE() << "no exception";
  } catch (const RayException &e) {
    EXPECT_NE(std::string(e.what()).find("over Sunray's limit of 1000"), std::string::npos)
        << e.what();
  }
  auto most = ray::Actor(Accumulator::Create).SetMaxConcurrency(1000).Remote(0);
  EXPECT_EQ(*most.Task(&Accumulator::Add).Remote(1).Get(kTimeoutMs), 1);
}

// --- Inheritance -----------------------------------------------------------

TEST_P(ActorTest, BaseClassMethodsWorkOnADerivedActor) {
  ray::ActorHandle<Dog> dog = ray::Actor(Dog::Create).Remote(3);
  EXPECT_EQ(*dog.Task(&Animal::Legs).Remote().Get(kTimeoutMs), 3);
  EXPECT_EQ(*dog.Task(&Dog::Fetch).Remote(std::string("ball")).Get(kTimeoutMs), "fetched ball");
}

TEST_P(ActorTest, BaseClassMethodDispatchesToTheOverride) {
  ray::ActorHandle<Dog> dog = ray::Actor(Dog::Create).Remote(4);
  ray::ActorHandle<Animal> animal = ray::Actor(Animal::Create).Remote();
  EXPECT_EQ(*dog.Task(&Animal::Sound).Remote().Get(kTimeoutMs), "woof");
  EXPECT_EQ(*animal.Task(&Animal::Sound).Remote().Get(kTimeoutMs), "...");
}

// --- Handles as values -----------------------------------------------------

TEST_P(ActorTest, HandlePassedToATaskReachesTheSameActor) {
  auto actor = ray::Actor(Accumulator::Create).Remote(1);
  EXPECT_EQ(*ray::Task(AddThroughHandle).Remote(actor, 2).Get(kTimeoutMs), 3);
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 3);
}

TEST_P(ActorTest, HandleReturnedFromATaskIsUsable) {
  auto handle = ray::Task(SpawnAccumulator).Remote(40).Get(kTimeoutMs);
  ASSERT_FALSE(handle->ID().empty());
  EXPECT_EQ(*handle->Task(&Accumulator::Add).Remote(2).Get(kTimeoutMs), 42);
}

TEST_P(ActorTest, HandleSurvivesPutAndGet) {
  auto actor = ray::Actor(Accumulator::Create).Remote(5);
  auto copy = ray::Put(actor).Get();
  EXPECT_EQ(copy->ID(), actor.ID());
  EXPECT_TRUE(*copy == actor);
  EXPECT_EQ(*copy->Task(&Accumulator::Add).Remote(1).Get(kTimeoutMs), 6);
}

TEST_P(ActorTest, HandleRoundTripsThroughBytes) {
  auto actor = ray::Actor(Accumulator::Create).Remote(8);
  const std::string bytes = ray::internal::GetRayRuntime()->SerializeActorHandle(actor.ID());
  auto restored = ray::ActorHandle<Accumulator>::FromBytes(bytes);
  EXPECT_EQ(restored.ID(), actor.ID());
  EXPECT_EQ(*restored.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 8);
  EXPECT_TRUE(ray::ActorHandle<Accumulator>::IsActorHandle());
}

TEST_P(ActorTest, HandleCopiesShareTheActor) {
  auto actor = ray::Actor(Accumulator::Create).Remote(0);
  ray::ActorHandle<Accumulator> copy = actor;
  ray::ActorHandle<Accumulator> by_id(actor.ID());
  copy.Task(&Accumulator::Add).Remote(1);
  by_id.Task(&Accumulator::Add).Remote(1);
  EXPECT_EQ(*actor.Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 2);
}

TEST_P(ActorTest, CallOnAnUnknownActorFailsWithActorException) {
  ray::ActorHandle<Accumulator> nobody;
  auto value = nobody.Task(&Accumulator::Value).Remote();
  EXPECT_TRUE(Throws<ray::internal::RayActorException>([&] { value.Get(kTimeoutMs); }));
}

// --- Named actors ----------------------------------------------------------

TEST_P(ActorTest, NamedActorIsFoundByName) {
  auto actor = ray::Actor(Accumulator::Create).SetName("named_accumulator").Remote(12);
  boost::optional<ray::ActorHandle<Accumulator>> found =
      ray::GetActor<Accumulator>("named_accumulator");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), actor.ID());
  EXPECT_EQ(*found->Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 12);
  auto in_namespace = ray::GetActor<Accumulator>("named_accumulator", ray::GetNamespace());
  ASSERT_TRUE(in_namespace.has_value());
  EXPECT_EQ(in_namespace->ID(), actor.ID());
}

TEST_P(ActorTest, UnknownOrEmptyNameFindsNothing) {
  EXPECT_FALSE(ray::GetActor<Accumulator>("no_such_actor").has_value());
  EXPECT_FALSE(ray::GetActor<Accumulator>("").has_value());
  EXPECT_FALSE(ray::GetActor<Accumulator>("no_such_actor", "some_namespace").has_value());
}

TEST_P(ActorTest, DuplicateNameThrows) {
  auto first = ray::Actor(Accumulator::Create).SetName("taken_name").Remote(1);
  EXPECT_TRUE(Throws<RayException>(
      [] { ray::Actor(Accumulator::Create).SetName("taken_name").Remote(2); }, {"taken_name"}));
  // The first actor keeps its name.
  auto found = ray::GetActor<Accumulator>("taken_name");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), first.ID());
}

TEST_P(ActorTest, NameInAnotherNamespaceIsSeparate) {
  auto elsewhere = ray::Actor(Accumulator::Create).SetName("spaced", "other_ns").Remote(1);
  EXPECT_FALSE(ray::GetActor<Accumulator>("spaced").has_value());
  auto found = ray::GetActor<Accumulator>("spaced", "other_ns");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), elsewhere.ID());
  // The same name is still free in the job's namespace.
  auto here = ray::Actor(Accumulator::Create).SetName("spaced").Remote(2);
  EXPECT_EQ(ray::GetActor<Accumulator>("spaced")->ID(), here.ID());
  EXPECT_EQ(ray::GetActor<Accumulator>("spaced", "other_ns")->ID(), elsewhere.ID());
}

TEST_P(ActorTest, NameIsFreedWhenTheActorIsKilled) {
  auto first = ray::Actor(Accumulator::Create).SetName("reusable").Remote(1);
  first.Kill();
  EXPECT_FALSE(ray::GetActor<Accumulator>("reusable").has_value());
  auto second = ray::Actor(Accumulator::Create).SetName("reusable").Remote(2);
  auto found = ray::GetActor<Accumulator>("reusable");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), second.ID());
  EXPECT_EQ(*found->Task(&Accumulator::Value).Remote().Get(kTimeoutMs), 2);
}

TEST_P(ActorTest, RestartingActorKeepsItsName) {
  auto actor = ray::Actor(Accumulator::Create).SetName("phoenix").SetMaxRestarts(1).Remote(1);
  actor.Kill(false);
  auto found = ray::GetActor<Accumulator>("phoenix");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->ID(), actor.ID());
}

// --- Options ---------------------------------------------------------------

TEST_P(ActorTest, CreationOptionsAreAccepted) {
  ray::RuntimeEnv env;
  env.Set("env_vars", std::map<std::string, std::string>{{"ACTOR_VAR", "1"}});
  auto actor = ray::Actor(Accumulator::Create)
                   .SetResources({{"CPU", 1}})
                   .SetResource("memory", 1024)
                   .SetMaxRestarts(-1)
                   .SetMaxTaskRetries(-1)
                   .SetRuntimeEnv(env)
                   .Remote(1);
  EXPECT_EQ(*actor.Task(&Accumulator::Add).Remote(1).Get(kTimeoutMs), 2);
}

TEST_P(ActorTest, InvalidCreationOptionsAreRejectedAtRemote) {
  EXPECT_THROW(ray::Actor(Accumulator::Create).SetResource("CPU", 0).Remote(0), RayException);
  EXPECT_THROW(ray::Actor(Accumulator::Create).SetResource("CPU", 1.5).Remote(0), RayException);
  EXPECT_THROW(ray::Actor(Accumulator::Create).SetResources({{"", 1}}).Remote(0), RayException);
  EXPECT_THROW(ray::Actor(Accumulator::Create).SetMaxRestarts(-2).Remote(0), RayException);
  EXPECT_THROW(ray::Actor(Accumulator::Create).SetMaxTaskRetries(-2).Remote(0), RayException);
}

TEST_P(ActorTest, MethodCallOptionsAreChecked) {
  auto actor = ray::Actor(Accumulator::Create).Remote(0);
  EXPECT_EQ(*actor.Task(&Accumulator::Add)
                 .SetName("add_call")
                 .SetResource("CPU", 0.5)
                 .SetResource("CPU", 0)  // ignored: the first value is kept
                 .Remote(1)
                 .Get(kTimeoutMs),
            1);
  EXPECT_EQ(*actor.Task(&Accumulator::Add).SetResources({{"CPU", 2}}).Remote(1).Get(kTimeoutMs), 2);
  EXPECT_THROW(actor.Task(&Accumulator::Add).SetResource("CPU", -1).Remote(1), RayException);
  EXPECT_THROW(actor.Task(&Accumulator::Add).SetResources({{"GPU", 2.5}}).Remote(1), RayException);
}

}  // namespace
