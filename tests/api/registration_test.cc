// RAY_REMOTE, RAY_FUNC and the function registry behind them.
#include <string>
#include <vector>

#include "runtime_fixture.h"

namespace {

using ray::internal::FunctionManager;
using ray::internal::RayException;
using sunray_test::kTimeoutMs;
using sunray_test::Throws;

int Plus(int a, int b) { return a + b; }
int OtherFunction(int a, int b) { return a - b; }
int NeverRegistered(int a) { return a; }
}  // namespace

// Outside the anonymous namespace so the dynamic symbol table names it.
int NeverRegisteredExported(int a) { return a; }

namespace {

std::string Overloaded(int x) { return "int:" + std::to_string(x); }
std::string Overloaded(std::string x) { return "string:" + x; }

class Counter {
 public:
  explicit Counter(int start) : value_(start) {}
  static Counter *FactoryCreate(int start) { return new Counter(start); }
  static Counter *FactoryCreate() { return new Counter(100); }
  static Counter *UnregisteredFactory() { return new Counter(0); }
  int Add(int x) { return value_ += x; }
  int Sub(int x) { return value_ -= x; }
  int Scale(int x) { return value_ *= x; }
  int Scale(int x, int y) { return value_ = value_ * x + y; }
  int Unregistered() { return value_; }

 private:
  int value_;
};

RAY_REMOTE(Plus, RAY_FUNC(Overloaded, int), RAY_FUNC(Overloaded, std::string));
RAY_REMOTE(RAY_FUNC(Counter::FactoryCreate, int), RAY_FUNC(Counter::FactoryCreate), &Counter::Add,
           RAY_FUNC(&Counter::Scale, int), RAY_FUNC(&Counter::Scale, int, int));
// A second RAY_REMOTE of the same function under the same name is harmless.
RAY_REMOTE(Plus);

class RegistrationTest : public sunray_test::RuntimeTest {};
SUNRAY_INSTANTIATE_RUNTIMES(RegistrationTest);

TEST_P(RegistrationTest, RegisteredNamesAreTheSourceText) {
  auto &manager = FunctionManager::Instance();
  EXPECT_EQ(manager.GetFunctionName(Plus), "Plus");
  EXPECT_EQ(manager.GetFunctionName(&Counter::Add), "&Counter::Add");
  EXPECT_EQ(manager.GetFunctionName(RAY_FUNC(Overloaded, int)), "RAY_FUNC(Overloaded, int)");
  EXPECT_EQ(manager.GetFunctionName(RAY_FUNC(Overloaded, std::string)),
            "RAY_FUNC(Overloaded, std::string)");
  EXPECT_EQ(manager.GetFunctionName(RAY_FUNC(Counter::FactoryCreate, int)),
            "RAY_FUNC(Counter::FactoryCreate, int)");
  EXPECT_EQ(manager.GetFunctionName(RAY_FUNC(Counter::FactoryCreate)),
            "RAY_FUNC(Counter::FactoryCreate)");
  EXPECT_EQ(manager.GetFunctionName(RAY_FUNC(&Counter::Scale, int, int)),
            "RAY_FUNC(&Counter::Scale, int, int)");
}

TEST_P(RegistrationTest, UnregisteredFunctionsHaveNoName) {
  auto &manager = FunctionManager::Instance();
  EXPECT_EQ(manager.GetFunctionName(NeverRegistered), "");
  EXPECT_EQ(manager.GetFunctionName(&Counter::Sub), "");
  EXPECT_EQ(manager.GetFunctionName(Counter::UnregisteredFactory), "");
}

TEST_P(RegistrationTest, RegistryFindsInvokersByName) {
  auto &manager = FunctionManager::Instance();
  EXPECT_NE(manager.GetFunction("Plus"), nullptr);
  EXPECT_NE(manager.GetFunction("RAY_FUNC(Overloaded, int)"), nullptr);
  EXPECT_NE(manager.GetMemberFunction("&Counter::Add"), nullptr);
  EXPECT_EQ(manager.GetFunction("&Counter::Add"), nullptr);
  EXPECT_EQ(manager.GetMemberFunction("Plus"), nullptr);
  EXPECT_EQ(manager.GetFunction("NoSuchFunction"), nullptr);
  EXPECT_NE(manager.GetActorDeleter("RAY_FUNC(Counter::FactoryCreate, int)"), nullptr);
  EXPECT_EQ(manager.GetActorDeleter("Plus"), nullptr);

  auto [functions, members] = manager.GetRemoteFunctions();
  EXPECT_EQ(functions.count("Plus"), 1u);
  EXPECT_EQ(functions.count("RAY_FUNC(Counter::FactoryCreate)"), 1u);
  EXPECT_EQ(members.count("&Counter::Add"), 1u);
  EXPECT_EQ(members.count("RAY_FUNC(&Counter::Scale, int)"), 1u);
}

TEST_P(RegistrationTest, InvokerRunsTheFunctionOnSerializedArguments) {
  const auto *plus = FunctionManager::Instance().GetFunction("Plus");
  ASSERT_NE(plus, nullptr);
  auto a = ray::internal::Serializer::Serialize(40);
  auto b = ray::internal::Serializer::Serialize(2);
  msgpack::sbuffer result = (*plus)({{a.data(), a.size()}, {b.data(), b.size()}});
  EXPECT_EQ(ray::internal::Serializer::Deserialize<int>(result.data(), result.size()), 42);
  EXPECT_THROW((*plus)({{a.data(), a.size()}}), std::invalid_argument);
}

TEST_P(RegistrationTest, FreeFunctionRunsAsTask) {
  EXPECT_EQ(*ray::Task(Plus).Remote(1, 2).Get(kTimeoutMs), 3);
}

TEST_P(RegistrationTest, OverloadsAreCalledThroughRayFunc) {
  EXPECT_EQ(*ray::Task(RAY_FUNC(Overloaded, int)).Remote(5).Get(kTimeoutMs), "int:5");
  EXPECT_EQ(*ray::Task(RAY_FUNC(Overloaded, std::string)).Remote(std::string("x")).Get(kTimeoutMs),
            "string:x");
}

TEST_P(RegistrationTest, OverloadedFactoriesAndMethodsWorkForActors) {
  auto from_int = ray::Actor(RAY_FUNC(Counter::FactoryCreate, int)).Remote(1);
  auto from_nothing = ray::Actor(RAY_FUNC(Counter::FactoryCreate)).Remote();
  EXPECT_EQ(*from_int.Task(&Counter::Add).Remote(1).Get(kTimeoutMs), 2);
  EXPECT_EQ(*from_nothing.Task(&Counter::Add).Remote(1).Get(kTimeoutMs), 101);
  EXPECT_EQ(*from_int.Task(RAY_FUNC(&Counter::Scale, int)).Remote(10).Get(kTimeoutMs), 20);
  EXPECT_EQ(*from_int.Task(RAY_FUNC(&Counter::Scale, int, int)).Remote(2, 1).Get(kTimeoutMs), 41);
}

TEST_P(RegistrationTest, RegisteringAnotherFunctionUnderATakenNameThrows) {
  EXPECT_TRUE(Throws<RayException>(
      [] { FunctionManager::Instance().RegisterRemoteFunction("Plus", OtherFunction); }, {"Plus"}));
  EXPECT_TRUE(Throws<RayException>(
      [] { FunctionManager::Instance().RegisterRemoteFunction("&Counter::Add", &Counter::Sub); },
      {"&Counter::Add"}));
  // The failed registrations changed nothing.
  EXPECT_EQ(FunctionManager::Instance().GetFunctionName(Plus), "Plus");
  EXPECT_EQ(FunctionManager::Instance().GetFunctionName(OtherFunction), "");
  EXPECT_EQ(*ray::Task(Plus).Remote(2, 2).Get(kTimeoutMs), 4);
}

TEST_P(RegistrationTest, RegisteringARegisteredFunctionUnderANewNameThrows) {
  EXPECT_TRUE(Throws<RayException>(
      [] { FunctionManager::Instance().RegisterRemoteFunction("PlusAgain", Plus); },
      {"PlusAgain"}));
  EXPECT_TRUE(Throws<RayException>(
      [] { FunctionManager::Instance().RegisterRemoteFunction("AddAgain", &Counter::Add); },
      {"AddAgain"}));
  EXPECT_EQ(FunctionManager::Instance().GetFunction("PlusAgain"), nullptr);
  EXPECT_EQ(FunctionManager::Instance().GetFunctionName(Plus), "Plus");
}

TEST_P(RegistrationTest, RegisteringTheSameFunctionUnderTheSameNameIsAllowed) {
  EXPECT_NO_THROW(FunctionManager::Instance().RegisterRemoteFunction("Plus", Plus));
  EXPECT_NO_THROW(
      FunctionManager::Instance().RegisterRemoteFunction("&Counter::Add", &Counter::Add));
  EXPECT_NO_THROW(ray::internal::RegisterRemoteFunctions("Plus", Plus));
  EXPECT_EQ(*ray::Task(Plus).Remote(3, 4).Get(kTimeoutMs), 7);
}

TEST_P(RegistrationTest, UnregisteredFunctionThrowsAtTask) {
  EXPECT_TRUE(Throws<RayException>([] { ray::Task(NeverRegistered); }, {"RAY_REMOTE"}));
}

TEST_P(RegistrationTest, UnregisteredFunctionErrorNamesTheFunction) {
  // The test binary is linked with -rdynamic (ENABLE_EXPORTS), as the error
  // can only name symbols the dynamic symbol table has.
  EXPECT_TRUE(Throws<RayException>([] { ray::Task(NeverRegisteredExported); },
                                   {"NeverRegisteredExported", "int (*)(int)"}));
}

TEST_P(RegistrationTest, UnregisteredFactoryThrowsAtActor) {
  EXPECT_TRUE(
      Throws<RayException>([] { ray::Actor(Counter::UnregisteredFactory); }, {"RAY_REMOTE"}));
}

TEST_P(RegistrationTest, UnregisteredMethodThrowsAtHandleTask) {
  auto counter = ray::Actor(RAY_FUNC(Counter::FactoryCreate, int)).Remote(0);
  EXPECT_TRUE(Throws<RayException>([&] { counter.Task(&Counter::Unregistered); }, {"RAY_REMOTE"}));
  EXPECT_TRUE(Throws<RayException>([&] { counter.Task(&Counter::Sub); }));
}

TEST_P(RegistrationTest, ClassNameIsDerivedFromTheRegisteredName) {
  EXPECT_EQ(FunctionManager::GetClassNameByFuncName("RAY_FUNC(Counter::Create, int)"), "Counter");
  EXPECT_EQ(FunctionManager::GetClassNameByFuncName("RAY_FUNC(Counter::FactoryCreate)"), "Counter");
  EXPECT_EQ(FunctionManager::GetClassNameByFuncName("Counter::Create"), "Counter");
  EXPECT_EQ(FunctionManager::GetClassNameByFuncName("&Counter::Add"), "Counter");
  EXPECT_EQ(FunctionManager::GetClassNameByFuncName("Create"), "");
}

TEST_P(RegistrationTest, RemoteNamesSplitAtTopLevelCommasOnly) {
  EXPECT_EQ(ray::internal::SplitRemoteFunctionNames(
                " Plus ,RAY_FUNC(Overloaded, int),  &Counter::Add,Echo<std::map<int, int>>"),
            (std::vector<std::string>{"Plus", "RAY_FUNC(Overloaded, int)", "&Counter::Add",
                                      "Echo<std::map<int, int>>"}));
}

}  // namespace
