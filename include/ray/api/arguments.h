// Turns the arguments of a Remote(...) call into TaskArgs.
//
// An ObjectRef<T> passed where the function takes T travels by reference: the
// runtime resolves it to its value before the call (and waits for it). An
// ObjectRef passed where the function takes an ObjectRef travels as the ref
// itself. Anything else is serialized as the parameter's type.
#pragma once

#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "ray/api/object_ref.h"
#include "ray/api/ray_runtime.h"
#include "ray/api/serializer.h"
#include "ray/api/type_traits.h"

namespace ray {
namespace internal {

template <typename Param, typename Arg>
TaskArg PackArg(Arg &&arg) {
  using P = std::decay_t<Param>;
  using A = std::decay_t<Arg>;
  TaskArg task_arg;
  if constexpr (is_object_ref_v<A> && !is_object_ref_v<P>) {
    static_assert(std::is_convertible_v<UnwrapObjectRef_t<A>, P>,
                  "ray: an ObjectRef argument's value type does not match the parameter type");
    task_arg.object_id = arg.ID();
  } else {
    static_assert(std::is_constructible_v<P, Arg &&>,
                  "ray: an argument does not match the remote function's parameter type");
    task_arg.buffer = std::make_shared<msgpack::sbuffer>();
    ContainedRefCollector collector(&task_arg.contained_object_ids);
    if constexpr (std::is_same_v<A, P>) {
      msgpack::pack(*task_arg.buffer, arg);
    } else {
      msgpack::pack(*task_arg.buffer, P(std::forward<Arg>(arg)));
    }
  }
  return task_arg;
}

template <typename ParamsTuple, typename... Args, size_t... I>
std::vector<TaskArg> PackArgsImpl(std::index_sequence<I...>, Args &&...args) {
  std::vector<TaskArg> packed;
  packed.reserve(sizeof...(Args));
  (packed.push_back(PackArg<std::tuple_element_t<I, ParamsTuple>>(std::forward<Args>(args))), ...);
  return packed;
}

// Packs `args` against the parameter list `ParamsTuple` (a std::tuple).
template <typename ParamsTuple, typename... Args>
std::vector<TaskArg> PackArgs(Args &&...args) {
  static_assert(sizeof...(Args) == std::tuple_size_v<ParamsTuple>,
                "ray: wrong number of arguments for the remote function");
  return PackArgsImpl<ParamsTuple>(std::index_sequence_for<Args...>{}, std::forward<Args>(args)...);
}

// Cross-language calls: arguments are packed as given.
template <typename... Args>
std::vector<TaskArg> PackArgsAsIs(Args &&...args) {
  std::vector<TaskArg> packed;
  (packed.push_back(PackArg<std::decay_t<Args>>(std::forward<Args>(args))), ...);
  return packed;
}

}  // namespace internal
}  // namespace ray
