#include "src/common/session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "src/common/environment.h"
#include "src/common/id.h"
#include "src/common/process.h"

namespace sunray {
namespace fs = std::filesystem;

std::string SessionRoot() {
  const char *root = std::getenv(env::kTempDir);
  return root != nullptr && root[0] != '\0' ? root : "/tmp/sunray";
}

absl::StatusOr<std::string> ReadFileToString(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

absl::Status WriteFileAtomically(const std::string &path, const std::string &content, int mode) {
  const std::string temporary = path + ".tmp." + std::to_string(getpid());
  int fd = open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) {
    return absl::InternalError("cannot write " + temporary + ": " + std::strerror(errno));
  }
  const bool written =
      write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  close(fd);
  if (!written || rename(temporary.c_str(), path.c_str()) != 0) {
    unlink(temporary.c_str());
    return absl::InternalError("cannot write " + path + ": " + std::strerror(errno));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CreateSession(const std::string &token) {
  std::error_code error;
  fs::create_directories(SessionRoot(), error);
  if (error) return absl::InternalError("cannot create " + SessionRoot() + ": " + error.message());
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  std::strftime(stamp, sizeof(stamp), "%Y-%m-%d_%H-%M-%S", &local);
  const std::string session = SessionRoot() + "/session_" + stamp + "_" + std::to_string(getpid());
  // Nothing of a session that could not be made stays behind.
  auto fail = [&](absl::Status status) {
    std::error_code ignored;
    fs::remove_all(session, ignored);
    return status;
  };
  fs::create_directories(session + "/pids", error);
  if (!error) fs::create_directories(session + "/logs", error);
  if (error) return fail(absl::InternalError("cannot create " + session + ": " + error.message()));
  std::string content = token;
  if (content.empty()) {
    uint8_t secret[32];
    FillRandom(secret, sizeof(secret));
    content = ToHex(secret, sizeof(secret));
  }
  absl::Status status = WriteFileAtomically(session + "/token", content, 0600);
  if (!status.ok()) return fail(status);
  const std::string latest = SessionRoot() + "/session_latest";
  fs::remove(latest, error);
  fs::create_directory_symlink(session, latest, error);
  return session;
}

absl::Status RecordDaemon(const std::string &session, const std::string &name, pid_t pid) {
  return WriteFileAtomically(session + "/pids/" + name + ".pid", std::to_string(pid));
}

std::vector<std::string> ListSessions() {
  std::vector<std::string> sessions;
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(SessionRoot(), error)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("session_", 0) == 0 && name != "session_latest" && entry.is_directory(error) &&
        !entry.is_symlink(error)) {
      sessions.push_back(entry.path().string());
    }
  }
  std::sort(sessions.begin(), sessions.end());
  return sessions;
}

absl::StatusOr<std::string> LatestSession() {
  std::vector<std::string> sessions = ListSessions();
  if (sessions.empty()) {
    return absl::NotFoundError("no Sunray session under " + SessionRoot() +
                               " (start one with `sunray start --head`)");
  }
  return sessions.back();
}

int StopSession(const std::string &session, std::chrono::milliseconds grace) {
  // Node daemons first, so they can still unregister; the control service last.
  std::vector<std::string> pid_files;
  std::error_code error;
  for (const auto &entry : fs::directory_iterator(session + "/pids", error)) {
    pid_files.push_back(entry.path().string());
  }
  std::stable_sort(pid_files.begin(), pid_files.end(), [](const auto &a, const auto &b) {
    auto is_control = [](const std::string &path) {
      return fs::path(path).filename() == "control.pid";
    };
    return !is_control(a) && is_control(b);
  });
  int stopped = 0;
  for (const auto &path : pid_files) {
    auto content = ReadFileToString(path);
    if (!content.ok()) continue;
    const pid_t pid = static_cast<pid_t>(std::atoi(content->c_str()));
    if (pid > 0 && ProcessAlive(pid)) {
      TerminateProcess(pid, grace);
      ++stopped;
    }
  }
  fs::remove_all(session, error);
  const std::string latest = SessionRoot() + "/session_latest";
  if (fs::is_symlink(latest, error) && !fs::exists(latest, error)) fs::remove(latest, error);
  return stopped;
}

absl::StatusOr<std::string> WaitForFile(const std::string &path,
                                        std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto content = ReadFileToString(path);
    if (content.ok() && !content->empty()) return content;
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError("timed out waiting for " + path);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace sunray
