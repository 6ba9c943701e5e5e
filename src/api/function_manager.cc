#include "ray/api/function_manager.h"

#include <dlfcn.h>

#include <mutex>
#include <shared_mutex>
#include <unordered_map>

namespace ray {
namespace internal {

struct FunctionManager::State {
  mutable std::shared_mutex mu;
  RemoteFunctionMap_t functions;
  RemoteMemberFunctionMap_t member_functions;
  std::unordered_map<std::string, ActorDeleter> deleters;
  // Function key (pointer bits) -> registered name, and back.
  std::unordered_map<std::string, std::string> name_by_key;
  std::unordered_map<std::string, std::string> key_by_name;
};

FunctionManager &FunctionManager::Instance() {
  // Never destroyed: registrations happen during static initialization and
  // lookups may happen during static destruction of other objects.
  static FunctionManager *instance = new FunctionManager();
  return *instance;
}

FunctionManager::FunctionManager() : state_(std::make_unique<State>()) {}
FunctionManager::~FunctionManager() = default;

namespace {

// Returns true if (name, key) is already registered exactly so; throws on a
// conflicting registration.
bool CheckRegistration(const std::unordered_map<std::string, std::string> &name_by_key,
                       const std::unordered_map<std::string, std::string> &key_by_name,
                       const std::string &name, const std::string &key) {
  auto by_name = key_by_name.find(name);
  auto by_key = name_by_key.find(key);
  if (by_name != key_by_name.end() && by_name->second == key) return true;
  if (by_name != key_by_name.end()) {
    throw RayException("Duplicate RAY_REMOTE function: " + name +
                       " (another function is already registered under this name)");
  }
  if (by_key != name_by_key.end()) {
    throw RayException("Duplicate RAY_REMOTE function: " + name +
                       " (the same function is already registered as " + by_key->second + ")");
  }
  return false;
}

}  // namespace

void FunctionManager::AddFunction(const std::string &name, std::string key, RemoteFunction function,
                                  ActorDeleter deleter) {
  std::unique_lock lock(state_->mu);
  if (CheckRegistration(state_->name_by_key, state_->key_by_name, name, key)) return;
  state_->functions.emplace(name, std::move(function));
  if (deleter != nullptr) state_->deleters.emplace(name, deleter);
  state_->name_by_key.emplace(key, name);
  state_->key_by_name.emplace(name, std::move(key));
}

void FunctionManager::AddMemberFunction(const std::string &name, std::string key,
                                        RemoteMemberFunction function) {
  std::unique_lock lock(state_->mu);
  if (CheckRegistration(state_->name_by_key, state_->key_by_name, name, key)) return;
  state_->member_functions.emplace(name, std::move(function));
  state_->name_by_key.emplace(key, name);
  state_->key_by_name.emplace(name, std::move(key));
}

std::string FunctionManager::FindName(const std::string &key) const {
  std::shared_lock lock(state_->mu);
  auto it = state_->name_by_key.find(key);
  return it == state_->name_by_key.end() ? std::string() : it->second;
}

const RemoteFunction *FunctionManager::GetFunction(const std::string &name) const {
  std::shared_lock lock(state_->mu);
  auto it = state_->functions.find(name);
  return it == state_->functions.end() ? nullptr : &it->second;
}

const RemoteMemberFunction *FunctionManager::GetMemberFunction(const std::string &name) const {
  std::shared_lock lock(state_->mu);
  auto it = state_->member_functions.find(name);
  return it == state_->member_functions.end() ? nullptr : &it->second;
}

ActorDeleter FunctionManager::GetActorDeleter(const std::string &factory_name) const {
  std::shared_lock lock(state_->mu);
  auto it = state_->deleters.find(factory_name);
  return it == state_->deleters.end() ? nullptr : it->second;
}

std::pair<RemoteFunctionMap_t, RemoteMemberFunctionMap_t> FunctionManager::GetRemoteFunctions()
    const {
  std::shared_lock lock(state_->mu);
  return {state_->functions, state_->member_functions};
}

std::string FunctionManager::GetClassNameByFuncName(const std::string &function_name) {
  std::string name = function_name;
  const std::string prefix = "RAY_FUNC(";
  if (name.compare(0, prefix.size(), prefix) == 0) {
    name = name.substr(prefix.size());
    size_t end = name.find_first_of(",)");
    name = name.substr(0, end);
  }
  size_t first = name.find_first_not_of(" &");
  size_t last = name.find_last_not_of(' ');
  if (first == std::string::npos) return "";
  name = name.substr(first, last - first + 1);
  size_t scope = name.rfind("::");
  return scope == std::string::npos ? "" : name.substr(0, scope);
}

std::string SymbolNameAt(const void *address) {
  Dl_info info{};
  if (address == nullptr || dladdr(address, &info) == 0 || info.dli_sname == nullptr ||
      info.dli_saddr != address) {
    return "";
  }
  return boost::core::demangle(info.dli_sname);
}

std::vector<std::string> SplitRemoteFunctionNames(const std::string &names) {
  std::vector<std::string> result;
  std::string current;
  int depth = 0;
  auto flush = [&] {
    size_t first = current.find_first_not_of(" \t\n\r");
    size_t last = current.find_last_not_of(" \t\n\r");
    result.push_back(first == std::string::npos ? std::string()
                                                : current.substr(first, last - first + 1));
    current.clear();
  };
  for (char c : names) {
    if (c == '(' || c == '<' || c == '[' || c == '{') ++depth;
    if (c == ')' || c == '>' || c == ']' || c == '}') --depth;
    if (c == ',' && depth == 0) {
      flush();
    } else {
      current += c;
    }
  }
  flush();
  return result;
}

}  // namespace internal
}  // namespace ray
