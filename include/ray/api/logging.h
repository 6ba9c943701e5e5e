// RAYLOG(level) << ...: the logging macro of Ray's C++ API.
//
//   RAYLOG(INFO) << "processed " << n << " items";
//
// Levels: DEBUG, INFO, WARNING, ERROR, FATAL (FATAL aborts after logging).
// The threshold is read once from the environment variable
// RAY_BACKEND_LOG_LEVEL (debug|info|warning|error|fatal; default info).
// Lines go to standard error, prefixed with time, level, pid and file:line.
// Thread-safe: each statement writes one whole line.
#pragma once

#include <memory>
#include <ostream>

#include "ray/api/visibility.h"

// Windows headers define ERROR and some build systems define DEBUG; keep the
// enumerators usable regardless.
#pragma push_macro("DEBUG")
#pragma push_macro("ERROR")
#undef DEBUG
#undef ERROR

namespace ray {

enum class RayLoggerLevel { DEBUG = -1, INFO = 0, WARNING = 1, ERROR = 2, FATAL = 3 };

// One log statement. Collects the streamed values and emits them as one line
// when destroyed.
class RAY_EXPORT RayLogger {
 public:
  virtual ~RayLogger() = default;

  virtual bool IsEnabled() const = 0;

  template <typename T>
  RayLogger &operator<<(const T &value) {
    if (IsEnabled()) Stream() << value;
    return *this;
  }

 protected:
  virtual std::ostream &Stream() = 0;
};

RAY_EXPORT std::unique_ptr<RayLogger> CreateRayLogger(const char *file_name, int line_number,
                                                      RayLoggerLevel level);

RAY_EXPORT bool IsLevelEnabled(RayLoggerLevel level);

}  // namespace ray

#pragma pop_macro("ERROR")
#pragma pop_macro("DEBUG")

// The `if {} else` shape keeps a user's own `else` bound to the user's `if`.
#define RAYLOG(level)                                     \
  if (!ray::IsLevelEnabled(ray::RayLoggerLevel::level)) { \
  } else                                                  \
    (*ray::CreateRayLogger(__FILE__, __LINE__, ray::RayLoggerLevel::level))
