// sunray-worker: the generic worker a node daemon starts when the driver set
// a code search path. Its functions come from the libraries on that path.
#include <iostream>

#include <ray/api.h>

int main(int argc, char **argv) {
  ray::RayConfig config;
  ray::Init(config, argc, argv);  // as a worker this never returns
  std::cerr << "sunray-worker is started by a node daemon for a driver that sets "
               "--ray_code_search_path; it is not meant to be run by hand.\n";
  return 2;
}
