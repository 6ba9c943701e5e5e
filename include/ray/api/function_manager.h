// The registry of remote functions and the invokers that run them.
//
// RAY_REMOTE registers each function under its source text ("Plus",
// "Counter::Create", "&Counter::Add", "RAY_FUNC(Compute, int)"). A caller finds
// the name by the function's address; the executing side finds the invoker by
// name. The invoker deserializes the arguments into the declared parameter
// types (by value, const&, & and && all work), calls the function and
// serializes the result.
//
// Registering a different function under a taken name, or a registered
// function under a second name, throws RayException naming it. Registering
// the same function under the same name again (a RAY_REMOTE in a header seen
// by several files) is harmless.
//
// Actor methods are called on the object the factory made, cast to the class
// the method belongs to; a method of a base class works when that base is the
// object's primary (first, non-virtual) base, and virtual methods dispatch to
// the most derived override.
#pragma once

#include <boost/callable_traits.hpp>
#include <boost/core/demangle.hpp>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "ray/api/common_types.h"
#include "ray/api/ray_exception.h"
#include "ray/api/serializer.h"
#include "ray/api/type_traits.h"
#include "ray/api/visibility.h"

namespace ray {
namespace internal {

template <typename T>
std::string TypeName() {
  return boost::core::demangle(typeid(T).name());
}

// The demangled name of the symbol at `address` when the dynamic symbol
// table has one (functions in shared libraries, or in executables linked
// with -rdynamic), else "".
RAY_EXPORT std::string SymbolNameAt(const void *address);

// Names `f` for error messages: its symbol where known, and its type.
template <typename F>
std::string DescribeFunction(const F &f) {
  std::string symbol;
  if constexpr (std::is_pointer_v<F>) {
    symbol = SymbolNameAt(reinterpret_cast<const void *>(f));
  }
  if (symbol.empty()) return "a function of type " + TypeName<F>();
  return symbol + " (of type " + TypeName<F>() + ")";
}

template <typename T>
T UnpackArg(const std::string &function_name, size_t index, const ArgView &arg) {
  try {
    return Serializer::Deserialize<T>(arg.data, arg.size);
  } catch (const std::exception &e) {
    throw std::invalid_argument("Arguments error: argument " + std::to_string(index) + " of " +
                                function_name + " could not be read as " + TypeName<T>() + " (" +
                                e.what() + ")");
  }
}

inline void CheckArgCount(const std::string &function_name, size_t got, size_t expected) {
  if (got != expected) {
    throw std::invalid_argument("Arguments number not match: " + function_name + " takes " +
                                std::to_string(expected) + " arguments, got " +
                                std::to_string(got));
  }
}

template <typename R, typename Call>
msgpack::sbuffer CallAndSerialize(Call &&call) {
  if constexpr (std::is_void_v<R>) {
    call();
    return Serializer::Serialize(msgpack::type::nil_t());
  } else if constexpr (std::is_pointer_v<std::decay_t<R>>) {
    auto *pointer = call();
    return Serializer::Serialize(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(pointer)));
  } else {
    return Serializer::Serialize(call());
  }
}

template <typename R, typename F, typename... Params, size_t... I>
msgpack::sbuffer InvokeFree(const std::string &name, const F &f, const ArgsViewList &args,
                            std::index_sequence<I...>) {
  CheckArgCount(name, args.size(), sizeof...(Params));
  std::tuple<std::decay_t<Params>...> values{UnpackArg<std::decay_t<Params>>(name, I, args[I])...};
  (void)values;
  return CallAndSerialize<R>(
      [&]() -> R { return f(std::forward<Params>(std::get<I>(values))...); });
}

template <typename R, typename Class, typename F, typename... Params, size_t... I>
msgpack::sbuffer InvokeMember(const std::string &name, const F &f, void *actor,
                              const ArgsViewList &args, std::index_sequence<I...>) {
  CheckArgCount(name, args.size(), sizeof...(Params));
  std::tuple<std::decay_t<Params>...> values{UnpackArg<std::decay_t<Params>>(name, I, args[I])...};
  (void)values;
  Class *self = static_cast<Class *>(actor);
  return CallAndSerialize<R>(
      [&]() -> R { return (self->*f)(std::forward<Params>(std::get<I>(values))...); });
}

template <typename F, typename... Params>
RemoteFunction MakeRemoteFunction(std::string name, F f, std::tuple<Params...> *) {
  using R = boost::callable_traits::return_type_t<F>;
  return [name = std::move(name), f](const ArgsViewList &args) {
    return InvokeFree<R, F, Params...>(name, f, args, std::index_sequence_for<Params...>{});
  };
}

template <typename F, typename... Params>
RemoteMemberFunction MakeRemoteMemberFunction(std::string name, F f, std::tuple<Params...> *) {
  using R = boost::callable_traits::return_type_t<F>;
  using Class = boost::callable_traits::class_of_t<F>;
  return [name = std::move(name), f](void *actor, const ArgsViewList &args) {
    return InvokeMember<R, Class, F, Params...>(name, f, actor, args,
                                                std::index_sequence_for<Params...>{});
  };
}

template <typename T>
void DeleteActorObject(void *actor) {
  delete static_cast<T *>(actor);
}

// The bytes that identify a function pointer in the registry.
template <typename F>
std::string FunctionKey(const F &f) {
  std::string key(sizeof(F), '\0');
  std::memcpy(key.data(), &f, sizeof(F));
  if constexpr (std::is_member_function_pointer_v<F>) {
    key += typeid(boost::callable_traits::class_of_t<F>).name();
  }
  return key;
}

class RAY_EXPORT FunctionManager {
 public:
  static FunctionManager &Instance();

  FunctionManager(const FunctionManager &) = delete;
  FunctionManager &operator=(const FunctionManager &) = delete;

  // Registers `f` under `name`. Throws RayException on a conflict (see top).
  template <typename F>
  bool RegisterRemoteFunction(const std::string &name, F f) {
    static_assert(std::is_pointer_v<F> || std::is_member_function_pointer_v<F>,
                  "RAY_REMOTE takes functions, static member functions and member function "
                  "pointers");
    if constexpr (std::is_member_function_pointer_v<F>) {
      using Params = RemoveFirst_t<boost::callable_traits::args_t<F>>;
      AddMemberFunction(name, FunctionKey(f),
                        MakeRemoteMemberFunction(name, f, static_cast<Params *>(nullptr)));
    } else {
      using Params = boost::callable_traits::args_t<F>;
      using R = boost::callable_traits::return_type_t<F>;
      ActorDeleter deleter = nullptr;
      if constexpr (std::is_pointer_v<R> &&
                    std::is_class_v<std::remove_cv_t<std::remove_pointer_t<R>>>) {
        deleter = &DeleteActorObject<std::remove_cv_t<std::remove_pointer_t<R>>>;
      }
      AddFunction(name, FunctionKey(f), MakeRemoteFunction(name, f, static_cast<Params *>(nullptr)),
                  deleter);
    }
    return true;
  }

  // The registered name of `f`, or "" if it is not registered.
  template <typename F>
  std::string GetFunctionName(const F &f) const {
    return FindName(FunctionKey<std::decay_t<F>>(f));
  }

  // Invokers by name; null when unknown. The pointers stay valid for the
  // life of the process.
  const RemoteFunction *GetFunction(const std::string &name) const;
  const RemoteMemberFunction *GetMemberFunction(const std::string &name) const;
  // The deleter of the actor class a factory makes; null for non-factories.
  ActorDeleter GetActorDeleter(const std::string &factory_name) const;

  // Snapshot of both name maps.
  std::pair<RemoteFunctionMap_t, RemoteMemberFunctionMap_t> GetRemoteFunctions() const;

  // "RAY_FUNC(Counter::Create, int)" -> "Counter", "Counter::Create" ->
  // "Counter", "&Counter::Add" -> "Counter", "Create" -> "".
  static std::string GetClassNameByFuncName(const std::string &function_name);

 private:
  FunctionManager();
  ~FunctionManager();

  void AddFunction(const std::string &name, std::string key, RemoteFunction function,
                   ActorDeleter deleter);
  void AddMemberFunction(const std::string &name, std::string key, RemoteMemberFunction function);
  std::string FindName(const std::string &key) const;

  struct State;
  std::unique_ptr<State> state_;
};

// Splits RAY_REMOTE's stringized argument list at top-level commas and trims
// each name.
RAY_EXPORT std::vector<std::string> SplitRemoteFunctionNames(const std::string &names);

template <typename... Fs>
bool RegisterRemoteFunctions(const std::string &names, Fs... functions) {
  const std::vector<std::string> split = SplitRemoteFunctionNames(names);
  if (split.size() != sizeof...(Fs)) {
    throw RayException("RAY_REMOTE could not split its arguments into names: " + names);
  }
  size_t index = 0;
  (FunctionManager::Instance().RegisterRemoteFunction(split[index++], functions), ...);
  return true;
}

}  // namespace internal
}  // namespace ray
