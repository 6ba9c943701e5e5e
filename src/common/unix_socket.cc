#include "src/common/unix_socket.h"

#include <cstddef>
#include <cstring>

namespace sunray {

absl::StatusOr<UnixAddress> UnixSocketAddress(const std::string &path) {
  UnixAddress result{};
  result.address.sun_family = AF_UNIX;
  result.abstract = !path.empty() && path[0] == '@';
  // Abstract names are length-delimited (no terminating NUL); paths are
  // NUL-terminated strings.
  const size_t needed = result.abstract ? path.size() : path.size() + 1;
  if (path.empty() || needed > sizeof(result.address.sun_path)) {
    return absl::InvalidArgumentError(
        "the socket path is " + std::string(path.empty() ? "empty" : "too long") + " (" +
        std::to_string(path.size()) + " bytes, at most " +
        std::to_string(sizeof(result.address.sun_path) - 1) + "): " + path);
  }
  std::memcpy(result.address.sun_path, path.data(), path.size());
  if (result.abstract) result.address.sun_path[0] = '\0';
  result.length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + needed);
  return result;
}

std::string UnixSocketPath(const std::string &dir, const std::string &file,
                           const std::string &abstract_name) {
  const std::string path = dir + "/" + file;
  return UnixSocketAddress(path).ok() ? path : "@" + abstract_name;
}

}  // namespace sunray
