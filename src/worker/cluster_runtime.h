// The cluster runtime: RayRuntime for a process that is part of a Sunray
// cluster, a driver or a worker (Ray: the core worker).
//
// Ownership. The process that submits a task owns its return object; the
// process that calls Put owns the object. Owned objects live in `owned_`
// (a MemoryStore): small values inline, larger ones in the node's
// shared-memory store with a marker inline. An owned object's count covers
// ObjectRefs in this process, task arguments in flight, other objects whose
// values contain it, and borrowers (other processes holding a ref). When the
// count reaches zero the object is freed everywhere.
//
// Borrowing. A process that deserializes a ref it does not own registers
// with the owner (AddBorrower) before using it and tells the owner when its
// last local ref is gone (RemoveBorrower, with how many registrations it
// received). A worker that returns refs inside a task's result registers the
// caller as a borrower first, so the refs are never unowned in flight. The
// counting on both sides is the ReferenceCounter's (reference_counter.h);
// its calls to other processes go through a WorkerClient.
//
// Tasks. Normal tasks are queued per scheduling class (resources) and
// pushed to workers leased from the node daemon (NormalTaskSubmitter); a lease is reused while
// tasks of its class are queued and returned after a short idle time. ObjectRef arguments are
// resolved before the push (the owner waits, then sends the value inline or a note that it is in
// the node store). Actor tasks go straight to the actor's worker, numbered per caller so the actor
// runs them in submission order.
//
// Every process serves WorkerService (src/proto/worker.proto) on its own
// port: tasks arrive there in workers; owners answer borrowers there.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "ray/api/ray_runtime.h"
#include "src/common/environment.h"
#include "src/common/id.h"
#include "src/common/resources.h"
#include "src/core/function_executor.h"
#include "src/core/memory_store.h"
#include "src/core/placement_groups.h"
#include "src/objstore/store_client.h"
#include "src/rpc/frame_loop.h"
#include "src/rpc/rpc.h"
#include "src/worker/actor_task_submitter.h"
#include "src/worker/control_client.h"
#include "src/worker/dependency_resolver.h"
#include "src/worker/node_client.h"
#include "src/worker/normal_task_submitter.h"
#include "src/worker/object_provider.h"
#include "src/worker/pending_task.h"
#include "src/worker/reference_counter.h"
#include "src/worker/task_manager.h"
#include "src/worker/task_receiver.h"
#include "src/worker/task_stream.h"
#include "src/worker/worker_client.h"
#include "worker.grpc.pb.h"

namespace sunray {

class DeferredReactor;
class TaskStreamServer;

// A task's by-value arguments travel inline up to this total; the rest go
// through the node store (Ray's task_rpc_inlined_bytes_limit is 10 MiB too).
inline constexpr size_t kMaxInlineArgBytes = 10 << 20;

struct ClusterRuntimeOptions {
  std::string control_address;
  std::string token;
  std::string ray_namespace;  // drivers; empty: a fresh anonymous namespace
  // RayConfig::default_actor_lifetime: actors outlive the job's driver.
  bool detached_actors = false;
  // The runtime env's env_vars this process's tasks and actors get unless
  // their own runtime env sets them: drivers, the job's (RayConfig); workers,
  // those they were started with.
  std::map<std::string, std::string> env_vars;
  std::string host = "127.0.0.1";
  // How the node starts workers for this job.
  std::vector<std::string> worker_argv;
  // Set in worker processes (from the environment the node daemon gave).
  bool worker_mode = false;
  int64_t startup_token = 0;
  std::string job_id_hex;
  std::string node_address;
  std::string code_search_description;
};

class ClusterRuntime : public ray::internal::RayRuntime,
                       private TaskResultSink,
                       private ArgumentSource,
                       private ActorDirectory,
                       private TaskRunner,
                       private RemoteStores {
 public:
  // Connects to the cluster: registers the job (drivers), the node's store,
  // and starts serving. Throws RayException naming what failed.
  explicit ClusterRuntime(ClusterRuntimeOptions options);
  ~ClusterRuntime() override;

  // Fails pending work, returns leases, stops serving. Idempotent.
  void Shutdown();
  // Worker processes: serve tasks until the process is told to exit.
  [[noreturn]] void RunWorkerLoop();

  std::string Put(std::shared_ptr<msgpack::sbuffer> data,
                  const std::vector<std::string> &contained_ids) override;
  std::string PutDirect(size_t size, const std::function<void(char *)> &write,
                        const std::vector<std::string> &contained_ids) override;
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> Get(const std::vector<std::string> &ids,
                                                                int timeout_ms) override;
  std::vector<bool> Wait(const std::vector<std::string> &ids, int num_objects,
                         int timeout_ms) override;
  void AddLocalReference(const std::string &id) override;
  void RemoveLocalReference(const std::string &id) override;
  std::string GetOwnershipInfo(const std::string &id) override;
  void AddBorrowedReference(const std::string &id, const std::string &owner_info) override;

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

  std::string GetNamespace() override { return namespace_; }
  ray::internal::RuntimeContextInfo GetRuntimeContext() override;

  // Runs `work` soon on the runtime's housekeeping thread (for actions that
  // must not run under other locks, such as freeing objects).
  void RunDeferred(std::function<void()> work);

  // For tests: owned objects currently tracked.
  size_t NumOwnedObjects() const { return owned_.Size(); }

 private:
  class Service;
  class ExitWatch;

  // --- objects (object_refs.cc; puts, reads and waits are the ObjectProvider's) ---
  void HousekeepingLoop();

  // --- tasks (task_submitter.cc) ---
  // The environment entries (NAME=value) a task or actor with this runtime
  // env runs with: the process's default env_vars, overridden by its own.
  std::vector<std::string> RuntimeEnvEntries(const std::string &serialized_runtime_env_info) const;
  // Turns API arguments into wire arguments; holds references on what they
  // point to (released when the task settles: TaskManager).
  void PrepareArgs(std::vector<ray::internal::TaskArg> &args, PendingTask *task);
  // ArgumentSource: an argument's value once it is ready here (owned) or
  // fetched from its owner (borrowed), for the DependencyResolver.
  void WhenReady(const std::string &object_id,
                 std::function<void(proto::ObjectValue value)> ready) override;
  // TaskResultSink: where the TaskManager puts a settled task's result.
  bool StoreResult(const std::string &return_id, const proto::ObjectValue &result,
                   bool report_free) override {
    return objects_->SealFromProto(return_id, result, report_free);
  }
  void StoreError(const std::string &return_id, ErrorInfo error) override;
  void Release(const std::vector<std::string> &object_ids) override {
    for (const auto &id : object_ids) RemoveLocalReference(id);
  }
  // A lease has nothing to do since `idle_since`: housekeeping returns it
  // kLeaseLinger later unless it gets work.
  void LeaseWentIdle(absl::Time idle_since);

  // --- actors (actor_submitter.cc) ---
  // Registers a created actor with the control service once its arguments
  // resolved (`arg_error` if one failed); errors are thrown with
  // `throw_errors`, else they end the actor.
  void RegisterActor(std::shared_ptr<PendingTask> task, const std::string &actor_id,
                     const std::string &class_name,
                     std::shared_ptr<proto::CreateActorRequest> request,
                     std::optional<ErrorInfo> arg_error, bool throw_errors);
  // ActorDirectory: the control service's long poll of an actor's state.
  void Watch(const std::string &actor_id) override { WatchActor(actor_id, -1); }
  void WatchActor(const std::string &actor_id, int64_t after_version);

  // --- execution (task_execution.cc; the queues are the TaskReceiver's) ---
  void HandlePushTask(const proto::PushTaskRequest *request, proto::PushTaskReply *reply,
                      DeferredReactor *reactor);
  // TaskRunner: runs a task with its arguments read (from the node store
  // when they are there), puts its result on the wire, ends the process.
  ExecutionResult Run(const proto::TaskSpec &spec, void *instance) override;
  ExecutionResult Create(const proto::TaskSpec &spec, void **instance,
                         ray::internal::ActorDeleter *deleter) override;
  void Encode(const proto::TaskSpec &spec, ExecutionResult result,
              proto::ObjectValue *out) override;
  void FinishActorExit(const std::string &actor_id) override;
  void ForceExit() override { ExitProcess(1); }
  // Views of `spec`'s argument values (kept alive by `keep`); false with
  // the error in `failed` when one cannot be read.
  bool ArgumentViews(const proto::TaskSpec &spec, ray::internal::ArgsViewList *views,
                     std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> *keep,
                     ExecutionResult *failed);
  [[noreturn]] void ExitProcess(int code);

  // A task or actor in bundle `bundle_index` (-1: any) of `group`: what it
  // leases, and the node to ask first (the bundle's, once it is placed).
  // FailedPrecondition when the group is removed, unknown or has no such
  // bundle; Unavailable when control could not be asked.
  struct InGroup {
    ResourceSet resources;
    NormalTaskSubmitter::FirstNode first_node;
  };
  absl::StatusOr<InGroup> PlaceInGroup(const ray::PlacementGroup &group, int bundle_index,
                                       const ResourceSet &resources);

  // RemoteStores: other nodes' stores, through this node and theirs.
  absl::Status Pull(const std::string &id, const std::string &from,
                    const std::string &owner) override;
  void Delete(const std::string &node_address, const std::vector<std::string> &ids) override;
  // A worker running a normal task tells its node when it blocks in Get,
  // and its receiver, which sends the tasks waiting behind it back.
  class BlockedScope;
  friend class BlockedScope;

  const ClusterRuntimeOptions options_;
  std::string namespace_;
  JobID job_id_;
  NodeID node_id_;
  TaskID driver_task_id_;
  std::string worker_id_;  // this process's caller id for actor ordering
  std::string my_address_;
  std::string task_address_;  // where a worker takes task streams (frames_)
  std::vector<std::string> worker_env_;

  // Calls to the control service (its watches stopped at Shutdown).
  GrpcControlClient control_{options_.token, options_.control_address};
  std::unique_ptr<StoreClient> store_;
  FunctionExecutor executor_;
  MemoryStore owned_;
  // Calls to other processes' WorkerService (owners, borrowers).
  WorkerClient peers_{options_.token};
  // Owned and borrowed refs, and the borrowers of owned objects; made once
  // this process's address is known.
  std::unique_ptr<ReferenceCounter> refs_;
  // Puts, Get and Wait, over `owned_`, `refs_` and the node store (made
  // with `refs_`).
  std::unique_ptr<NodeStore> node_store_;
  std::unique_ptr<ObjectProvider> objects_;
  // Calls to the nodes: leases from this one and those spillbacks name,
  // connecting (made once this node's address is known).
  std::unique_ptr<GrpcNodeClients> nodes_;
  // Workers: tells the node when the running task blocks in Get.
  std::unique_ptr<BlockedNotifier> blocked_notifier_;
  // The tasks this process submitted, until they settle, and their
  // by-reference arguments made values before they are sent.
  TaskManager tasks_{static_cast<TaskResultSink *>(this)};
  DependencyResolver resolver_{static_cast<ArgumentSource *>(this)};
  // Normal tasks as a caller (made once the job is known, before any task
  // can arrive or be submitted; then never reset).
  std::unique_ptr<NormalTaskSubmitter> normal_;
  // Placement groups seen CREATED (their bundles' nodes), by id; this
  // process's RemovePlacementGroup forgets one.
  absl::Mutex groups_mu_;
  absl::flat_hash_map<std::string, proto::PlacementGroupInfo> created_groups_
      ABSL_GUARDED_BY(groups_mu_);
  std::unique_ptr<Service> service_;
  // Task batches are capped at kMaxTaskMessageBytes, one spec's inline
  // arguments at kMaxInlineArgBytes: a message never needs more.
  rpc::RpcServer server_{{.max_receive_message_bytes = 64 << 20, .memory_quota_bytes = 256 << 20}};
  // Task streams, both ends (task_stream.h); one thread.
  rpc::FrameLoop frames_{{.max_frame_bytes = kMaxTaskFrameBytes}};
  // The streams this process opens as an owner, cancelled at Shutdown.
  TaskStreams task_streams_{&frames_, options_.token};
  // Actor calls as a caller, and the actors this process created.
  ActorTaskSubmitter actor_calls_{&task_streams_, &tasks_, static_cast<ActorDirectory *>(this),
                                  [this](const std::vector<std::string> &ids) { Release(ids); }};

  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  // Borrower side: owners' WatchExit calls, answered at Shutdown.
  absl::Mutex watchers_mu_;
  std::vector<ExitWatch *> exit_watches_ ABSL_GUARDED_BY(watchers_mu_);
  bool exiting_ ABSL_GUARDED_BY(watchers_mu_) = false;

  // Work that must not run under other locks (frees), and lease upkeep.
  absl::Mutex deferred_mu_;
  std::deque<std::function<void()>> deferred_ ABSL_GUARDED_BY(deferred_mu_);
  bool stop_housekeeping_ ABSL_GUARDED_BY(deferred_mu_) = false;
  // The earliest time housekeeping knows it must look at the leases again;
  // `replan_` wakes it when that moves earlier.
  absl::Time housekeeping_next_ ABSL_GUARDED_BY(deferred_mu_) = absl::InfiniteFuture();
  bool replan_ ABSL_GUARDED_BY(deferred_mu_) = false;
  std::thread housekeeping_;

  // Worker processes: the tasks pushed here, queued and run.
  TaskReceiver receiver_{static_cast<TaskRunner *>(this)};
};

}  // namespace sunray
