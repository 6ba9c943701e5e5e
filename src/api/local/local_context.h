// What local mode shares between the runtime, its tasks and its actors: the
// services a task needs to run, and the per-thread "what am I running" record.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ray/api/ray_runtime.h"
#include "src/api/function_executor.h"
#include "src/api/local/memory_store.h"
#include "src/api/local/task_pool.h"
#include "src/common/id.h"

namespace sunray {

class LocalActor;

// Set on a thread while it runs a task, actor constructor or actor method.
struct ExecutionContext {
  TaskID task_id;
  ActorID actor_id;  // nil outside actors
  int actor_restarts = 0;
  bool in_actor = false;
};

// The calling thread's context; null on threads that run no task (drivers).
ExecutionContext *CurrentExecutionContext();

// Installs `context` on this thread for the scope's lifetime.
class ExecutionContextScope {
 public:
  explicit ExecutionContextScope(ExecutionContext context);
  ~ExecutionContextScope();
  ExecutionContextScope(const ExecutionContextScope &) = delete;
  ExecutionContextScope &operator=(const ExecutionContextScope &) = delete;

 private:
  ExecutionContext context_;
  ExecutionContext *previous_;
};

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
