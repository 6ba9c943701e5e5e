// Sunray's public API: Ray's C++ API.
//
//   #include <ray/api.h>
//
//   int Plus(int a, int b) { return a + b; }
//   RAY_REMOTE(Plus);
//
//   int main(int argc, char **argv) {
//     ray::RayConfig config;
//     ray::Init(config, argc, argv);
//     auto three = ray::Task(Plus).Remote(1, 2);     // ray::ObjectRef<int>
//     std::cout << *three.Get() << "\n";
//     ray::Shutdown();
//   }
//
// Tasks (ray::Task), actors (ray::Actor, ray::ActorHandle), objects
// (ray::Put, ray::Get, ray::Wait, ray::ObjectRef), named actors
// (ray::GetActor), placement groups, and Sunray's extensions (ray::Cancel,
// ray::GetRuntimeContext, retries and scheduling strategies on the callers).
#pragma once

#include <boost/optional.hpp>
// Programs written against Ray's <ray/api.h> use std::cout and
// std::this_thread without including them: its headers bring them in.
#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "ray/api/actor_creator.h"
#include "ray/api/actor_handle.h"
#include "ray/api/actor_task_caller.h"
#include "ray/api/function_manager.h"
#include "ray/api/logging.h"
#include "ray/api/object_ref.h"
#include "ray/api/ray_config.h"
#include "ray/api/ray_exception.h"
#include "ray/api/ray_remote.h"
#include "ray/api/ray_runtime.h"
#include "ray/api/ray_runtime_holder.h"
#include "ray/api/runtime_context.h"
#include "ray/api/runtime_env.h"
#include "ray/api/serializer.h"
#include "ray/api/task_caller.h"
#include "ray/api/task_options.h"
#include "ray/api/wait_result.h"
#include "ray/api/xlang_function.h"

namespace ray {

// --- Lifecycle -------------------------------------------------------------

// Starts or joins a runtime with a default config. No-op if already running.
RAY_EXPORT void Init();
// Starts or joins a runtime as `config` says.
RAY_EXPORT void Init(RayConfig &config);
// As Init(config), after applying --ray_* flags from argv to `config`
// (--ray_address, --ray_code_search_path, --ray_job_namespace, ...). Flags
// Sunray does not own are left alone.
RAY_EXPORT void Init(RayConfig &config, int argc, char **argv);
RAY_EXPORT bool IsInitialized();
// Stops the runtime: running work is abandoned, waiting calls fail. Init may
// be called again afterwards.
RAY_EXPORT void Shutdown();

// --- Objects ---------------------------------------------------------------

// Stores `value` and returns a ref to it.
template <typename T>
ObjectRef<T> Put(const T &value) {
  std::vector<std::string> contained;
  // Large values go straight to their place in the object store.
  const size_t size = internal::Serializer::SerializedSize(value);
  std::string direct = internal::GetRayRuntime()->PutDirect(
      size,
      [&](char *destination) {
        internal::Serializer::SerializeInto(value, destination, &contained);
      },
      contained);
  if (!direct.empty()) return ObjectRef<T>(std::move(direct));
  auto buffer = std::make_shared<msgpack::sbuffer>(
      internal::Serializer::SerializeCollectingRefs(value, &contained));
  return ObjectRef<T>(internal::GetRayRuntime()->Put(std::move(buffer), contained));
}

template <typename T>
std::shared_ptr<T> Get(const ObjectRef<T> &object) {
  return object.Get();
}

// Throws RayTimeoutException if the value is not there within timeout_ms
// (-1: wait forever).
template <typename T>
std::shared_ptr<T> Get(const ObjectRef<T> &object, const int &timeout_ms) {
  return object.Get(timeout_ms);
}

namespace internal {
template <typename T>
std::vector<std::shared_ptr<T>> GetAll(const std::vector<std::string> &ids, int timeout_ms) {
  auto buffers = GetRayRuntime()->Get(ids, timeout_ms);
  CheckBufferCount(buffers.size(), ids.size());
  std::vector<std::shared_ptr<T>> values;
  values.reserve(buffers.size());
  for (const auto &buffer : buffers) {
    if constexpr (std::is_void_v<T>) {
      values.push_back(nullptr);
    } else {
      values.push_back(Serializer::DeserializeShared<T>(buffer->Data(), buffer->Size()));
    }
  }
  return values;
}

template <typename T>
std::vector<std::string> IdsOf(const std::vector<ObjectRef<T>> &objects) {
  std::vector<std::string> ids;
  ids.reserve(objects.size());
  for (const auto &object : objects) ids.push_back(object.ID());
  return ids;
}
}  // namespace internal

template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<ObjectRef<T>> &objects) {
  return internal::GetAll<T>(internal::IdsOf(objects), -1);
}

template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<ObjectRef<T>> &objects,
                                    const int &timeout_ms) {
  return internal::GetAll<T>(internal::IdsOf(objects), timeout_ms);
}

// Gets objects by raw binary id (as ObjectRef::ID returns).
template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<std::string> &ids) {
  return internal::GetAll<T>(ids, -1);
}

template <typename T>
std::vector<std::shared_ptr<T>> Get(const std::vector<std::string> &ids, const int &timeout_ms) {
  return internal::GetAll<T>(ids, timeout_ms);
}

// Waits until `num_objects` of `objects` are ready or `timeout_ms` passed
// (-1: no limit). Both lists of the result keep the input order.
template <typename T>
WaitResult<T> Wait(const std::vector<ObjectRef<T>> &objects, int num_objects, int timeout_ms) {
  if (num_objects < 0 || num_objects > static_cast<int>(objects.size())) {
    throw internal::RayException("Wait: num_objects is " + std::to_string(num_objects) +
                                 " but there are " + std::to_string(objects.size()) + " objects.");
  }
  std::vector<bool> ready =
      internal::GetRayRuntime()->Wait(internal::IdsOf(objects), num_objects, timeout_ms);
  if (ready.size() != objects.size()) {
    throw internal::RayException("Wait: the runtime answered for " + std::to_string(ready.size()) +
                                 " of " + std::to_string(objects.size()) + " objects.");
  }
  std::list<ObjectRef<T>> ready_list;
  std::list<ObjectRef<T>> unready_list;
  for (size_t i = 0; i < objects.size(); ++i) {
    (ready[i] ? ready_list : unready_list).push_back(objects[i]);
  }
  return WaitResult<T>(std::move(ready_list), std::move(unready_list));
}

// --- Tasks -----------------------------------------------------------------

template <typename F>
internal::TaskCaller<F> Task(F function) {
  static_assert(!std::is_member_function_pointer_v<F>,
                "ray::Task takes a free or static function; call member functions through an "
                "ActorHandle");
  static_assert(!internal::is_x_lang_v<F>, "use the PyFunction/JavaFunction overloads");
  std::string name = internal::FunctionManager::Instance().GetFunctionName(function);
  if (name.empty()) {
    throw internal::RayException(
        "Function not found. Please use RAY_REMOTE to register this function: " +
        internal::DescribeFunction(function) + " is not registered.");
  }
  return internal::TaskCaller<F>(internal::RemoteFunctionHolder("", std::move(name)));
}

template <typename R>
internal::TaskCaller<PyFunction<R>> Task(PyFunction<R> function) {
  internal::RemoteFunctionHolder holder(function.module_name, function.function_name, "",
                                        internal::LangType::PYTHON);
  return internal::TaskCaller<PyFunction<R>>(std::move(holder));
}

template <typename R>
internal::TaskCaller<JavaFunction<R>> Task(JavaFunction<R> function) {
  internal::RemoteFunctionHolder holder("", function.function_name, function.class_name,
                                        internal::LangType::JAVA);
  return internal::TaskCaller<JavaFunction<R>>(std::move(holder));
}

// Sunray extension: cancels the task producing `object`. A task that has not
// started is dropped and Get throws TaskCancelledException; a running task is
// interrupted only with force = true where the runtime can (cluster: its
// worker is killed), otherwise it runs to completion.
template <typename T>
void Cancel(const ObjectRef<T> &object, bool force = false, bool recursive = true) {
  internal::GetRayRuntime()->Cancel(object.ID(), force, recursive);
}

// --- Actors ----------------------------------------------------------------

template <typename F>
internal::ActorCreator<F> Actor(F factory) {
  static_assert(!internal::is_x_lang_v<F>, "use the PyActorClass/JavaActorClass overloads");
  using R = boost::callable_traits::return_type_t<F>;
  static_assert(std::is_pointer_v<R>, "ray::Actor takes a factory function returning T*");
  std::string name = internal::FunctionManager::Instance().GetFunctionName(factory);
  if (name.empty()) {
    throw internal::RayException(
        "Function not found. Please use RAY_REMOTE to register this function: the actor "
        "factory " +
        internal::DescribeFunction(factory) + " is not registered.");
  }
  std::string class_name = internal::TypeName<typename internal::ActorTypeOf<F>::type>();
  return internal::ActorCreator<F>(
      internal::RemoteFunctionHolder("", std::move(name), std::move(class_name)));
}

RAY_EXPORT internal::ActorCreator<PyActorClass> Actor(PyActorClass actor_class);
RAY_EXPORT internal::ActorCreator<JavaActorClass> Actor(JavaActorClass actor_class);

template <typename T>
boost::optional<ActorHandle<T>> GetActor(const std::string &name, const std::string &ray_namespace);

// The live actor named `name` in the job's namespace, if any. The caller
// names the actor's class; it is not checked.
template <typename T>
boost::optional<ActorHandle<T>> GetActor(const std::string &name) {
  return GetActor<T>(name, internal::GetRayRuntime()->GetNamespace());
}

template <typename T>
boost::optional<ActorHandle<T>> GetActor(const std::string &name,
                                         const std::string &ray_namespace) {
  if (name.empty()) return {};
  std::string id = internal::GetRayRuntime()->GetActorId(name, ray_namespace);
  if (id.empty()) return {};
  return ActorHandle<T>(id);
}

RAY_EXPORT boost::optional<ActorHandleXlang> GetActor(const std::string &name,
                                                      const std::string &ray_namespace = "");

// Inside an actor method: ends the actor for good (no restart). It throws an
// internal exception that unwinds the method; that call's result and every
// later call fail with RayActorException. Anywhere else throws
// std::logic_error.
RAY_EXPORT void ExitActor();

// Inside an actor: whether it was restarted after a failure.
RAY_EXPORT bool WasCurrentActorRestarted();

// The job's namespace.
RAY_EXPORT std::string GetNamespace();

// --- Placement groups ------------------------------------------------------

RAY_EXPORT PlacementGroup CreatePlacementGroup(const PlacementGroupCreationOptions &options);
RAY_EXPORT void RemovePlacementGroup(const std::string &placement_group_id);
RAY_EXPORT std::vector<PlacementGroup> GetAllPlacementGroups();
RAY_EXPORT PlacementGroup GetPlacementGroupById(const std::string &id);
// Looks in the job's namespace; an empty group (GetID() empty) if unknown.
RAY_EXPORT PlacementGroup GetPlacementGroup(const std::string &name);

}  // namespace ray
