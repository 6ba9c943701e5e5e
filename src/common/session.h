// Session directories: where a cluster started on this machine keeps its
// token, addresses, pid records and logs.
//
//   <root>/session_<time>_<pid>/
//     token              the cluster token (mode 0600)
//     control_address    host:port of the control service, once it serves
//                        (a joining node's session: the head's, given)
//     node_address       host:port of this machine's node daemon of the session
//     node_id            that node's id (hex)
//     pids/<name>.pid    one per daemon started for this session
//     logs/<name>.out    each daemon's stdout and stderr
//   <root>/session_latest -> the newest session
//
// <root> is $SUNRAY_TEMP_DIR, else /tmp/sunray.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sunray {

std::string SessionRoot();

// Creates a new session directory with `token` (a fresh one if empty: a new
// cluster's head); returns its path.
absl::StatusOr<std::string> CreateSession(const std::string &token = "");

// Records that daemon `name` (pid) belongs to the session.
absl::Status RecordDaemon(const std::string &session, const std::string &name, pid_t pid);

// Every session directory under the root, oldest first.
std::vector<std::string> ListSessions();

// The newest session, or NotFound.
absl::StatusOr<std::string> LatestSession();

// Stops every daemon recorded in the session and removes its directory.
// Returns how many daemons were stopped.
int StopSession(const std::string &session, std::chrono::milliseconds grace);

absl::StatusOr<std::string> ReadFileToString(const std::string &path);
// Writes through a temporary file and a rename, so readers never see half.
absl::Status WriteFileAtomically(const std::string &path, const std::string &content,
                                 int mode = 0644);

// Waits until `path` exists and is non-empty, up to `timeout`; returns its
// content.
absl::StatusOr<std::string> WaitForFile(const std::string &path, std::chrono::milliseconds timeout);

}  // namespace sunray
