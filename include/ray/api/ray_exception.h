// Exceptions thrown by the public API. Their names and namespace are Ray's
// (user code catches `ray::internal::RayTaskException`), so they live in
// ray::internal even though they are part of the public surface.
//
//   RayException                 generic: bad options, registration errors, ...
//   RayActorException            the actor died, was killed, exited, or its
//                                constructor threw
//   RayTaskException             the remote function threw
//   RayWorkerException           the process running the task died
//   UnreconstructableException   the object is gone and cannot be rebuilt
//   RayFunctionNotFound          the executing side has no such function
//   RayRuntimeEnvException       RuntimeEnv misuse (missing key, bad JSON)
//   RayTimeoutException          Get did not finish within its timeout
//
// Sunray extensions:
//   TaskCancelledException       the task was cancelled with ray::Cancel
//   TaskUnschedulableException   the task's scheduling constraints cannot be
//                                met (e.g. hard affinity to an unknown node)
#pragma once

#include <exception>
#include <string>
#include <utility>

#include "ray/api/visibility.h"

namespace ray {
namespace internal {

class RAY_EXPORT RayException : public std::exception {
 public:
  RayException() = default;
  explicit RayException(std::string message) : msg_(std::move(message)) {}
  const char *what() const noexcept override { return msg_.c_str(); }

  // Public for compatibility with code written against Ray's header.
  std::string msg_;
};

class RAY_EXPORT RayActorException : public RayException {
 public:
  using RayException::RayException;
};

// A remote function, actor constructor or method threw. Besides the full
// message (what()), carries the pieces: the function's registered name, the
// thrown exception's type (demangled) and its what() text.
class RAY_EXPORT RayTaskException : public RayException {
 public:
  using RayException::RayException;
  RayTaskException(std::string message, std::string function_name, std::string exception_type,
                   std::string exception_message)
      : RayException(std::move(message)),
        function_name_(std::move(function_name)),
        exception_type_(std::move(exception_type)),
        exception_message_(std::move(exception_message)) {}

  const std::string &FunctionName() const { return function_name_; }
  const std::string &ExceptionType() const { return exception_type_; }
  const std::string &ExceptionMessage() const { return exception_message_; }

 private:
  std::string function_name_;
  std::string exception_type_;
  std::string exception_message_;
};

class RAY_EXPORT RayWorkerException : public RayException {
 public:
  using RayException::RayException;
};

class RAY_EXPORT UnreconstructableException : public RayException {
 public:
  using RayException::RayException;
};

class RAY_EXPORT RayFunctionNotFound : public RayException {
 public:
  using RayException::RayException;
};

class RAY_EXPORT RayRuntimeEnvException : public RayException {
 public:
  using RayException::RayException;
};

class RAY_EXPORT RayTimeoutException : public RayException {
 public:
  using RayException::RayException;
};

// Sunray extension: the task was cancelled before it produced a value.
class RAY_EXPORT TaskCancelledException : public RayException {
 public:
  using RayException::RayException;
};

// Sunray extension: the task's scheduling strategy can never be satisfied.
class RAY_EXPORT TaskUnschedulableException : public RayException {
 public:
  using RayException::RayException;
};

// Thrown by ray::ExitActor() inside an actor method; the runtime catches it
// and turns it into an intentional exit of the actor. Not for user code.
class RAY_EXPORT RayIntentionalSystemExitException : public RayException {
 public:
  using RayException::RayException;
};

}  // namespace internal
}  // namespace ray
