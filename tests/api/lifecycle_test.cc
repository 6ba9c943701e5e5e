// ray::Init, ray::Shutdown, ray::IsInitialized, command-line flags and the
// job namespace.
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayException;
using sunray_test::kTimeoutMs;
using sunray_test::Latch;
using sunray_test::Throws;

Latch gate;

int LifecycleIdentity(int x) { return x; }
int LifecycleWaitForGate(int x) {
  gate.Wait();
  return x;
}

RAY_REMOTE(LifecycleIdentity, LifecycleWaitForGate);

// Unlike RuntimeTest, starts no runtime: each test calls ray::Init itself.
class LifecycleTest : public sunray_test::RuntimeScratchTest {
 protected:
  void SetUp() override {
    ray::Shutdown();
    RuntimeScratchTest::SetUp();
  }
  ray::RayConfig Config() const { return sunray_test::ConfigFor(GetParam()); }
};
SUNRAY_INSTANTIATE_RUNTIMES(LifecycleTest);

// argv as Init takes it (char **), built from strings that outlive the call.
class Argv {
 public:
  explicit Argv(std::vector<std::string> args) : args_(std::move(args)) {
    for (auto &arg : args_) pointers_.push_back(arg.data());
    pointers_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(args_.size()); }
  char **argv() { return pointers_.data(); }
  std::vector<std::string> Current() const {
    std::vector<std::string> current;
    for (int i = 0; i < argc(); ++i) current.emplace_back(pointers_[i]);
    return current;
  }

 private:
  std::vector<std::string> args_;
  std::vector<char *> pointers_;
};

TEST_P(LifecycleTest, InitStartsAndShutdownStopsTheRuntime) {
  EXPECT_FALSE(ray::IsInitialized());
  auto config = Config();
  ray::Init(config);
  EXPECT_TRUE(ray::IsInitialized());
  EXPECT_EQ(*ray::Task(LifecycleIdentity).Remote(7).Get(kTimeoutMs), 7);
  ray::Shutdown();
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_P(LifecycleTest, ShutdownWithoutInitIsHarmless) {
  ray::Shutdown();
  ray::Shutdown();
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_P(LifecycleTest, InitAgainAfterShutdownGivesAWorkingRuntime) {
  for (int round = 0; round < 3; ++round) {
    auto config = Config();
    ray::Init(config);
    ASSERT_TRUE(ray::IsInitialized());
    EXPECT_EQ(*ray::Put(round).Get(), round);
    EXPECT_EQ(*ray::Task(LifecycleIdentity).Remote(round).Get(kTimeoutMs), round);
    ray::Shutdown();
    EXPECT_FALSE(ray::IsInitialized());
  }
}

TEST_P(LifecycleTest, SecondInitIsANoOp) {
  auto first = Config();
  first.ray_namespace = "first_namespace";
  ray::Init(first);
  auto kept = ray::Put(std::string("kept"));
  auto second = Config();
  second.ray_namespace = "second_namespace";
  ray::Init(second);
  EXPECT_TRUE(ray::IsInitialized());
  EXPECT_EQ(ray::GetNamespace(), "first_namespace");
  // Still the same runtime: its objects are there.
  EXPECT_EQ(*kept.Get(), "kept");
}

TEST_P(LifecycleTest, ParameterlessInitIsANoOpWhenRunning) {
  auto config = Config();
  config.ray_namespace = "kept_namespace";
  ray::Init(config);
  ray::Init();
  EXPECT_EQ(ray::GetNamespace(), "kept_namespace");
}

TEST_P(LifecycleTest, RemoteBeforeInitThrows) {
  EXPECT_TRUE(Throws<RayException>([] { ray::Task(LifecycleIdentity).Remote(1); }));
  EXPECT_TRUE(Throws<RayException>([] { ray::Put(1); }));
  EXPECT_TRUE(Throws<RayException>([] { ray::GetNamespace(); }));
}

TEST_P(LifecycleTest, RemoteAfterShutdownThrows) {
  auto config = Config();
  ray::Init(config);
  ray::Shutdown();
  EXPECT_TRUE(Throws<RayException>([] { ray::Task(LifecycleIdentity).Remote(1); }));
}

TEST_P(LifecycleTest, ObjectRefMayOutliveShutdown) {
  auto config = Config();
  ray::Init(config);
  auto ref = std::make_unique<ray::ObjectRef<int>>(ray::Put(5));
  auto copy = *ref;
  ray::Shutdown();
  // Copying and destroying refs without a runtime must not crash or throw.
  auto another = copy;
  ref.reset();
  EXPECT_TRUE(Throws<RayException>([&] { copy.Get(); }));
}

TEST_P(LifecycleTest, ShutdownFailsAWaitingGet) {
  auto config = Config();
  ray::Init(config);
  auto blocked = ray::Task(LifecycleWaitForGate).Remote(1);
  auto waiter = std::async(std::launch::async, [&] { blocked.Get(); });
  auto shutdown = std::async(std::launch::async, [] { ray::Shutdown(); });
  ASSERT_EQ(waiter.wait_for(std::chrono::milliseconds(kTimeoutMs)), std::future_status::ready);
  EXPECT_TRUE(Throws<RayException>([&] { waiter.get(); }));
  gate.Release();  // lets Shutdown join the task's thread
  ASSERT_EQ(shutdown.wait_for(std::chrono::milliseconds(kTimeoutMs)), std::future_status::ready);
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_P(LifecycleTest, EmptyNamespaceGivesAFreshAnonymousNamespace) {
  auto config = Config();
  ASSERT_TRUE(config.ray_namespace.empty());
  ray::Init(config);
  const std::string first = ray::GetNamespace();
  EXPECT_FALSE(first.empty());
  ray::Shutdown();
  ray::Init(config);
  const std::string second = ray::GetNamespace();
  EXPECT_FALSE(second.empty());
  EXPECT_NE(first, second);
}

TEST_P(LifecycleTest, ConfiguredNamespaceIsTheJobNamespace) {
  auto config = Config();
  config.ray_namespace = "configured_ns";
  ray::Init(config);
  EXPECT_EQ(ray::GetNamespace(), "configured_ns");
}

TEST_P(LifecycleTest, NamespaceFlagWithEqualsSignIsApplied) {
  auto config = Config();
  Argv args({"prog", "--ray_job_namespace=flag_ns"});
  ray::Init(config, args.argc(), args.argv());
  EXPECT_EQ(ray::GetNamespace(), "flag_ns");
}

TEST_P(LifecycleTest, NamespaceFlagWithSeparateValueIsApplied) {
  auto config = Config();
  Argv args({"prog", "--ray_job_namespace", "spaced_ns"});
  ray::Init(config, args.argc(), args.argv());
  EXPECT_EQ(ray::GetNamespace(), "spaced_ns");
}

TEST_P(LifecycleTest, NamespaceFlagOverridesTheConfig) {
  auto config = Config();
  config.ray_namespace = "from_config";
  Argv args({"prog", "--ray_job_namespace=from_flag"});
  ray::Init(config, args.argc(), args.argv());
  EXPECT_EQ(ray::GetNamespace(), "from_flag");
}

TEST_P(LifecycleTest, UnknownFlagsAreLeftAlone) {
  auto config = Config();
  Argv args({"prog", "--my_flag=1", "positional", "--other", "value",
             "--ray_job_namespace=mixed_ns", "-x"});
  const std::vector<std::string> before = args.Current();
  ray::Init(config, args.argc(), args.argv());
  EXPECT_TRUE(ray::IsInitialized());
  EXPECT_EQ(ray::GetNamespace(), "mixed_ns");
  EXPECT_EQ(args.Current(), before);
}

TEST_P(LifecycleTest, ValidActorLifetimeFlagsAreAccepted) {
  for (const char *value : {"detached", "non_detached"}) {
    auto config = Config();
    Argv args({"prog", std::string("--ray_default_actor_lifetime=") + value});
    ray::Init(config, args.argc(), args.argv());
    EXPECT_TRUE(ray::IsInitialized()) << value;
    ray::Shutdown();
  }
}

TEST_P(LifecycleTest, BadActorLifetimeFlagThrows) {
  auto config = Config();
  Argv args({"prog", "--ray_default_actor_lifetime=forever"});
  EXPECT_TRUE(
      Throws<RayException>([&] { ray::Init(config, args.argc(), args.argv()); }, {"forever"}));
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_P(LifecycleTest, FlagWithoutItsValueThrows) {
  auto config = Config();
  Argv args({"prog", "--ray_job_namespace"});
  EXPECT_TRUE(Throws<RayException>([&] { ray::Init(config, args.argc(), args.argv()); }));
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_P(LifecycleTest, InitWithNoArgumentsAcceptsEmptyArgv) {
  auto config = Config();
  config.ray_namespace = "no_args_ns";
  Argv args({"prog"});
  ray::Init(config, args.argc(), args.argv());
  EXPECT_EQ(ray::GetNamespace(), "no_args_ns");
}

TEST_P(LifecycleTest, BadJobRuntimeEnvMakesInitThrow) {
  auto config = Config();
  ray::RuntimeEnv env;
  env.SetJsonStr("env_vars", R"({"A": 1})");
  config.runtime_env = env;
  EXPECT_TRUE(Throws<ray::internal::RayRuntimeEnvException>([&] { ray::Init(config); }));
  EXPECT_FALSE(ray::IsInitialized());
}

TEST_P(LifecycleTest, GoodJobRuntimeEnvIsAccepted) {
  auto config = Config();
  ray::RuntimeEnv env;
  env.Set("env_vars", std::map<std::string, std::string>{{"SUNRAY_TEST_VAR", "1"}});
  config.runtime_env = env;
  ray::Init(config);
  EXPECT_TRUE(ray::IsInitialized());
}

}  // namespace
