// ray::RuntimeEnv: the environment a job, task or actor runs in.
//
//   ray::RuntimeEnv env;
//   env.Set("env_vars", std::map<std::string, std::string>{{"MODE", "fast"}});
//   ray::Task(Work).SetRuntimeEnv(env).Remote();
//
// Fields are JSON values keyed by name (Ray's schema: "env_vars", "working_dir",
// "pip", ...). Sunray applies "env_vars" (a string-to-string map) to the worker
// processes that run the task or actor; other fields are stored and carried.
// Errors (missing key, wrong type, bad JSON) throw RayRuntimeEnvException.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "ray/api/ray_exception.h"
#include "ray/api/visibility.h"

namespace ray {

class RAY_EXPORT RuntimeEnv {
 public:
  // Sets field `name` to `value`, which must convert to JSON.
  template <typename T>
  void Set(const std::string &name, const T &value) {
    try {
      fields_[name] = nlohmann::json(value);
    } catch (const std::exception &e) {
      throw internal::RayRuntimeEnvException("Failed to set the runtime env field '" + name +
                                             "': " + e.what());
    }
  }

  // Returns field `name` converted to T.
  template <typename T>
  T Get(const std::string &name) const {
    auto it = fields_.find(name);
    if (it == fields_.end()) {
      throw internal::RayRuntimeEnvException("The runtime env field '" + name +
                                             "' does not exist.");
    }
    try {
      return it->template get<T>();
    } catch (const std::exception &e) {
      throw internal::RayRuntimeEnvException("Failed to read the runtime env field '" + name +
                                             "': " + e.what());
    }
  }

  // Sets field `name` from a JSON text.
  void SetJsonStr(const std::string &name, const std::string &json_str);
  // Returns field `name` as JSON text.
  std::string GetJsonStr(const std::string &name) const;

  bool Contains(const std::string &name) const;
  // Removes field `name`; returns whether it existed.
  bool Remove(const std::string &name);
  bool Empty() const;

  // The whole environment as one JSON object text.
  std::string Serialize() const;
  // The form carried with tasks: {"serialized_runtime_env": "<Serialize()>"}.
  std::string SerializeToRuntimeEnvInfo() const;
  static RuntimeEnv Deserialize(const std::string &serialized_runtime_env);

 private:
  nlohmann::json fields_ = nlohmann::json::object();
};

}  // namespace ray
