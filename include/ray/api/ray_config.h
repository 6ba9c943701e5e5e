// ray::RayConfig: how ray::Init starts or joins a runtime.
//
//   ray::RayConfig config;
//   config.local_mode = true;          // everything in this process
//   ray::Init(config);
//
// Fields may be overridden by --ray_* command-line flags (see ray::Init).
#pragma once

#include <boost/optional.hpp>
#include <string>
#include <vector>

#include "ray/api/runtime_env.h"

namespace ray {

enum class ActorLifetime {
  NON_DETACHED,  // the actor dies with the job that created it
  DETACHED,      // the actor outlives its job until killed
};

class RayConfig {
 public:
  // Control-service address "host:port". Empty: the RAY_ADDRESS environment
  // variable, else an embedded local cluster.
  std::string address = "";

  // Run everything in this process: tasks on a thread pool, actors on their
  // own threads, objects in memory. For debugging and unit tests.
  bool local_mode = false;

  // Directories or .so files that generic workers load user code from.
  std::vector<std::string> code_search_path;

  // Extra arguments for the head node this driver starts itself.
  std::vector<std::string> head_args = {};

  // Lifetime of actors created by this job.
  ActorLifetime default_actor_lifetime = ActorLifetime::NON_DETACHED;

  // Job-wide runtime environment.
  boost::optional<RuntimeEnv> runtime_env;

  // Namespace for named actors and placement groups; empty means a fresh
  // anonymous namespace for this job.
  std::string ray_namespace = "";

  // Unstable fields kept for source compatibility with Ray.
  boost::optional<std::string> redis_password_;
  boost::optional<std::string> redis_username_;
  bool is_worker_ = false;
};

}  // namespace ray
