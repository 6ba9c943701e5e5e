// Unix-domain socket addresses.
//
// A path is a file in the file system, or, written "@name", a name in
// Linux's abstract socket namespace: no file to create or remove, gone with
// the last socket bound to it. Abstract names carry no file permissions, so
// a server that uses one must authenticate its clients itself (the object
// store asks for the cluster token before anything else).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <string>

#include "absl/status/statusor.h"

namespace sunray {

struct UnixAddress {
  sockaddr_un address;
  socklen_t length;  // for bind/connect
  bool abstract;     // no file behind it
};

// The address of the socket at `path`. InvalidArgument when the path does
// not fit sockaddr_un (107 bytes).
absl::StatusOr<UnixAddress> UnixSocketAddress(const std::string &path);

// Where a socket called `file` in `dir` goes: that path when it fits a
// socket address, else the abstract name "@" + `abstract_name` (deep temp
// directories make paths longer than the 107 bytes a socket path may have).
std::string UnixSocketPath(const std::string &dir, const std::string &file,
                           const std::string &abstract_name);

}  // namespace sunray
