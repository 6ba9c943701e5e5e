// ray::ActorHandle<T>: a reference to a running actor of class T.
//
//   ray::ActorHandle<Counter> counter = ray::Actor(Counter::Create).Remote(0);
//   ray::ObjectRef<int> one = counter.Task(&Counter::Add).Remote(1);
//   counter.Kill();
//
// Handles are cheap to copy and may be passed to and returned from tasks.
#pragma once

#include <boost/callable_traits.hpp>
#include <msgpack.hpp>
#include <string>
#include <type_traits>
#include <utility>

#include "ray/api/actor_task_caller.h"
#include "ray/api/function_manager.h"
#include "ray/api/ray_runtime_holder.h"
#include "ray/api/type_traits.h"
#include "ray/api/xlang_function.h"

namespace ray {

template <typename ActorType, bool IsXlang = false>
class ActorHandle {
 public:
  ActorHandle() = default;
  ActorHandle(const std::string &id) : id_(id) {}

  // The binary actor id.
  const std::string &ID() const { return id_; }

  // A call of `actor_func`, a registered member function of ActorType or of
  // one of its bases.
  template <typename F>
  internal::ActorTaskCaller<F> Task(F actor_func) {
    static_assert(!IsXlang, "ray: use PyActorMethod/JavaActorMethod on a cross-language handle");
    static_assert(std::is_member_function_pointer_v<F>,
                  "ray: ActorHandle::Task takes a member function pointer (&Class::Method)");
    using Class = boost::callable_traits::class_of_t<F>;
    static_assert(std::is_same_v<Class, ActorType> || std::is_base_of_v<Class, ActorType>,
                  "ray: the method belongs to neither the actor's class nor its bases");
    std::string name = internal::FunctionManager::Instance().GetFunctionName(actor_func);
    if (name.empty()) {
      throw internal::RayException(
          "Function not found. Please use RAY_REMOTE to register this function: the method of " +
          internal::TypeName<Class>() + " of type " + internal::TypeName<F>() +
          " is not registered.");
    }
    return internal::ActorTaskCaller<F>(
        id_, internal::RemoteFunctionHolder("", std::move(name), internal::TypeName<Class>()));
  }

  template <typename R>
  internal::ActorTaskCaller<PyActorMethod<R>> Task(PyActorMethod<R> method) {
    static_assert(IsXlang, "ray: PyActorMethod needs a cross-language handle");
    return internal::ActorTaskCaller<PyActorMethod<R>>(
        id_,
        internal::RemoteFunctionHolder("", method.function_name, "", internal::LangType::PYTHON));
  }

  template <typename R>
  internal::ActorTaskCaller<JavaActorMethod<R>> Task(JavaActorMethod<R> method) {
    static_assert(IsXlang, "ray: JavaActorMethod needs a cross-language handle");
    return internal::ActorTaskCaller<JavaActorMethod<R>>(
        id_,
        internal::RemoteFunctionHolder("", method.function_name, "", internal::LangType::JAVA));
  }

  // Kills the actor at once; pending and later calls fail with
  // RayActorException. Same as Kill(true).
  void Kill() { Kill(true); }
  // With no_restart = false, the actor restarts if max_restarts allows.
  void Kill(bool no_restart) { internal::GetRayRuntime()->KillActor(id_, no_restart); }

  static ActorHandle FromBytes(const std::string &serialized) {
    return ActorHandle(internal::GetRayRuntime()->DeserializeAndRegisterActorHandle(serialized));
  }

  static bool IsActorHandle() { return true; }

  bool operator==(const ActorHandle &other) const { return id_ == other.id_; }

  template <typename Packer>
  void msgpack_pack(Packer &packer) const {
    std::string bytes =
        id_.empty() ? std::string() : internal::GetRayRuntime()->SerializeActorHandle(id_);
    packer.pack_bin(static_cast<uint32_t>(bytes.size()));
    packer.pack_bin_body(bytes.data(), static_cast<uint32_t>(bytes.size()));
  }

  void msgpack_unpack(const msgpack::object &object) {
    if (object.type != msgpack::type::BIN) throw msgpack::type_error();
    std::string bytes(object.via.bin.ptr, object.via.bin.size);
    id_ = bytes.empty() ? std::string()
                        : internal::GetRayRuntime()->DeserializeAndRegisterActorHandle(bytes);
  }

 private:
  std::string id_;
};

using ActorHandleXlang = ActorHandle<void, true>;

}  // namespace ray
