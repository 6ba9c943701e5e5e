// The seam between the public API and a runtime.
//
// The templates in <ray/api.h> turn user calls into calls on RayRuntime, an
// abstract interface with one implementation per way of running: local mode
// (one process) and the cluster runtime. Ids crossing this interface are the
// binary id strings that ObjectRef::ID() and ActorHandle::ID() return.
//
// Thread-safety: every method may be called from any thread.
// Errors: methods throw the exceptions of ray_exception.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <msgpack.hpp>
#include <string>
#include <vector>

#include "ray/api/serializer.h"
#include "ray/api/task_options.h"
#include "ray/api/visibility.h"
#include "ray/api/xlang_function.h"

namespace ray {
namespace internal {

// Names the function to run: its registered name (see RAY_REMOTE), and for
// actor methods the class name.
struct RemoteFunctionHolder {
  RemoteFunctionHolder() = default;
  RemoteFunctionHolder(std::string module, std::string function, std::string class_name = "",
                       LangType lang = LangType::CPP)
      : module_name(std::move(module)),
        function_name(std::move(function)),
        class_name(std::move(class_name)),
        lang_type(lang) {}
  std::string module_name;
  std::string function_name;
  std::string class_name;
  LangType lang_type = LangType::CPP;
};

// One task argument: a serialized value, or a reference to an object whose
// value the runtime resolves before the call.
struct TaskArg {
  // By value when set.
  std::shared_ptr<msgpack::sbuffer> buffer;
  // By reference when buffer is null.
  std::string object_id;
  // ObjectRefs serialized inside `buffer`: kept alive while the task runs.
  std::vector<std::string> contained_object_ids;
};

// Ids describing where the calling code runs, in hex (empty when not
// applicable, e.g. no actor in a driver).
struct RuntimeContextInfo {
  std::string job_id;
  std::string task_id;
  std::string actor_id;
  std::string node_id;
  std::string ray_namespace;
  bool was_current_actor_restarted = false;
};

class RAY_EXPORT RayRuntime {
 public:
  virtual ~RayRuntime() = default;

  // Objects. Put takes ownership of `data`; `contained_ids` are the refs
  // serialized inside it. Returns the new object's id, with no reference
  // held: the caller wraps it in an ObjectRef.
  virtual std::string Put(std::shared_ptr<msgpack::sbuffer> data,
                          const std::vector<std::string> &contained_ids) = 0;
  // Puts a value of `size` serialized bytes that `write` writes straight into
  // the object's final place (for a large object, shared memory), skipping
  // a buffer; `write` fills `contained_ids`. Returns "" (having called
  // nothing) when the runtime keeps values of this size in a buffer anyway:
  // the caller then uses Put.
  virtual std::string PutDirect(size_t /*size*/, const std::function<void(char *)> & /*write*/,
                                const std::vector<std::string> & /*contained_ids*/) {
    return {};
  }
  // Values of `ids`, in order. timeout_ms < 0 waits forever; on expiry throws
  // RayTimeoutException. An object holding an error throws its exception.
  virtual std::vector<std::shared_ptr<ObjectBuffer>> Get(const std::vector<std::string> &ids,
                                                         int timeout_ms) = 0;
  // Which of `ids` are ready once `num_objects` of them are (or the timeout
  // passed). Never throws on timeout.
  virtual std::vector<bool> Wait(const std::vector<std::string> &ids, int num_objects,
                                 int timeout_ms) = 0;
  virtual void AddLocalReference(const std::string &id) = 0;
  virtual void RemoveLocalReference(const std::string &id) = 0;
  // What a serialized ObjectRef carries besides its id so that the process
  // that deserializes it can reach the object's owner.
  virtual std::string GetOwnershipInfo(const std::string & /*id*/) { return {}; }
  // Adds a local reference to an object that arrived inside a value.
  virtual void AddBorrowedReference(const std::string &id, const std::string & /*owner_info*/) {
    AddLocalReference(id);
  }

  // Tasks and actors. Each returns the id of the call's return object (or of
  // the new actor), with no reference held.
  virtual std::string Call(const RemoteFunctionHolder &function, std::vector<TaskArg> &args,
                           const CallOptions &options) = 0;
  virtual std::string CreateActor(const RemoteFunctionHolder &factory, std::vector<TaskArg> &args,
                                  const ActorCreationOptions &options) = 0;
  virtual std::string CallActor(const RemoteFunctionHolder &method, const std::string &actor_id,
                                std::vector<TaskArg> &args, const CallOptions &options) = 0;
  // Empty when no live actor has that name in that namespace.
  virtual std::string GetActorId(const std::string &name, const std::string &ray_namespace) = 0;
  virtual void KillActor(const std::string &actor_id, bool no_restart) = 0;
  virtual void ExitActor() = 0;
  virtual bool WasCurrentActorRestarted() = 0;
  virtual std::string SerializeActorHandle(const std::string &actor_id) = 0;
  virtual std::string DeserializeAndRegisterActorHandle(const std::string &serialized) = 0;
  // Sunray extension: cancels the task that produces `object_id`.
  virtual void Cancel(const std::string &object_id, bool force, bool recursive) = 0;

  // Placement groups.
  virtual PlacementGroup CreatePlacementGroup(const PlacementGroupCreationOptions &options) = 0;
  virtual void RemovePlacementGroup(const std::string &group_id) = 0;
  virtual bool WaitPlacementGroupReady(const std::string &group_id, int64_t timeout_seconds) = 0;
  virtual std::vector<PlacementGroup> GetAllPlacementGroups() = 0;
  virtual PlacementGroup GetPlacementGroupById(const std::string &id) = 0;
  virtual PlacementGroup GetPlacementGroup(const std::string &name) = 0;

  virtual bool IsLocalMode() { return false; }
  virtual std::string GetNamespace() = 0;
  virtual RuntimeContextInfo GetRuntimeContext() = 0;
};

}  // namespace internal
}  // namespace ray
