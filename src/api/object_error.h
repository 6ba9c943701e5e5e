// The errors an object can hold instead of a value, and their mapping to the
// public exceptions. This is the one place where runtime errors become Ray's
// exception types.
#pragma once

#include <string>

namespace sunray {

enum class ErrorType {
  kTaskExecution,      // the function threw
  kActorDied,          // the actor died, was killed, exited, or failed to start
  kWorkerDied,         // the process running the task died
  kObjectLost,         // the value is gone (freed, owner died, lost copies)
  kFunctionNotFound,   // the executing side has no such function
  kTaskCancelled,      // ray::Cancel
  kTaskUnschedulable,  // the scheduling strategy can never be met
  kRuntimeEnv,         // the runtime env could not be set up
};

struct ErrorInfo {
  ErrorType type = ErrorType::kTaskExecution;
  // The full message users see in what().
  std::string message;
  // For kTaskExecution: the pieces.
  std::string function_name;
  std::string exception_type;
  std::string exception_message;
};

// Throws the public exception for `error`.
[[noreturn]] void ThrowObjectError(const ErrorInfo &error);

// Short name of an error type, for logs.
const char *ErrorTypeName(ErrorType type);

}  // namespace sunray
