#include "ray/api/runtime_env.h"

namespace ray {

void RuntimeEnv::SetJsonStr(const std::string &name, const std::string &json_str) {
  try {
    fields_[name] = nlohmann::json::parse(json_str);
  } catch (const std::exception &e) {
    throw internal::RayRuntimeEnvException("Failed to set the runtime env field '" + name +
                                           "' from JSON text: " + e.what());
  }
}

std::string RuntimeEnv::GetJsonStr(const std::string &name) const {
  auto it = fields_.find(name);
  if (it == fields_.end()) {
    throw internal::RayRuntimeEnvException("The runtime env field '" + name + "' does not exist.");
  }
  return it->dump();
}

bool RuntimeEnv::Contains(const std::string &name) const { return fields_.contains(name); }

bool RuntimeEnv::Remove(const std::string &name) { return fields_.erase(name) > 0; }

bool RuntimeEnv::Empty() const { return fields_.empty(); }

std::string RuntimeEnv::Serialize() const { return fields_.dump(); }

std::string RuntimeEnv::SerializeToRuntimeEnvInfo() const {
  nlohmann::json info;
  info["serialized_runtime_env"] = Serialize();
  return info.dump();
}

RuntimeEnv RuntimeEnv::Deserialize(const std::string &serialized_runtime_env) {
  RuntimeEnv env;
  try {
    env.fields_ = nlohmann::json::parse(serialized_runtime_env);
  } catch (const std::exception &e) {
    throw internal::RayRuntimeEnvException("Failed to parse a serialized runtime env: " +
                                           std::string(e.what()));
  }
  if (!env.fields_.is_object()) {
    throw internal::RayRuntimeEnvException("A serialized runtime env must be a JSON object.");
  }
  return env;
}

}  // namespace ray
