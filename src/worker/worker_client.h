// The calls this process makes to other processes' WorkerService (owners,
// borrowers): OwnerClient over gRPC.
//
// Asynchronous calls go through an rpc::AsyncCaller: Stop cancels those in
// flight and waits for their callbacks (a WatchExit then ends Cancelled).
// Thread-safe; the blocking AddBorrower and CancelTask must not run on a gRPC callback
// thread.
#pragma once

#include <string>

#include "src/rpc/async_caller.h"
#include "src/worker/reference_counter.h"

namespace sunray {

class WorkerClient : public OwnerClient {
 public:
  explicit WorkerClient(std::string token) : token_(token), calls_(std::move(token)) {}

  absl::Status AddBorrower(const std::string &owner, const std::string &id,
                           const std::string &borrower) override;
  void RemoveBorrower(const std::string &owner, const std::string &id, const std::string &borrower,
                      int64_t count) override;
  void WatchExit(const std::string &address, std::function<void(absl::Status)> done) override;
  void GetOwnedObject(const std::string &owner, const std::string &id,
                      std::function<void(absl::StatusOr<proto::ObjectValue>)> done) override;

  // Asks the worker at `worker` to cancel the task with `return_id`
  // (blocking, kShortCallTimeout; ray::Cancel's thread).
  [[nodiscard]] absl::Status CancelTask(const std::string &worker, const std::string &return_id,
                                        bool force);

  // Cancels the calls in flight and waits for their callbacks; later calls
  // fail Cancelled at once. Idempotent.
  void Stop() { calls_.Stop(); }

 private:
  const std::string token_;
  rpc::AsyncCaller calls_;
};

}  // namespace sunray
