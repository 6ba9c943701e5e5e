// What local mode shares between the runtime, its tasks and its actors: the
// services a task needs to run.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ray/api/ray_runtime.h"
#include "src/api/local/task_pool.h"
#include "src/common/id.h"
#include "src/core/execution_context.h"
#include "src/core/function_executor.h"
#include "src/core/memory_store.h"

namespace sunray {

class LocalActor;

// Arguments resolved for a call: views into buffers kept alive here.
struct ResolvedArgs {
  ray::internal::ArgsViewList views;
  std::vector<std::shared_ptr<ray::internal::ObjectBuffer>> keep_alive;
};

// Services local tasks and actors use.
struct LocalServices {
  MemoryStore &store;
  TaskPool &pool;
  const FunctionExecutor &executor;

  // Resolves `args` (blocking on by-reference ones). Returns the error of a
  // failed dependency instead, if any.
  std::optional<ErrorInfo> ResolveArgs(const std::vector<ray::internal::TaskArg> &args,
                                       ResolvedArgs *resolved) const;
  // Holds references on everything `args` point to, until ReleaseArgs.
  void RetainArgs(const std::vector<ray::internal::TaskArg> &args) const;
  void ReleaseArgs(const std::vector<ray::internal::TaskArg> &args) const;
  // Stores a call's outcome under `return_id`.
  void StoreResult(const std::string &return_id, ExecutionResult result) const;
  void StoreError(const std::string &return_id, ErrorInfo error) const;
};

}  // namespace sunray
