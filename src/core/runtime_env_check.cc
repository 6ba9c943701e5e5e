#include "src/core/runtime_env_check.h"

#include <nlohmann/json.hpp>

namespace sunray {

std::optional<std::map<std::string, std::string>> ParseRuntimeEnvInfo(const std::string &info,
                                                                      std::string *error) {
  std::map<std::string, std::string> env_vars;
  if (info.empty()) return env_vars;
  try {
    nlohmann::json outer = nlohmann::json::parse(info);
    nlohmann::json env =
        outer.is_object() && outer.contains("serialized_runtime_env")
            ? nlohmann::json::parse(outer["serialized_runtime_env"].get<std::string>())
            : outer;
    if (!env.is_object()) {
      *error = "the runtime env is not a JSON object";
      return std::nullopt;
    }
    if (env.contains("env_vars")) {
      const nlohmann::json &vars = env["env_vars"];
      if (!vars.is_object()) {
        *error = "runtime env field 'env_vars' must map names to strings";
        return std::nullopt;
      }
      for (const auto &[name, value] : vars.items()) {
        if (!value.is_string()) {
          *error = "runtime env variable '" + name + "' must be a string, not " + value.dump();
          return std::nullopt;
        }
        env_vars.emplace(name, value.get<std::string>());
      }
    }
  } catch (const std::exception &e) {
    *error = std::string("the runtime env is not valid JSON: ") + e.what();
    return std::nullopt;
  }
  return env_vars;
}

}  // namespace sunray
