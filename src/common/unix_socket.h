// Unix-domain socket addresses.
#pragma once

#include <sys/un.h>

#include <string>

#include "absl/status/statusor.h"

namespace sunray {

// The address of the socket at `path`. InvalidArgument when the path does
// not fit sockaddr_un (108 bytes).
absl::StatusOr<sockaddr_un> UnixSocketAddress(const std::string &path);

}  // namespace sunray
