// ray::internal::ActorCreator<F>: what ray::Actor(factory) returns. Set
// options, then Remote(args...) creates the actor.
//
//   auto counter = ray::Actor(Counter::Create).SetName("c").SetMaxRestarts(1).Remote(0);
//
// The factory is a registered function returning T*; the actor is a T.
#pragma once

#include <boost/callable_traits.hpp>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "ray/api/actor_handle.h"
#include "ray/api/arguments.h"
#include "ray/api/ray_runtime_holder.h"
#include "ray/api/runtime_env.h"
#include "ray/api/task_caller.h"
#include "ray/api/task_options.h"
#include "ray/api/type_traits.h"

namespace ray {
namespace internal {

template <typename F>
struct ActorTypeOf {
  using type = std::remove_cv_t<std::remove_pointer_t<boost::callable_traits::return_type_t<F>>>;
};
template <>
struct ActorTypeOf<PyActorClass> {
  using type = void;
};
template <>
struct ActorTypeOf<JavaActorClass> {
  using type = void;
};

template <typename F>
class ActorCreator {
 public:
  using ActorType = typename ActorTypeOf<F>::type;
  using Handle = ActorHandle<ActorType, is_x_lang_v<F>>;

  // The factory is named by the holder; F only types the creation.
  explicit ActorCreator(RemoteFunctionHolder holder) : holder_(std::move(holder)) {}

  // A named actor in the job's namespace (ray::GetActor finds it).
  ActorCreator &SetName(std::string name) {
    options_.name = std::move(name);
    return *this;
  }
  // A named actor in namespace `ray_namespace`.
  ActorCreator &SetName(std::string name, std::string ray_namespace) {
    options_.name = std::move(name);
    options_.ray_namespace = std::move(ray_namespace);
    return *this;
  }
  ActorCreator &SetResources(std::unordered_map<std::string, double> resources) {
    options_.resources = std::move(resources);
    return *this;
  }
  ActorCreator &SetResource(std::string name, double value) {
    options_.resources.emplace(std::move(name), value);
    return *this;
  }
  // How often the actor is restarted after it died; -1: without limit.
  ActorCreator &SetMaxRestarts(int max_restarts) {
    options_.max_restarts = max_restarts;
    return *this;
  }
  // How many methods may run at once (threaded actor when above 1).
  ActorCreator &SetMaxConcurrency(int max_concurrency) {
    options_.max_concurrency = max_concurrency;
    return *this;
  }
  ActorCreator &SetPlacementGroup(PlacementGroup group, int bundle_index) {
    options_.group = std::move(group);
    options_.bundle_index = bundle_index;
    return *this;
  }
  ActorCreator &SetRuntimeEnv(const RuntimeEnv &env) {
    options_.serialized_runtime_env_info = env.SerializeToRuntimeEnvInfo();
    return *this;
  }
  // Sunray extension: how often a call interrupted by the actor's death is
  // sent again to the restarted actor; -1: without limit.
  ActorCreator &SetMaxTaskRetries(int max_task_retries) {
    options_.max_task_retries = max_task_retries;
    return *this;
  }
  // Sunray extension: where the actor may run.
  ActorCreator &SetSchedulingStrategy(SchedulingStrategy strategy) {
    options_.scheduling_strategy = std::move(strategy);
    return *this;
  }
  // Sunray extension: only on nodes whose labels match (see LabelSelector).
  ActorCreator &SetLabelSelector(LabelSelector selector) {
    options_.label_selector = std::move(selector);
    return *this;
  }

  template <typename... Args>
  Handle Remote(Args &&...args) {
    if constexpr (is_x_lang_v<F>) {
      ThrowCrossLanguageUnsupported("actor class " + holder_.class_name);
    } else {
      CheckTaskOptions(options_.resources);
      CheckPlacementGroupOption(options_.group, options_.bundle_index);
      if (options_.max_restarts < -1) throw RayException("max_restarts must be -1 or more.");
      if (options_.max_task_retries < -1) {
        throw RayException("max_task_retries must be -1 or more.");
      }
      if (options_.max_concurrency < 1) throw RayException("max_concurrency must be 1 or more.");
      using Params = boost::callable_traits::args_t<F>;
      std::vector<TaskArg> packed = PackArgs<Params>(std::forward<Args>(args)...);
      auto runtime = GetRayRuntime();
      return Handle(runtime->CreateActor(holder_, packed, options_));
    }
  }

 private:
  RemoteFunctionHolder holder_;
  ActorCreationOptions options_;
};

}  // namespace internal
}  // namespace ray
