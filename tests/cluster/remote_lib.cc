// A shared library of remote functions for multi_driver_test's code search
// path test: the generic sunray-worker loads it and runs WhereAmI by its
// registered name. The driver (driver_main.cc) is not linked with it; it
// registers a stand-in under the same name.
#include <ray/api.h>
#include <unistd.h>

#include <climits>
#include <string>

namespace {

// "remote_lib EXE": this library's version, and the program running it.
std::string WhereAmI() {
  char exe[PATH_MAX] = {};
  const ssize_t length = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  return "remote_lib " + std::string(exe, length > 0 ? static_cast<size_t>(length) : 0);
}

}  // namespace

RAY_REMOTE(WhereAmI);
