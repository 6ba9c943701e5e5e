// Runs registered functions by name: the executing half of a task, shared by
// every runtime. Looks the function up, calls its invoker, and turns whatever
// happens into either a serialized result or an ErrorInfo.
#pragma once

#include <cstdint>
#include <msgpack.hpp>
#include <optional>
#include <string>
#include <vector>

#include "ray/api/common_types.h"
#include "ray/api/function_manager.h"
#include "src/core/object_error.h"

namespace sunray {

struct ExecutionResult {
  // The serialized return value (valid when !error).
  msgpack::sbuffer data;
  // ObjectRefs serialized inside `data`. Each holds one local reference
  // (taken while serializing) that the runtime drops after storing the value.
  std::vector<std::string> contained_ids;
  std::optional<ErrorInfo> error;
  // The function called ray::ExitActor().
  bool exit_actor = false;
};

class FunctionExecutor {
 public:
  explicit FunctionExecutor(const ray::internal::FunctionManager &functions)
      : functions_(functions) {}

  // Calls the free or static function `name`.
  ExecutionResult Call(const std::string &name, const ray::internal::ArgsViewList &args) const;

  // Calls the member function `name` on `actor`.
  ExecutionResult CallMember(const std::string &name, void *actor,
                             const ray::internal::ArgsViewList &args) const;

  // Runs the actor factory `name`. On success *instance is the new object
  // and *deleter destroys it.
  ExecutionResult CreateActor(const std::string &name, const ray::internal::ArgsViewList &args,
                              void **instance, ray::internal::ActorDeleter *deleter) const;

  // Where user code is looked up, for error messages ("this binary", or the
  // code search path).
  void SetSearchDescription(std::string description) {
    search_description_ = std::move(description);
  }

 private:
  template <typename Invoke>
  ExecutionResult Run(const std::string &name, Invoke &&invoke) const;

  ErrorInfo NotFound(const std::string &name, const char *kind) const;

  const ray::internal::FunctionManager &functions_;
  std::string search_description_ = "this program";
};

}  // namespace sunray
