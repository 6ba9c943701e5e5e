#include "src/common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>

#include "absl/synchronization/mutex.h"
#include "src/common/environment.h"

namespace sunray::log {
namespace {

constexpr char kPattern[] = "[%Y-%m-%d %H:%M:%S.%e] [%n] [%l] [pid %P] %v";

const std::map<std::string, spdlog::level::level_enum> &Levels() {
  static const auto *levels = new std::map<std::string, spdlog::level::level_enum>{
      {"trace", spdlog::level::trace}, {"debug", spdlog::level::debug},
      {"info", spdlog::level::info},   {"warning", spdlog::level::warn},
      {"error", spdlog::level::err},   {"critical", spdlog::level::critical},
      {"off", spdlog::level::off}};
  return *levels;
}

// Every component's logger, sharing one sink. Not spdlog's registry: a
// user's program may use spdlog too, with loggers of its own.
struct Loggers {
  absl::Mutex mu;
  std::shared_ptr<spdlog::sinks::stderr_sink_mt> sink ABSL_GUARDED_BY(mu);
  std::map<std::string, std::shared_ptr<spdlog::logger>> by_name ABSL_GUARDED_BY(mu);
  spdlog::level::level_enum level ABSL_GUARDED_BY(mu) = spdlog::level::info;

  Loggers() {
    absl::MutexLock lock(&mu);
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    sink->set_pattern(kPattern);
    if (const char *value = std::getenv(env::kLogLevel); value != nullptr && *value != '\0') {
      auto it = Levels().find(value);
      if (it != Levels().end()) {
        level = it->second;
      } else {
        std::fprintf(stderr,
                     "%s=%s is not a log level (trace, debug, info, warning, error, "
                     "critical, off); using info\n",
                     env::kLogLevel, value);
      }
    }
  }
};

Loggers &All() {
  static auto *loggers = new Loggers();  // never destroyed: used until exit
  return *loggers;
}

}  // namespace

std::shared_ptr<spdlog::logger> Get(const std::string &component) {
  Loggers &all = All();
  absl::MutexLock lock(&all.mu);
  auto &logger = all.by_name[component];
  if (logger == nullptr) {
    logger = std::make_shared<spdlog::logger>(component, all.sink);
    logger->set_level(all.level);
    logger->flush_on(spdlog::level::warn);
  }
  return logger;
}

absl::Status SetLevel(const std::string &level) {
  auto it = Levels().find(level);
  if (it == Levels().end()) {
    return absl::InvalidArgumentError("'" + level +
                                      "' is not a log level: trace, debug, info, warning, error, "
                                      "critical or off");
  }
  Loggers &all = All();
  absl::MutexLock lock(&all.mu);
  all.level = it->second;
  for (auto &[name, logger] : all.by_name) logger->set_level(all.level);
  return absl::OkStatus();
}

std::string LevelName() {
  Loggers &all = All();
  absl::MutexLock lock(&all.mu);
  for (const auto &[name, level] : Levels()) {
    if (level == all.level) return name;
  }
  return "info";
}

}  // namespace sunray::log
