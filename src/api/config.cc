#include "src/api/config.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <sstream>

#include "ray/api/ray_exception.h"

namespace sunray {
namespace {

std::vector<std::string> Split(const std::string &text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream stream(text);
  while (std::getline(stream, part, separator)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

}  // namespace

void ApplyCommandLineFlags(int argc, char **argv, ray::RayConfig *config, WorkerFlags *worker,
                           std::vector<std::string> *unknown) {
  using Setter = std::function<void(const std::string &)>;
  const std::map<std::string, Setter> setters = {
      {"ray_address", [&](const std::string &v) { config->address = v; }},
      {"ray_redis_password", [&](const std::string &v) { config->redis_password_ = v; }},
      {"ray_redis_username", [&](const std::string &v) { config->redis_username_ = v; }},
      {"ray_code_search_path",
       [&](const std::string &v) { config->code_search_path = Split(v, ':'); }},
      {"ray_head_args",
       [&](const std::string &v) {
         for (auto &arg : Split(v, ' ')) config->head_args.push_back(arg);
       }},
      {"ray_job_namespace", [&](const std::string &v) { config->ray_namespace = v; }},
      {"ray_default_actor_lifetime",
       [&](const std::string &v) {
         std::string lower = v;
         for (auto &c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
         if (lower == "detached") {
           config->default_actor_lifetime = ray::ActorLifetime::DETACHED;
         } else if (lower == "non_detached") {
           config->default_actor_lifetime = ray::ActorLifetime::NON_DETACHED;
         } else {
           throw ray::internal::RayException(
               "--ray_default_actor_lifetime must be 'detached' or 'non_detached', not '" + v +
               "'.");
         }
       }},
      {"ray_runtime_env",
       [&](const std::string &v) { config->runtime_env = ray::RuntimeEnv::Deserialize(v); }},
      {"ray_runtime_env_hash", [&](const std::string &v) { worker->runtime_env_hash = v; }},
      {"ray_job_id", [&](const std::string &v) { worker->job_id = v; }},
      {"ray_session_dir", [&](const std::string &v) { worker->session_dir = v; }},
      {"ray_logs_dir", [&](const std::string &v) { worker->logs_dir = v; }},
      {"ray_node_ip_address", [&](const std::string &v) { worker->node_ip_address = v; }},
      {"ray_node_manager_port", [&](const std::string &v) { worker->node_manager_port = v; }},
      {"ray_raylet_socket_name", [&](const std::string &v) { worker->raylet_socket_name = v; }},
      {"ray_plasma_store_socket_name",
       [&](const std::string &v) { worker->plasma_store_socket_name = v; }},
      {"startup_token", [&](const std::string &v) { worker->startup_token = v; }},
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i] == nullptr ? "" : argv[i];
    if (arg.rfind("--", 0) != 0) continue;
    std::string name = arg.substr(2);
    std::string value;
    bool has_value = false;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    auto setter = setters.find(name);
    if (setter == setters.end()) {
      if (name.rfind("ray_", 0) == 0 && unknown != nullptr) unknown->push_back(arg);
      continue;
    }
    if (!has_value) {
      if (i + 1 >= argc || argv[i + 1] == nullptr) {
        throw ray::internal::RayException("The flag --" + name + " needs a value.");
      }
      value = argv[++i];
    }
    setter->second(value);
  }
}

void ApplyEnvironment(ray::RayConfig *config) {
  if (config->address.empty()) {
    if (const char *address = std::getenv("RAY_ADDRESS")) config->address = address;
  }
}

}  // namespace sunray
