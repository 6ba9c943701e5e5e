#include "src/api/object_error.h"

#include "ray/api/ray_exception.h"

namespace sunray {

void ThrowObjectError(const ErrorInfo &error) {
  using namespace ray::internal;
  switch (error.type) {
    case ErrorType::kTaskExecution:
      throw RayTaskException(error.message, error.function_name, error.exception_type,
                             error.exception_message);
    case ErrorType::kActorDied:
      throw RayActorException(error.message);
    case ErrorType::kWorkerDied:
      throw RayWorkerException(error.message);
    case ErrorType::kObjectLost:
      throw UnreconstructableException(error.message);
    case ErrorType::kFunctionNotFound:
      throw RayFunctionNotFound(error.message);
    case ErrorType::kTaskCancelled:
      throw TaskCancelledException(error.message);
    case ErrorType::kTaskUnschedulable:
      throw TaskUnschedulableException(error.message);
    case ErrorType::kRuntimeEnv:
      throw RayRuntimeEnvException(error.message);
  }
  throw RayException(error.message);
}

const char *ErrorTypeName(ErrorType type) {
  switch (type) {
    case ErrorType::kTaskExecution:
      return "TASK_EXECUTION_EXCEPTION";
    case ErrorType::kActorDied:
      return "ACTOR_DIED";
    case ErrorType::kWorkerDied:
      return "WORKER_DIED";
    case ErrorType::kObjectLost:
      return "OBJECT_LOST";
    case ErrorType::kFunctionNotFound:
      return "FUNCTION_NOT_FOUND";
    case ErrorType::kTaskCancelled:
      return "TASK_CANCELLED";
    case ErrorType::kTaskUnschedulable:
      return "TASK_UNSCHEDULABLE";
    case ErrorType::kRuntimeEnv:
      return "RUNTIME_ENV_SETUP_FAILED";
  }
  return "UNKNOWN";
}

}  // namespace sunray
