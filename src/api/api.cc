// The public API's non-template functions: lifecycle, the runtime holder and
// thin forwards to the current runtime.
#include <atomic>
#include <mutex>

#include "ray/api.h"
#include "ray/api/internal_api.h"
#include "src/api/config.h"
#include "src/api/local/local_runtime.h"
#include "src/api/runtime_env_check.h"
#include "src/worker/cluster_connect.h"

namespace ray {
namespace internal {
namespace {

// The process's runtime. Readers take a copy of the shared_ptr so a
// concurrent Shutdown cannot destroy a runtime mid-call.
std::mutex runtime_mu;
std::shared_ptr<RayRuntime> current_runtime;  // guarded by runtime_mu

}  // namespace

std::shared_ptr<RayRuntime> TryGetRayRuntime() {
  std::lock_guard lock(runtime_mu);
  return current_runtime;
}

std::shared_ptr<RayRuntime> GetRayRuntime() {
  auto runtime = TryGetRayRuntime();
  if (runtime == nullptr) {
    throw RayException("Sunray is not initialized: call ray::Init() first.");
  }
  return runtime;
}

void AddLocalReference(const std::string &object_id) noexcept {
  if (object_id.empty()) return;
  if (auto runtime = TryGetRayRuntime()) {
    try {
      runtime->AddLocalReference(object_id);
    } catch (...) {
      // Reference counting must not throw from constructors; the runtime
      // reports its own failures.
    }
  }
}

void RemoveLocalReference(const std::string &object_id) noexcept {
  if (object_id.empty()) return;
  if (auto runtime = TryGetRayRuntime()) {
    try {
      runtime->RemoveLocalReference(object_id);
    } catch (...) {
    }
  }
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
      std::lock_guard lock(internal::runtime_mu);
      internal::current_runtime = std::move(runtime);
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
  std::lock_guard lock(internal::runtime_mu);
  if (internal::current_runtime == nullptr) internal::current_runtime = std::move(runtime);
}

void Init(RayConfig &config) { Init(config, 0, nullptr); }

void Init() {
  RayConfig config;
  Init(config);
}

bool IsInitialized() { return internal::TryGetRayRuntime() != nullptr; }

void Shutdown() {
  std::shared_ptr<internal::RayRuntime> runtime;
  {
    std::lock_guard lock(internal::runtime_mu);
    runtime.swap(internal::current_runtime);
  }
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
