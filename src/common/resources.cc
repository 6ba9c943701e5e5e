#include "src/common/resources.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

namespace sunray {

int64_t ToFixedPoint(double amount) { return std::llround(amount * kResourceUnit); }

double FromFixedPoint(int64_t amount) { return static_cast<double>(amount) / kResourceUnit; }

namespace {

template <typename Map>
bool FitsIn(const Map &request, const Map &pool) {
  for (const auto &[name, amount] : request) {
    if (amount <= 0) continue;
    auto it = pool.find(name);
    if (it == pool.end() || it->second < amount) return false;
  }
  return true;
}

}  // namespace

bool Fits(const ResourceSet &request, const ResourceSet &pool) { return FitsIn(request, pool); }

bool Fits(const proto::ResourceMap &request, const proto::ResourceMap &pool) {
  return FitsIn(request.amounts(), pool.amounts());
}

absl::StatusOr<ResourceSet> ParseResourcesJson(const std::string &json) {
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(json);
  } catch (const std::exception &e) {
    return absl::InvalidArgumentError(std::string("--resources is not valid JSON: ") + e.what());
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError("--resources must be a JSON object like {\"name\": 2}");
  }
  ResourceSet resources;
  for (const auto &[name, value] : parsed.items()) {
    if (name.empty()) return absl::InvalidArgumentError("--resources has an empty name");
    if (!value.is_number() || !std::isfinite(value.get<double>()) || value.get<double>() < 0) {
      return absl::InvalidArgumentError("--resources: '" + name +
                                        "' must be a non-negative number, not " + value.dump());
    }
    resources[name] = ToFixedPoint(value.get<double>());
  }
  return resources;
}

absl::StatusOr<Labels> ParseLabelsJson(const std::string &json) {
  nlohmann::json parsed;
  try {
    parsed = nlohmann::json::parse(json);
  } catch (const std::exception &e) {
    return absl::InvalidArgumentError(std::string("--labels is not valid JSON: ") + e.what());
  }
  if (!parsed.is_object()) {
    return absl::InvalidArgumentError("--labels must be a JSON object like {\"zone\": \"a\"}");
  }
  Labels labels;
  for (const auto &[key, value] : parsed.items()) {
    if (key.empty()) return absl::InvalidArgumentError("--labels has an empty key");
    if (key.rfind("ray.io/", 0) == 0) {
      return absl::InvalidArgumentError("--labels: '" + key +
                                        "' is in the prefix ray.io/, which is reserved for the "
                                        "labels Sunray sets itself");
    }
    if (!value.is_string()) {
      return absl::InvalidArgumentError("--labels: the value of '" + key +
                                        "' must be a string, not " + value.dump());
    }
    labels[key] = value.get<std::string>();
  }
  return labels;
}

void FillResourceMap(const ResourceSet &resources, proto::ResourceMap *out) {
  for (const auto &[name, amount] : resources) (*out->mutable_amounts())[name] = amount;
}

ResourceSet ResourceSetOf(const proto::ResourceMap &resources) {
  return ResourceSet(resources.amounts().begin(), resources.amounts().end());
}

std::string ResourcesText(const ResourceSet &resources) {
  std::ostringstream text;
  text << "{";
  for (const auto &[name, amount] : resources) {
    text << (text.tellp() > 1 ? ", " : "") << name << ": " << FromFixedPoint(amount);
  }
  text << "}";
  return text.str();
}

}  // namespace sunray
