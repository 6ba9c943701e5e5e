// NodeService (Ray: the raylet's RPCs): node stats, worker registration,
// worker leases, blocked workers, killing workers, and drivers.
//
// Besides the handlers it ties the node's components together:
// - a worker process exits (WorkerPool's exit callback → OnWorkerExit): its
//   lease is freed and the control service is told (ReportWorkerDeath);
// - a job ends (its driver's process exits, or UnregisterDriver →
//   FinishJob): the job's waiting lease requests fail, its workers are
//   killed except detached actors', and the control service marks the job
//   finished (MarkJobFinished, which also kills the job's actors).
// Calls to the control service are asynchronous (rpc::AsyncCaller), so no
// handler or reaper waits on the network.
//
// Threads: handlers on gRPC's callback threads; OnWorkerExit on the pool's
// reaper thread; FinishJob for exited drivers on the driver watcher's
// thread. The components it uses are thread-safe; it keeps no state of its
// own beyond them.
//
// Teardown: Stop() (after the lease manager and the pool stopped, before the
// server stops) stops watching drivers and cancels calls to control.
#pragma once

#include <chrono>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "control.grpc.pb.h"
#include "node.grpc.pb.h"
#include "src/common/id.h"
#include "src/common/resources.h"
#include "src/node/driver_watcher.h"
#include "src/node/lease_manager.h"
#include "src/node/object_transfer.h"
#include "src/node/worker_pool.h"
#include "src/objstore/object_store.h"
#include "src/rpc/async_caller.h"

namespace sunray {

class NodeService final : public proto::NodeService::CallbackService {
 public:
  struct Options {
    std::string token;  // the cluster token, required of callers and sent to control
    NodeID node_id;
    ResourceSet resources;        // the node's totals
    std::string control_address;  // host:port of the control service
    std::string store_socket;     // the object store's handshake socket
    std::chrono::milliseconds driver_poll_interval{100};
  };

  // Borrows the store, the pool, the lease manager and the puller: they
  // outlive it.
  NodeService(Options options, ObjectStore &store, WorkerPool &workers, LeaseManager &leases,
              ObjectPuller &puller);
  ~NodeService() override;  // Stop()

  // A worker's process exited (how: "exited with status 1", ...): its lease
  // ends, control hears of it, and the store objects it owned are deleted.
  void OnWorkerExit(const WorkerInfo &worker, const std::string &how);
  // The job is over on this node (its driver exited or said so): its
  // workers stop and the driver's store objects are deleted. Idempotent.
  void FinishJob(const JobID &job_id);
  // Jobs control reports finished (their drivers ran on any node): once a
  // job has been reported for kFinishedJobGrace, its workers here stop and
  // its waiting lease requests are dropped, once per job. (Called with
  // every report; the grace lets the job's workers free what its driver's
  // exit released.)
  void JobsFinished(const std::vector<JobID> &jobs);
  static constexpr absl::Duration kFinishedJobGrace = absl::Seconds(2);
  // Idempotent.
  void Stop();
  // Where this daemon serves (host:port), once it does: workers it starts
  // are told (SUNRAY_NODE_ADDRESS), whichever owner asked for them.
  void SetAddress(std::string address);

  // OK if this is the node `node_id` (the control service's health check).
  grpc::ServerUnaryReactor *CheckHealth(grpc::CallbackServerContext *context,
                                        const proto::CheckHealthRequest *request,
                                        proto::CheckHealthReply *reply) override;
  grpc::ServerUnaryReactor *GetNodeStats(grpc::CallbackServerContext *context,
                                         const proto::GetNodeStatsRequest *request,
                                         proto::GetNodeStatsReply *reply) override;
  grpc::ServerUnaryReactor *RegisterWorker(grpc::CallbackServerContext *context,
                                           const proto::RegisterWorkerRequest *request,
                                           proto::RegisterWorkerReply *reply) override;
  // Answered when the lease is granted (or fails).
  grpc::ServerUnaryReactor *RequestWorkerLease(grpc::CallbackServerContext *context,
                                               const proto::RequestWorkerLeaseRequest *request,
                                               proto::RequestWorkerLeaseReply *reply) override;
  grpc::ServerUnaryReactor *ReturnWorker(grpc::CallbackServerContext *context,
                                         const proto::ReturnWorkerRequest *request,
                                         proto::ReturnWorkerReply *reply) override;
  grpc::ServerUnaryReactor *PrepareBundles(grpc::CallbackServerContext *context,
                                           const proto::PrepareBundlesRequest *request,
                                           proto::PrepareBundlesReply *reply) override;
  grpc::ServerUnaryReactor *CommitBundles(grpc::CallbackServerContext *context,
                                          const proto::CommitBundlesRequest *request,
                                          proto::CommitBundlesReply *reply) override;
  grpc::ServerUnaryReactor *ReturnBundles(grpc::CallbackServerContext *context,
                                          const proto::ReturnBundlesRequest *request,
                                          proto::ReturnBundlesReply *reply) override;
  grpc::ServerUnaryReactor *NotifyBlocked(grpc::CallbackServerContext *context,
                                          const proto::NotifyBlockedRequest *request,
                                          proto::NotifyBlockedReply *reply) override;
  grpc::ServerUnaryReactor *KillWorker(grpc::CallbackServerContext *context,
                                       const proto::KillWorkerRequest *request,
                                       proto::KillWorkerReply *reply) override;
  grpc::ServerUnaryReactor *RegisterDriver(grpc::CallbackServerContext *context,
                                           const proto::RegisterDriverRequest *request,
                                           proto::RegisterDriverReply *reply) override;
  grpc::ServerUnaryReactor *UnregisterDriver(grpc::CallbackServerContext *context,
                                             const proto::UnregisterDriverRequest *request,
                                             proto::UnregisterDriverReply *reply) override;
  // Answered once this node's store has a sealed copy (ObjectPuller).
  grpc::ServerUnaryReactor *PullObject(grpc::CallbackServerContext *context,
                                       const proto::PullObjectRequest *request,
                                       proto::PullObjectReply *reply) override;
  // This store's copy, in chunks (ServeObject).
  grpc::ServerWriteReactor<proto::ObjectChunk> *FetchObject(
      grpc::CallbackServerContext *context, const proto::FetchObjectRequest *request) override;

 private:
  class LeaseReactor;
  std::string address();

  const Options options_;
  ObjectStore &store_;
  WorkerPool &workers_;
  LeaseManager &leases_;
  ObjectPuller &puller_;
  rpc::AsyncCaller control_calls_;
  absl::Mutex mu_;
  std::string address_ ABSL_GUARDED_BY(mu_);
  // Each running job's driver address (owner of its puts).
  absl::flat_hash_map<JobID, std::string> driver_addresses_ ABSL_GUARDED_BY(mu_);
  // Jobs whose end this node acted on (JobsFinished); ids are never reused.
  absl::flat_hash_set<JobID> finished_jobs_ ABSL_GUARDED_BY(mu_);
  // Jobs heard finished, not acted on yet: when first heard.
  absl::flat_hash_map<JobID, absl::Time> finished_heard_ ABSL_GUARDED_BY(mu_);
  DriverWatcher drivers_;  // last: its thread calls FinishJob until it stops
};

}  // namespace sunray
