#include "ray/api/logging.h"

#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <sstream>
#include <string>

#pragma push_macro("DEBUG")
#pragma push_macro("ERROR")
#undef DEBUG
#undef ERROR

namespace ray {
namespace {

RayLoggerLevel ThresholdFromEnvironment() {
  const char *value = std::getenv("RAY_BACKEND_LOG_LEVEL");
  if (value == nullptr) return RayLoggerLevel::INFO;
  std::string level(value);
  for (auto &c : level) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (level == "debug") return RayLoggerLevel::DEBUG;
  if (level == "warning") return RayLoggerLevel::WARNING;
  if (level == "error") return RayLoggerLevel::ERROR;
  if (level == "fatal") return RayLoggerLevel::FATAL;
  return RayLoggerLevel::INFO;
}

RayLoggerLevel Threshold() {
  static const RayLoggerLevel threshold = ThresholdFromEnvironment();
  return threshold;
}

char LevelLetter(RayLoggerLevel level) {
  switch (level) {
    case RayLoggerLevel::DEBUG:
      return 'D';
    case RayLoggerLevel::INFO:
      return 'I';
    case RayLoggerLevel::WARNING:
      return 'W';
    case RayLoggerLevel::ERROR:
      return 'E';
    case RayLoggerLevel::FATAL:
      return 'F';
  }
  return '?';
}

class StreamLogger : public RayLogger {
 public:
  StreamLogger(const char *file, int line, RayLoggerLevel level)
      : level_(level), enabled_(IsLevelEnabled(level)) {
    if (!enabled_) return;
    timeval now{};
    gettimeofday(&now, nullptr);
    tm local{};
    localtime_r(&now.tv_sec, &local);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &local);
    const char *base = std::strrchr(file, '/');
    stream_ << '[' << stamp << ',' << (now.tv_usec / 1000) << ' ' << LevelLetter(level) << ' '
            << getpid() << ' ' << gettid() << "] " << (base ? base + 1 : file) << ':' << line
            << ": ";
  }

  ~StreamLogger() override {
    if (!enabled_) return;
    stream_ << '\n';
    const std::string line = stream_.str();
    // One write call per line keeps concurrent lines whole.
    (void)!write(STDERR_FILENO, line.data(), line.size());
    if (level_ == RayLoggerLevel::FATAL) std::abort();
  }

  bool IsEnabled() const override { return enabled_; }

 protected:
  std::ostream &Stream() override { return stream_; }

 private:
  RayLoggerLevel level_;
  bool enabled_;
  std::ostringstream stream_;
};

}  // namespace

bool IsLevelEnabled(RayLoggerLevel level) {
  return static_cast<int>(level) >= static_cast<int>(Threshold());
}

std::unique_ptr<RayLogger> CreateRayLogger(const char *file_name, int line_number,
                                           RayLoggerLevel level) {
  return std::make_unique<StreamLogger>(file_name, line_number, level);
}

}  // namespace ray

#pragma pop_macro("ERROR")
#pragma pop_macro("DEBUG")
