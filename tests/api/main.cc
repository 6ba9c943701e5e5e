// The API suite's main. The cluster runtime starts this same binary as its
// worker processes: ray::Init recognizes them (from their environment) and
// serves tasks instead of running tests.
#include <gtest/gtest.h>
#include <ray/api.h>

#include <cstdlib>

int main(int argc, char **argv) {
  if (std::getenv("SUNRAY_STARTUP_TOKEN") != nullptr) {
    ray::RayConfig config;
    ray::Init(config, argc, argv);  // never returns in a worker
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
