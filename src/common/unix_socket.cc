#include "src/common/unix_socket.h"

#include <sys/socket.h>

#include <cstring>

namespace sunray {

absl::StatusOr<sockaddr_un> UnixSocketAddress(const std::string &path) {
  sockaddr_un address{};
  if (path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError("the socket path is too long (" +
                                      std::to_string(path.size()) + " bytes, at most " +
                                      std::to_string(sizeof(address.sun_path) - 1) + "): " + path);
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  return address;
}

}  // namespace sunray
