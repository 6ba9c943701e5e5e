// Test helper: a stand-in worker process (a shell) for WorkerPool tests.
// It prints a hello line, records its pid where the test finds it, and waits
// to be killed; the test then registers it as a real worker would over RPC.
#pragma once

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
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

// Registers as a worker's RPC would, and waits (10 s at most) for the answer.
inline absl::Status Register(WorkerPool &pool, int64_t token, pid_t pid, const std::string &address,
                             const std::string &task_address) {
  std::promise<absl::Status> answered;
  pool.RegisterWorker(token, pid, address, task_address,
                      [&](absl::Status status) { answered.set_value(std::move(status)); });
  auto future = answered.get_future();
  if (future.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    return absl::DeadlineExceededError("the registration was not answered in 10 s");
  }
  return future.get();
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
  if (!Register(pool, token, pid, "addr-" + std::to_string(token), "tasks-" + std::to_string(token))
           .ok()) {
    return 0;
  }
  return pid;
}

}  // namespace sunray::testing
