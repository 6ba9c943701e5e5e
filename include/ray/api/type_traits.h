// Compile-time traits used by the API templates.
#pragma once

#include <tuple>
#include <type_traits>

#include "ray/api/xlang_function.h"

namespace ray {

template <typename T>
class ObjectRef;
template <typename ActorType, bool IsXlang>
class ActorHandle;

namespace internal {

template <typename T>
struct is_object_ref : std::false_type {};
template <typename T>
struct is_object_ref<ObjectRef<T>> : std::true_type {};
template <typename T>
inline constexpr bool is_object_ref_v = is_object_ref<std::decay_t<T>>::value;

template <typename T>
struct is_actor_handle : std::false_type {};
template <typename T, bool X>
struct is_actor_handle<ActorHandle<T, X>> : std::true_type {};
template <typename T>
inline constexpr bool is_actor_handle_v = is_actor_handle<std::decay_t<T>>::value;

template <typename T>
struct is_python : std::false_type {};
template <typename R>
struct is_python<PyFunction<R>> : std::true_type {};
template <>
struct is_python<PyActorClass> : std::true_type {};
template <typename R>
struct is_python<PyActorMethod<R>> : std::true_type {};
template <typename T>
inline constexpr bool is_python_v = is_python<std::decay_t<T>>::value;

template <typename T>
struct is_java : std::false_type {};
template <typename R>
struct is_java<JavaFunction<R>> : std::true_type {};
template <>
struct is_java<JavaActorClass> : std::true_type {};
template <typename R>
struct is_java<JavaActorMethod<R>> : std::true_type {};
template <typename T>
inline constexpr bool is_java_v = is_java<std::decay_t<T>>::value;

template <typename T>
inline constexpr bool is_x_lang_v = is_python_v<T> || is_java_v<T>;

// The value type an argument stands for: ObjectRef<T> stands for T.
template <typename T>
struct UnwrapObjectRef {
  using type = std::decay_t<T>;
};
template <typename T>
struct UnwrapObjectRef<ObjectRef<T>> {
  using type = T;
};
template <typename T>
using UnwrapObjectRef_t = typename UnwrapObjectRef<std::decay_t<T>>::type;

template <typename Tuple>
struct RemoveFirst;
template <typename First, typename... Rest>
struct RemoveFirst<std::tuple<First, Rest...>> {
  using type = std::tuple<Rest...>;
};
template <typename Tuple>
using RemoveFirst_t = typename RemoveFirst<Tuple>::type;

template <typename T>
using RemoveReference_t = std::remove_const_t<std::remove_reference_t<T>>;

}  // namespace internal
}  // namespace ray
