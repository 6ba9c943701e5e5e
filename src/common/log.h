// Logging for the daemons and the worker library (spdlog): one logger per
// component, named "control", "node.leases", "worker.submitter", ...
//
//   static const auto logger = log::Get("node.leases");
//   logger->warn("could not return lease {} of worker {}: {}", id, pid, why);
//
// Lines go to standard error, which `sunray start` and the node daemon send
// to the session's logs/<name>.out (daemons, workers); a driver's stay on
// its own standard error. Each line reads
//   [2026-12-04 02:14:21.123] [node.leases] [warning] [pid 1234] text
// The level is SetLevel's, else $SUNRAY_LOG_LEVEL (read once), else info.
// (RAYLOG, the public API's macro for users' code, is separate.)
//
// Thread-safe.
#pragma once

#include <spdlog/logger.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace sunray::log {

// The logger of `component` (made on first use; the same one after).
std::shared_ptr<spdlog::logger> Get(const std::string &component);

// Sets every logger's level: trace, debug, info, warning, error, critical
// or off. InvalidArgument naming the value and the choices otherwise.
absl::Status SetLevel(const std::string &level);

// The level's name, for passing on (`sunray start` to its daemons).
std::string LevelName();

}  // namespace sunray::log

#ifndef ABSL_USES_STD_STRING_VIEW
// Debian's Abseil has a string_view of its own (status messages are one).
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view value, FormatContext &context) const {
    return fmt::formatter<fmt::string_view>::format(fmt::string_view(value.data(), value.size()),
                                                    context);
  }
};
#endif
