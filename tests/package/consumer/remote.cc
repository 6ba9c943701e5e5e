// Remote functions in a shared library: the driver links it, and workers
// started with the code search path load it (Ray's way of shipping C++ code).
#include <ray/api.h>
#include <unistd.h>

int Pid() { return static_cast<int>(getpid()); }
int Square(int x) { return x * x; }
RAY_REMOTE(Pid, Square);
