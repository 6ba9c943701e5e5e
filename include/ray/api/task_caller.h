// ray::internal::TaskCaller<F>: what ray::Task(f) returns. Set options, then
// call Remote(args...) to submit.
//
//   auto ref = ray::Task(Plus).SetName("plus").SetResource("CPU", 1).Remote(1, 2);
#pragma once

#include <boost/callable_traits.hpp>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "ray/api/arguments.h"
#include "ray/api/object_ref.h"
#include "ray/api/ray_runtime_holder.h"
#include "ray/api/runtime_env.h"
#include "ray/api/task_options.h"
#include "ray/api/type_traits.h"

namespace ray {
namespace internal {

// The value type of an ObjectRef returned for a function F.
template <typename F>
using RemoteReturn_t = std::decay_t<boost::callable_traits::return_type_t<F>>;

[[noreturn]] inline void ThrowCrossLanguageUnsupported(const std::string &what) {
  throw RayException("Cross-language calls are not supported yet: cannot call " + what +
                     " from C++ in Sunray.");
}

template <typename F>
class TaskCaller {
 public:
  // Calls are made by name (the holder); F only types the call.
  explicit TaskCaller(RemoteFunctionHolder holder) : holder_(std::move(holder)) {}

  TaskCaller &SetName(std::string name) {
    options_.name = std::move(name);
    return *this;
  }
  // Replaces all resource requirements.
  TaskCaller &SetResources(std::unordered_map<std::string, double> resources) {
    options_.resources = std::move(resources);
    return *this;
  }
  // Adds one requirement; as in Ray, an existing entry is kept.
  TaskCaller &SetResource(std::string name, double value) {
    options_.resources.emplace(std::move(name), value);
    return *this;
  }
  TaskCaller &SetPlacementGroup(PlacementGroup group, int bundle_index) {
    options_.group = std::move(group);
    options_.bundle_index = bundle_index;
    return *this;
  }
  TaskCaller &SetRuntimeEnv(const RuntimeEnv &env) {
    options_.serialized_runtime_env_info = env.SerializeToRuntimeEnvInfo();
    return *this;
  }
  // Sunray extension: how often to rerun the task after its worker died
  // (and, with SetRetryExceptions(true), after it threw). -1: without limit.
  TaskCaller &SetMaxRetries(int max_retries) {
    if (max_retries < -1) throw RayException("max_retries must be -1 or more.");
    options_.max_retries = max_retries;
    return *this;
  }
  // Sunray extension: retry also when the function throws.
  TaskCaller &SetRetryExceptions(bool retry_exceptions) {
    options_.retry_exceptions = retry_exceptions;
    return *this;
  }
  // Sunray extension: where the task may run.
  TaskCaller &SetSchedulingStrategy(SchedulingStrategy strategy) {
    options_.scheduling_strategy = std::move(strategy);
    return *this;
  }
  // Sunray extension: only on nodes whose labels match (see LabelSelector).
  TaskCaller &SetLabelSelector(LabelSelector selector) {
    options_.label_selector = std::move(selector);
    return *this;
  }

  // Submits the task; returns a future for its result.
  template <typename... Args>
  ObjectRef<RemoteReturn_t<F>> Remote(Args &&...args) {
    if constexpr (is_x_lang_v<F>) {
      ThrowCrossLanguageUnsupported("function " + holder_.function_name);
    } else {
      CheckTaskOptions(options_.resources);
      CheckPlacementGroupOption(options_.group, options_.bundle_index);
      using Params = boost::callable_traits::args_t<F>;
      std::vector<TaskArg> packed = PackArgs<Params>(std::forward<Args>(args)...);
      auto runtime = GetRayRuntime();
      return ObjectRef<RemoteReturn_t<F>>(runtime->Call(holder_, packed, options_));
    }
  }

 private:
  RemoteFunctionHolder holder_;
  CallOptions options_;
};

}  // namespace internal
}  // namespace ray
