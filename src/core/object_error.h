// The errors an object can hold instead of a value, and their mapping to the
// public exceptions. This is the one place where runtime errors become Ray's
// exception types.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "worker.pb.h"

namespace sunray {

// The wire's enum (proto::ErrorType, worker.proto) is the one definition;
// this names its values for code that makes and reads errors.
enum class ErrorType {
  kTaskExecution = proto::TASK_EXECUTION_EXCEPTION,  // the function threw
  kActorDied = proto::ACTOR_DIED,                    // died, killed, exited, failed to start
  kWorkerDied = proto::WORKER_DIED,                  // the process running the task died
  kObjectLost = proto::OBJECT_LOST,                  // the value is gone
  kFunctionNotFound = proto::FUNCTION_NOT_FOUND,     // the executing side has no such function
  kTaskCancelled = proto::TASK_CANCELLED,            // ray::Cancel
  kTaskUnschedulable = proto::TASK_UNSCHEDULABLE,    // the strategy can never be met
  kRuntimeEnv = proto::RUNTIME_ENV_SETUP_FAILED,     // the runtime env could not be set up
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

// Inside the runtimes errors travel as absl::Status; an object's error rides
// in one as a payload, so that the API's edge throws the right exception.
//   absl::Status ObjectErrorStatus(error): code by type (kObjectLost →
//     NotFound, kTaskCancelled → Cancelled, ... kTaskExecution → Aborted),
//     the message, and `error` itself.
//   ObjectErrorOf(status): the error a status carries, if any.
//   ThrowStatus(status): the exception for a failed status — the object
//     error it carries, RayTimeoutException for DeadlineExceeded, otherwise
//     RayException with the status's message.
absl::Status ObjectErrorStatus(const ErrorInfo &error);
std::optional<ErrorInfo> ObjectErrorOf(const absl::Status &status);
[[noreturn]] void ThrowStatus(const absl::Status &status);

// Short name of an error type, for logs (the proto enum's name).
const char *ErrorTypeName(ErrorType type);

// The wire's error type as ours: a value this build does not know (a newer
// or bad peer's) reads as kWorkerDied, and `*known` (if given) says so.
ErrorType ErrorTypeFromProto(int type, bool *known = nullptr);

// An error as it travels (worker.proto), both ways; an unknown type reads
// as a worker death whose message names the type.
ErrorInfo ErrorFromProto(const proto::ErrorInfo &error);
void ErrorToProto(const ErrorInfo &error, proto::ErrorInfo *out);

}  // namespace sunray
