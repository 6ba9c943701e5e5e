#include "src/core/function_executor.h"

#include <cxxabi.h>

#include <boost/core/demangle.hpp>
#include <exception>
#include <typeinfo>

#include "ray/api/ray_exception.h"
#include "ray/api/ray_runtime_holder.h"
#include "ray/api/serializer.h"

namespace sunray {
namespace {

// The dynamic type of the exception being handled, demangled.
std::string CurrentExceptionTypeName() {
  const std::type_info *type = abi::__cxa_current_exception_type();
  return type == nullptr ? "unknown exception" : boost::core::demangle(type->name());
}

ErrorInfo TaskExecutionError(const std::string &function, std::string type, std::string what) {
  ErrorInfo error;
  error.type = ErrorType::kTaskExecution;
  error.message =
      "An exception was thrown while executing function(" + function + "): " + type + ": " + what;
  error.function_name = function;
  error.exception_type = std::move(type);
  error.exception_message = std::move(what);
  return error;
}

}  // namespace

template <typename Invoke>
ExecutionResult FunctionExecutor::Run(const std::string &name, Invoke &&invoke) const {
  ExecutionResult result;
  try {
    ray::internal::ContainedRefCollector collector(&result.contained_ids,
                                                   /*hold_references=*/true);
    result.data = invoke();
  } catch (const ray::internal::RayIntentionalSystemExitException &) {
    result.exit_actor = true;
    result.error =
        ErrorInfo{ErrorType::kActorDied,
                  "The actor exited intentionally: ray::ExitActor() was called in " + name + ".",
                  name, "", ""};
  } catch (const std::exception &e) {
    result.error = TaskExecutionError(name, CurrentExceptionTypeName(), e.what());
  } catch (...) {
    result.error = TaskExecutionError(name, CurrentExceptionTypeName(), "(not a std::exception)");
  }
  if (result.error) {
    for (const auto &id : result.contained_ids) ray::internal::RemoveLocalReference(id);
    result.contained_ids.clear();
  }
  return result;
}

ErrorInfo FunctionExecutor::NotFound(const std::string &name, const char *kind) const {
  ErrorInfo error;
  error.type = ErrorType::kFunctionNotFound;
  error.function_name = name;
  error.message = std::string("Executable function not found: the ") + kind + " '" + name +
                  "' is not registered in " + search_description_ +
                  ". Register it with RAY_REMOTE in the code the workers load.";
  return error;
}

ExecutionResult FunctionExecutor::Call(const std::string &name,
                                       const ray::internal::ArgsViewList &args) const {
  const ray::internal::RemoteFunction *function = functions_.GetFunction(name);
  if (function == nullptr) {
    ExecutionResult result;
    result.error = NotFound(name, "function");
    return result;
  }
  return Run(name, [&] { return (*function)(args); });
}

ExecutionResult FunctionExecutor::CallMember(const std::string &name, void *actor,
                                             const ray::internal::ArgsViewList &args) const {
  const ray::internal::RemoteMemberFunction *function = functions_.GetMemberFunction(name);
  if (function == nullptr) {
    ExecutionResult result;
    result.error = NotFound(name, "actor method");
    return result;
  }
  return Run(name, [&] { return (*function)(actor, args); });
}

ExecutionResult FunctionExecutor::CreateActor(const std::string &name,
                                              const ray::internal::ArgsViewList &args,
                                              void **instance,
                                              ray::internal::ActorDeleter *deleter) const {
  *instance = nullptr;
  *deleter = functions_.GetActorDeleter(name);
  ExecutionResult result = Call(name, args);
  if (result.error) return result;
  if (*deleter == nullptr) {
    result.error =
        ErrorInfo{ErrorType::kTaskExecution,
                  "'" + name + "' is not an actor factory (it does not return T*).", name, "", ""};
    return result;
  }
  try {
    auto address =
        ray::internal::Serializer::Deserialize<uint64_t>(result.data.data(), result.data.size());
    *instance = reinterpret_cast<void *>(static_cast<uintptr_t>(address));
  } catch (const std::exception &e) {
    result.error = ErrorInfo{
        ErrorType::kTaskExecution,
        "The actor factory " + name + " returned something unreadable: " + e.what(), name, "", ""};
    return result;
  }
  if (*instance == nullptr) {
    result.error =
        ErrorInfo{ErrorType::kTaskExecution,
                  "The actor factory " + name + " returned a null pointer.", name, "", ""};
  }
  return result;
}

}  // namespace sunray
