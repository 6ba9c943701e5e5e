// The per-thread "what am I running" record, which both runtimes set while
// a thread runs a task, an actor's constructor or one of its methods.
#pragma once

#include "src/common/id.h"

namespace sunray {

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

}  // namespace sunray
