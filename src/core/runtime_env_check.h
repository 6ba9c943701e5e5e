// Checks of serialized runtime environments, shared by the runtimes.
#pragma once

#include <map>
#include <optional>
#include <string>

namespace sunray {

// Parses the form RuntimeEnv::SerializeToRuntimeEnvInfo makes (empty text is
// an empty environment) and checks the fields Sunray acts on: "env_vars" must
// map names to strings. Returns the env vars, or sets *error and returns
// nullopt.
std::optional<std::map<std::string, std::string>> ParseRuntimeEnvInfo(const std::string &info,
                                                                      std::string *error);

}  // namespace sunray
