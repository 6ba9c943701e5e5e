// Local mode: the whole runtime in this process (RayConfig::local_mode).
//
// Objects live in a MemoryStore; tasks run on a TaskPool once their
// ObjectRef arguments are ready; each actor runs on its own threads
// (LocalActor). Named actors and placement groups are kept here;
// placement groups are bookkeeping only (resources are not enforced in
// local mode, as in Ray).
//
// Thread-safe. Shutdown (or the destructor) fails pending work, joins every
// thread and destroys every actor object.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "ray/api/ray_config.h"
#include "ray/api/ray_runtime.h"
#include "src/core/function_executor.h"
#include "src/api/local/local_actor.h"
#include "src/api/local/local_context.h"
#include "src/core/memory_store.h"
#include "src/api/local/task_pool.h"
#include "src/core/placement_groups.h"
#include "src/common/id.h"

namespace sunray {

class LocalModeRuntime : public ray::internal::RayRuntime {
 public:
  struct Options {
    std::string ray_namespace;  // empty: a fresh anonymous namespace
    int num_task_threads = 0;   // 0: one per hardware thread, at least 4
  };

  explicit LocalModeRuntime(Options options);
  ~LocalModeRuntime() override;

  void Shutdown();

  // Objects in the store (for tests of reference counting).
  size_t NumObjects() const { return store_.Size(); }

  std::string Put(std::shared_ptr<msgpack::sbuffer> data,
                  const std::vector<std::string> &contained_ids) override;
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> Get(const std::vector<std::string> &ids,
                                                                int timeout_ms) override;
  std::vector<bool> Wait(const std::vector<std::string> &ids, int num_objects,
                         int timeout_ms) override;
  void AddLocalReference(const std::string &id) override;
  void RemoveLocalReference(const std::string &id) override;

  std::string Call(const ray::internal::RemoteFunctionHolder &function,
                   std::vector<ray::internal::TaskArg> &args,
                   const ray::internal::CallOptions &options) override;
  std::string CreateActor(const ray::internal::RemoteFunctionHolder &factory,
                          std::vector<ray::internal::TaskArg> &args,
                          const ray::internal::ActorCreationOptions &options) override;
  std::string CallActor(const ray::internal::RemoteFunctionHolder &method,
                        const std::string &actor_id, std::vector<ray::internal::TaskArg> &args,
                        const ray::internal::CallOptions &options) override;
  std::string GetActorId(const std::string &name, const std::string &ray_namespace) override;
  void KillActor(const std::string &actor_id, bool no_restart) override;
  void ExitActor() override;
  bool WasCurrentActorRestarted() override;
  std::string SerializeActorHandle(const std::string &actor_id) override;
  std::string DeserializeAndRegisterActorHandle(const std::string &serialized) override;
  void Cancel(const std::string &object_id, bool force, bool recursive) override;

  ray::PlacementGroup CreatePlacementGroup(
      const ray::PlacementGroupCreationOptions &options) override;
  void RemovePlacementGroup(const std::string &group_id) override;
  bool WaitPlacementGroupReady(const std::string &group_id, int64_t timeout_seconds) override;
  std::vector<ray::PlacementGroup> GetAllPlacementGroups() override;
  ray::PlacementGroup GetPlacementGroupById(const std::string &id) override;
  ray::PlacementGroup GetPlacementGroup(const std::string &name) override;

  bool IsLocalMode() override { return true; }
  std::string GetNamespace() override { return namespace_; }
  ray::internal::RuntimeContextInfo GetRuntimeContext() override;

 private:
  struct NormalTask {
    TaskID task_id;
    ray::internal::RemoteFunctionHolder function;
    std::vector<ray::internal::TaskArg> args;
    ray::internal::CallOptions options;
    std::string return_id;
  };
  struct TaskState {
    bool started = false;
    bool cancelled = false;
  };

  void RunNormalTask(const NormalTask &task);
  // How a hard affinity to another node is explained (see CheckSchedulable).
  std::string LocalNodeNote() const;
  std::shared_ptr<LocalActor> FindActor(const std::string &actor_id);
  TaskID CurrentTaskId() const;

  const JobID job_id_;
  const NodeID node_id_;
  const TaskID driver_task_id_;
  const std::string namespace_;

  MemoryStore store_;
  TaskPool pool_;
  FunctionExecutor executor_;
  LocalServices services_;
  PlacementGroupBook placement_groups_;
  std::atomic<uint32_t> put_index_{0};

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, TaskState> tasks_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::shared_ptr<LocalActor>> actors_ ABSL_GUARDED_BY(mu_);
  // (namespace, name) -> actor id
  absl::flat_hash_map<std::pair<std::string, std::string>, std::string> named_actors_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace sunray
