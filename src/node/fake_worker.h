// Test helper: a stand-in worker process (a shell) for WorkerPool tests.
// It prints a hello line, records its pid where the test finds it, and waits
// to be killed; the test then registers it as a real worker would over RPC.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "src/node/worker_pool.h"

namespace sunray::testing {

inline WorkerPool::Launch FakeWorker(const std::string &directory) {
  return {{"/bin/sh", "-c",
           "echo hello from worker $SUNRAY_STARTUP_TOKEN; echo $$ > " + directory +
               "/started-$SUNRAY_STARTUP_TOKEN; exec sleep 1000"},
          {}};
}

// Waits (up to 10 s) for the fake worker with `token` to start, then
// registers it with `pool`. Returns its pid, or 0 on timeout.
inline pid_t RegisterWhenStarted(WorkerPool &pool, const std::string &directory, int64_t token) {
  const std::string marker = directory + "/started-" + std::to_string(token);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!std::filesystem::exists(marker) || std::filesystem::file_size(marker) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  pid_t pid = 0;
  std::ifstream(marker) >> pid;
  if (!pool.RegisterWorker(token, pid, "addr-" + std::to_string(token),
                           "tasks-" + std::to_string(token))
           .ok())
    return 0;
  return pid;
}

}  // namespace sunray::testing
