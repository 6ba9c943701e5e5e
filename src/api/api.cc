// The public API's non-template functions: lifecycle, the runtime holder and
// thin forwards to the current runtime.
#include <atomic>
#include <mutex>
#include <thread>

#include "ray/api.h"
#include "ray/api/internal_api.h"
#include "src/api/config.h"
#include "src/api/local/local_runtime.h"
#include "src/common/process.h"
#include "src/core/runtime_env_check.h"
#include "src/worker/cluster_connect.h"

namespace ray {
namespace internal {
namespace {

// The process's runtime, read on every ObjectRef copy: readers take no lock.
// A reader counts itself in `readers_` before it loads `raw_`; Take clears
// `raw_` first and then waits until no reader is inside before it gives up
// `owner_`, so a reader that saw a runtime uses one still owned here. Both
// sides use sequentially consistent order: Take's clear and its count of
// readers, and a reader's count and its load, cannot pass each other.
class RuntimeSlot {
 public:
  // Runs fn(RayRuntime &) if a runtime is set (it must not call Take).
  template <typename Fn>
  void With(Fn &&fn) {
    readers_.fetch_add(1);
    if (RayRuntime *runtime = raw_.load()) fn(*runtime);
    readers_.fetch_sub(1);
  }
  // A copy of the runtime's owning pointer; null if none is set.
  std::shared_ptr<RayRuntime> Get() {
    std::shared_ptr<RayRuntime> copy;
    // owner_ changes only while raw_ is null and no reader is inside.
    With([&](RayRuntime &) { copy = owner_; });
    return copy;
  }
  // Sets `runtime` unless one is set already.
  void SetIfEmpty(std::shared_ptr<RayRuntime> runtime) {
    std::lock_guard lock(lifecycle_mu_);
    if (owner_ != nullptr) return;
    owner_ = std::move(runtime);
    raw_.store(owner_.get());
  }
  // Removes the runtime; returns it (null if none was set).
  std::shared_ptr<RayRuntime> Take() {
    std::lock_guard lock(lifecycle_mu_);
    raw_.store(nullptr);
    while (readers_.load() != 0) std::this_thread::yield();  // a reader is mid-call
    return std::move(owner_);
  }

 private:
  std::mutex lifecycle_mu_;            // Init and Shutdown
  std::shared_ptr<RayRuntime> owner_;  // see Get
  std::atomic<RayRuntime *> raw_{nullptr};
  std::atomic<int64_t> readers_{0};
};

RuntimeSlot current_runtime;

}  // namespace

std::shared_ptr<RayRuntime> TryGetRayRuntime() { return current_runtime.Get(); }

std::shared_ptr<RayRuntime> GetRayRuntime() {
  auto runtime = TryGetRayRuntime();
  if (runtime == nullptr) {
    throw RayException("Sunray is not initialized: call ray::Init() first.");
  }
  return runtime;
}

// Reference counting must not throw from ObjectRef's constructors and
// destructor; the runtime reports its own failures.
void AddLocalReference(const std::string &object_id) noexcept {
  if (object_id.empty()) return;
  current_runtime.With([&](RayRuntime &runtime) {
    try {
      runtime.AddLocalReference(object_id);
    } catch (...) {
    }
  });
}

void RemoveLocalReference(const std::string &object_id) noexcept {
  if (object_id.empty()) return;
  current_runtime.With([&](RayRuntime &runtime) {
    try {
      runtime.RemoveLocalReference(object_id);
    } catch (...) {
    }
  });
}

std::string GetOwnershipInfo(const std::string &object_id) {
  auto runtime = TryGetRayRuntime();
  return runtime == nullptr ? std::string() : runtime->GetOwnershipInfo(object_id);
}

void AddBorrowedReference(const std::string &object_id, const std::string &owner_info) {
  if (auto runtime = TryGetRayRuntime()) runtime->AddBorrowedReference(object_id, owner_info);
}

}  // namespace internal

void Init(RayConfig &config, int argc, char **argv) {
  if (IsInitialized()) return;
  sunray::ConfigureMutexDeadlockDetection();
  RayConfig merged = config;
  sunray::WorkerFlags worker_flags;
  std::vector<std::string> unknown_flags;
  if (argc > 0 && argv != nullptr) {
    sunray::ApplyCommandLineFlags(argc, argv, &merged, &worker_flags, &unknown_flags);
  }
  for (const auto &flag : unknown_flags) {
    RAYLOG(WARNING) << "Ignoring the unknown flag " << flag << ".";
  }
  sunray::ApplyEnvironment(&merged);
  if (merged.runtime_env) {
    std::string error;
    if (!sunray::ParseRuntimeEnvInfo(merged.runtime_env->SerializeToRuntimeEnvInfo(), &error)) {
      throw internal::RayRuntimeEnvException("The job's runtime env is invalid: " + error + ".");
    }
  }
  if (sunray::StartedAsWorker()) {
    // A node daemon started this program as a worker: serve tasks, never
    // return to main.
    sunray::RunAsWorker(merged, [](std::shared_ptr<internal::RayRuntime> runtime) {
      internal::current_runtime.Take();
      internal::current_runtime.SetIfEmpty(std::move(runtime));
    });
  }
  std::shared_ptr<internal::RayRuntime> runtime;
  if (merged.local_mode) {
    sunray::LocalModeRuntime::Options options;
    options.ray_namespace = merged.ray_namespace;
    runtime = std::make_shared<sunray::LocalModeRuntime>(options);
  } else {
    runtime = sunray::ConnectDriver(merged);
  }
  internal::current_runtime.SetIfEmpty(std::move(runtime));
}

void Init(RayConfig &config) { Init(config, 0, nullptr); }

void Init() {
  RayConfig config;
  Init(config);
}

bool IsInitialized() { return internal::TryGetRayRuntime() != nullptr; }

void Shutdown() {
  std::shared_ptr<internal::RayRuntime> runtime = internal::current_runtime.Take();
  if (runtime == nullptr) return;
  if (auto *local = dynamic_cast<sunray::LocalModeRuntime *>(runtime.get())) {
    local->Shutdown();
  } else {
    sunray::ShutdownDriver(runtime.get());
  }
  // Other holders (calls in flight) release their copies when they return.
}

internal::ActorCreator<PyActorClass> Actor(PyActorClass actor_class) {
  internal::RemoteFunctionHolder holder(actor_class.module_name, actor_class.function_name,
                                        actor_class.class_name, internal::LangType::PYTHON);
  return internal::ActorCreator<PyActorClass>(std::move(holder));
}

internal::ActorCreator<JavaActorClass> Actor(JavaActorClass actor_class) {
  internal::RemoteFunctionHolder holder(actor_class.module_name, actor_class.function_name,
                                        actor_class.class_name, internal::LangType::JAVA);
  return internal::ActorCreator<JavaActorClass>(std::move(holder));
}

boost::optional<ActorHandleXlang> GetActor(const std::string &name,
                                           const std::string &ray_namespace) {
  if (name.empty()) return {};
  auto runtime = internal::GetRayRuntime();
  std::string id = runtime->GetActorId(name, ray_namespace);
  if (id.empty()) return {};
  return ActorHandleXlang(id);
}

void ExitActor() { internal::GetRayRuntime()->ExitActor(); }

bool WasCurrentActorRestarted() { return internal::GetRayRuntime()->WasCurrentActorRestarted(); }

std::string GetNamespace() { return internal::GetRayRuntime()->GetNamespace(); }

RuntimeContext GetRuntimeContext() {
  return RuntimeContext(internal::GetRayRuntime()->GetRuntimeContext());
}

PlacementGroup CreatePlacementGroup(const PlacementGroupCreationOptions &options) {
  return internal::GetRayRuntime()->CreatePlacementGroup(options);
}

void RemovePlacementGroup(const std::string &placement_group_id) {
  internal::GetRayRuntime()->RemovePlacementGroup(placement_group_id);
}

std::vector<PlacementGroup> GetAllPlacementGroups() {
  return internal::GetRayRuntime()->GetAllPlacementGroups();
}

PlacementGroup GetPlacementGroupById(const std::string &id) {
  return internal::GetRayRuntime()->GetPlacementGroupById(id);
}

PlacementGroup GetPlacementGroup(const std::string &name) {
  return internal::GetRayRuntime()->GetPlacementGroup(name);
}

bool PlacementGroup::Wait(int timeout_seconds) {
  if (callback_) return callback_(id_, timeout_seconds);
  return internal::GetRayRuntime()->WaitPlacementGroupReady(id_, timeout_seconds);
}

void RunTaskExecutionLoop() {
  throw internal::RayException(
      "ray::RunTaskExecutionLoop: this process was not started as a Sunray worker.");
}

}  // namespace ray
