// How ray::Init's inputs become one configuration: RayConfig fields, then
// --ray_* command-line flags, then environment variables. Only flags Sunray
// owns are read; everything else in argv is left alone.
#pragma once

#include <string>
#include <vector>

#include "ray/api/ray_config.h"

namespace sunray {

// Settings that come only from flags (a node daemon passes them to the
// workers it starts).
struct WorkerFlags {
  std::string job_id;
  std::string session_dir;
  std::string logs_dir;
  std::string node_ip_address;
  std::string node_manager_port;
  std::string raylet_socket_name;
  std::string plasma_store_socket_name;
  std::string startup_token;
  std::string runtime_env_hash;
};

// Applies the --ray_* flags in argv to *config and *worker. Accepts
// "--flag=value" and "--flag value". Throws RayException for a bad value
// (naming the flag). Unknown --ray_* flags are reported in *unknown.
void ApplyCommandLineFlags(int argc, char **argv, ray::RayConfig *config, WorkerFlags *worker,
                           std::vector<std::string> *unknown);

// Fills what the environment provides and the config left empty
// (RAY_ADDRESS).
void ApplyEnvironment(ray::RayConfig *config);

}  // namespace sunray
