#include "src/core/object_error.h"

#include "ray/api/ray_exception.h"

namespace sunray {
namespace {

// The payload's type URL (a name only: nothing is fetched from it).
constexpr char kErrorInfoUrl[] = "sunray.dev/proto/sunray.proto.ErrorInfo";

absl::StatusCode CodeOf(ErrorType type) {
  switch (type) {
    case ErrorType::kTaskExecution:
      return absl::StatusCode::kAborted;
    case ErrorType::kActorDied:
    case ErrorType::kWorkerDied:
      return absl::StatusCode::kUnavailable;
    case ErrorType::kObjectLost:
    case ErrorType::kFunctionNotFound:
      return absl::StatusCode::kNotFound;
    case ErrorType::kTaskCancelled:
      return absl::StatusCode::kCancelled;
    case ErrorType::kTaskUnschedulable:
    case ErrorType::kRuntimeEnv:
      return absl::StatusCode::kFailedPrecondition;
  }
  return absl::StatusCode::kUnknown;
}

}  // namespace

absl::Status ObjectErrorStatus(const ErrorInfo &error) {
  absl::Status status(CodeOf(error.type), error.message);
  proto::ErrorInfo wire;
  ErrorToProto(error, &wire);
  status.SetPayload(kErrorInfoUrl, absl::Cord(wire.SerializeAsString()));
  return status;
}

std::optional<ErrorInfo> ObjectErrorOf(const absl::Status &status) {
  auto payload = status.GetPayload(kErrorInfoUrl);  // absl::optional
  if (!payload) return std::nullopt;
  proto::ErrorInfo wire;
  if (!wire.ParseFromString(std::string(*payload))) return std::nullopt;
  return ErrorFromProto(wire);
}

void ThrowStatus(const absl::Status &status) {
  if (std::optional<ErrorInfo> error = ObjectErrorOf(status)) ThrowObjectError(*error);
  if (absl::IsDeadlineExceeded(status)) {
    throw ray::internal::RayTimeoutException(std::string(status.message()));
  }
  throw ray::internal::RayException(std::string(status.message()));
}

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
  const int value = static_cast<int>(type);
  return proto::ErrorType_IsValid(value)
             ? proto::ErrorType_Name(static_cast<proto::ErrorType>(value)).c_str()
             : "UNKNOWN";
}

ErrorType ErrorTypeFromProto(int type, bool *known) {
  const bool valid = proto::ErrorType_IsValid(type);
  if (known != nullptr) *known = valid;
  return valid ? static_cast<ErrorType>(type) : ErrorType::kWorkerDied;
}

ErrorInfo ErrorFromProto(const proto::ErrorInfo &error) {
  ErrorInfo info;
  bool known = false;
  info.type = ErrorTypeFromProto(error.type(), &known);
  info.message = error.message();
  if (!known) {
    info.message += " (with an error type this process does not know: " +
                    std::to_string(static_cast<int>(error.type())) + ")";
  }
  info.function_name = error.function_name();
  info.exception_type = error.exception_type();
  info.exception_message = error.exception_message();
  return info;
}

void ErrorToProto(const ErrorInfo &error, proto::ErrorInfo *out) {
  out->set_type(static_cast<proto::ErrorType>(error.type));
  out->set_message(error.message);
  out->set_function_name(error.function_name);
  out->set_exception_type(error.exception_type);
  out->set_exception_message(error.exception_message);
}

}  // namespace sunray
