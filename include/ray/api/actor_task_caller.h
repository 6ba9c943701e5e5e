// ray::internal::ActorTaskCaller<F>: what handle.Task(&C::m) returns.
//
//   auto ref = counter.Task(&Counter::Add).Remote(1);
//
// Calls from one caller to one actor run in the order they were submitted
// (with max_concurrency 1; with more, they start in that order).
#pragma once

#include <boost/callable_traits.hpp>
#include <string>
#include <unordered_map>
#include <utility>

#include "ray/api/arguments.h"
#include "ray/api/object_ref.h"
#include "ray/api/ray_runtime_holder.h"
#include "ray/api/task_caller.h"
#include "ray/api/task_options.h"
#include "ray/api/type_traits.h"

namespace ray {
namespace internal {

template <typename F>
class ActorTaskCaller {
 public:
  ActorTaskCaller(std::string actor_id, RemoteFunctionHolder holder)
      : actor_id_(std::move(actor_id)), holder_(std::move(holder)) {}

  ActorTaskCaller &SetName(std::string name) {
    options_.name = std::move(name);
    return *this;
  }
  ActorTaskCaller &SetResources(std::unordered_map<std::string, double> resources) {
    options_.resources = std::move(resources);
    return *this;
  }
  ActorTaskCaller &SetResource(std::string name, double value) {
    options_.resources.emplace(std::move(name), value);
    return *this;
  }

  template <typename... Args>
  ObjectRef<RemoteReturn_t<F>> Remote(Args &&...args) {
    if constexpr (is_x_lang_v<F>) {
      ThrowCrossLanguageUnsupported("actor method " + holder_.function_name);
    } else {
      CheckTaskOptions(options_.resources);
      using Params = RemoveFirst_t<boost::callable_traits::args_t<F>>;
      std::vector<TaskArg> packed = PackArgs<Params>(std::forward<Args>(args)...);
      auto runtime = GetRayRuntime();
      return ObjectRef<RemoteReturn_t<F>>(runtime->CallActor(holder_, actor_id_, packed, options_));
    }
  }

 private:
  std::string actor_id_;
  RemoteFunctionHolder holder_;
  CallOptions options_;
};

}  // namespace internal
}  // namespace ray
