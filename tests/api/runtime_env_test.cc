// ray::RuntimeEnv and runtime environments of tasks and actors.
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::RayRuntimeEnvException;
using sunray_test::kTimeoutMs;
using sunray_test::Throws;

using EnvVars = std::map<std::string, std::string>;

std::string ReadEnv(std::string name) {
  const char *value = std::getenv(name.c_str());
  return value == nullptr ? "<unset>" : value;
}

class Sandbox {
 public:
  static Sandbox *Create() { return new Sandbox(); }
  std::string Read(std::string name) { return ReadEnv(name); }
};

RAY_REMOTE(ReadEnv, Sandbox::Create, &Sandbox::Read);

class RuntimeEnvTest : public sunray_test::RuntimeTest {};
SUNRAY_INSTANTIATE_RUNTIMES(RuntimeEnvTest);

TEST_P(RuntimeEnvTest, NewEnvIsEmpty) {
  ray::RuntimeEnv env;
  EXPECT_TRUE(env.Empty());
  EXPECT_FALSE(env.Contains("env_vars"));
  EXPECT_EQ(env.Serialize(), "{}");
}

TEST_P(RuntimeEnvTest, SetThenGetReturnsTheValue) {
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"A", "1"}, {"B", "two"}});
  env.Set("pip", std::vector<std::string>{"requests", "numpy"});
  env.Set("working_dir", std::string("/tmp/work"));
  EXPECT_FALSE(env.Empty());
  EXPECT_TRUE(env.Contains("env_vars"));
  EXPECT_EQ(env.Get<EnvVars>("env_vars"), (EnvVars{{"A", "1"}, {"B", "two"}}));
  EXPECT_EQ(env.Get<std::vector<std::string>>("pip"),
            (std::vector<std::string>{"requests", "numpy"}));
  EXPECT_EQ(env.Get<std::string>("working_dir"), "/tmp/work");
}

TEST_P(RuntimeEnvTest, SetReplacesAField) {
  ray::RuntimeEnv env;
  env.Set("working_dir", std::string("/a"));
  env.Set("working_dir", std::string("/b"));
  EXPECT_EQ(env.Get<std::string>("working_dir"), "/b");
}

TEST_P(RuntimeEnvTest, RemoveDeletesAField) {
  ray::RuntimeEnv env;
  env.Set("working_dir", std::string("/tmp"));
  EXPECT_TRUE(env.Remove("working_dir"));
  EXPECT_FALSE(env.Contains("working_dir"));
  EXPECT_TRUE(env.Empty());
  EXPECT_FALSE(env.Remove("working_dir"));
}

TEST_P(RuntimeEnvTest, JsonStringsSetAndGetFields) {
  ray::RuntimeEnv env;
  env.SetJsonStr("pip", R"(["requests", "numpy"])");
  EXPECT_EQ(env.GetJsonStr("pip"), R"(["requests","numpy"])");
  EXPECT_EQ(env.Get<std::vector<std::string>>("pip"),
            (std::vector<std::string>{"requests", "numpy"}));
  env.Set("env_vars", EnvVars{{"K", "V"}});
  EXPECT_EQ(env.GetJsonStr("env_vars"), R"({"K":"V"})");
}

TEST_P(RuntimeEnvTest, SerializeAndDeserializeRoundTrip) {
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"X", "1"}});
  env.SetJsonStr("config", R"({"setup_timeout_seconds": 60})");
  const std::string serialized = env.Serialize();
  ray::RuntimeEnv restored = ray::RuntimeEnv::Deserialize(serialized);
  EXPECT_EQ(restored.Get<EnvVars>("env_vars"), (EnvVars{{"X", "1"}}));
  EXPECT_EQ(restored.GetJsonStr("config"), R"({"setup_timeout_seconds":60})");
  EXPECT_EQ(restored.Serialize(), serialized);
}

TEST_P(RuntimeEnvTest, RuntimeEnvInfoWrapsTheSerializedEnv) {
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"X", "1"}});
  const std::string info = env.SerializeToRuntimeEnvInfo();
  EXPECT_TRUE(sunray_test::Contains(info, "serialized_runtime_env")) << info;
  auto parsed = nlohmann::json::parse(info);
  EXPECT_EQ(parsed["serialized_runtime_env"].get<std::string>(), env.Serialize());
}

TEST_P(RuntimeEnvTest, GetOfAMissingFieldThrows) {
  ray::RuntimeEnv env;
  EXPECT_TRUE(
      Throws<RayRuntimeEnvException>([&] { env.Get<std::string>("nothing"); }, {"nothing"}));
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([&] { env.GetJsonStr("nothing"); }));
}

TEST_P(RuntimeEnvTest, GetAsTheWrongTypeThrows) {
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"A", "1"}});
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([&] { env.Get<int>("env_vars"); }, {"env_vars"}));
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([&] { env.Get<std::vector<int>>("env_vars"); }));
}

TEST_P(RuntimeEnvTest, BadJsonIsRejected) {
  ray::RuntimeEnv env;
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([&] { env.SetJsonStr("pip", "[unclosed"); }));
  EXPECT_FALSE(env.Contains("pip"));
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([] { ray::RuntimeEnv::Deserialize("{bad"); }));
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([] { ray::RuntimeEnv::Deserialize("[1, 2]"); }));
}

TEST_P(RuntimeEnvTest, TaskWithAValidEnvRuns) {
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"SUNRAY_TASK_ENV", "task-value"}});
  auto result = ray::Task(ReadEnv).SetRuntimeEnv(env).Remote(std::string("SUNRAY_TASK_ENV"));
  EXPECT_NO_THROW(result.Get(kTimeoutMs));
}

TEST_P(RuntimeEnvTest, EnvVarsAreVisibleToTheTask) {
  if (GetParam() == "local") {
    GTEST_SKIP() << "local mode runs tasks in the driver's process and does not apply env_vars";
  }
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"SUNRAY_TASK_ENV", "task-value"}});
  auto result = ray::Task(ReadEnv).SetRuntimeEnv(env).Remote(std::string("SUNRAY_TASK_ENV"));
  EXPECT_EQ(*result.Get(kTimeoutMs), "task-value");
}

TEST_P(RuntimeEnvTest, TaskWithNonStringEnvVarsFailsAtGet) {
  ray::RuntimeEnv env;
  env.SetJsonStr("env_vars", R"({"NUMBER": 1})");
  auto result = ray::Task(ReadEnv).SetRuntimeEnv(env).Remote(std::string("NUMBER"));
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([&] { result.Get(kTimeoutMs); }));
}

TEST_P(RuntimeEnvTest, TaskWithEnvVarsThatAreNotAMapFailsAtGet) {
  ray::RuntimeEnv env;
  env.SetJsonStr("env_vars", R"(["A=1"])");
  auto result = ray::Task(ReadEnv).SetRuntimeEnv(env).Remote(std::string("A"));
  EXPECT_TRUE(Throws<RayRuntimeEnvException>([&] { result.Get(kTimeoutMs); }));
}

TEST_P(RuntimeEnvTest, ActorWithAValidEnvRuns) {
  ray::RuntimeEnv env;
  env.Set("env_vars", EnvVars{{"SUNRAY_ACTOR_ENV", "actor-value"}});
  auto actor = ray::Actor(Sandbox::Create).SetRuntimeEnv(env).Remote();
  EXPECT_NO_THROW(
      actor.Task(&Sandbox::Read).Remote(std::string("SUNRAY_ACTOR_ENV")).Get(kTimeoutMs));
}

}  // namespace
