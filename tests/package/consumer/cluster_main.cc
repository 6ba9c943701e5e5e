// A driver on an embedded cluster of the installed package, whose workers are
// the installed sunray-worker loading remote.cc's library from the code
// search path given as the first argument.
#include <ray/api.h>
#include <unistd.h>

#include <iostream>
#include <string>

int Pid();
int Square(int x);

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  ray::RayConfig config;
  config.code_search_path = {argv[1]};
  ray::Init(config);
  const int worker = *ray::Task(Pid).Remote().Get();
  const int nine = *ray::Task(Square).Remote(3).Get();
  ray::Shutdown();
  std::cout << "cluster consumer ok: " << nine << (worker != getpid() ? " elsewhere" : " here")
            << std::endl;
  return nine == 9 && worker != getpid() ? 0 : 1;
}
