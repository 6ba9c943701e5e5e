#include "ray/api/metric.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <sstream>

#include "ray/api/ray_exception.h"

namespace ray {
namespace {

// One time series: a metric with one set of tag values.
struct Series {
  double value = 0;                     // gauge: last value; counter/sum: total
  std::vector<uint64_t> bucket_counts;  // histogram: per boundary, plus +Inf
  uint64_t count = 0;                   // histogram
  double sum = 0;                       // histogram
};

struct MetricFamily {
  Metric::Kind kind;
  std::string description;
  std::string unit;
  std::vector<double> boundaries;
  std::map<std::map<std::string, std::string>, Series> series;
};

// Every metric recorded in this process, by name.
class MetricRegistry {
 public:
  static MetricRegistry &Instance() {
    static MetricRegistry *registry = new MetricRegistry();
    return *registry;
  }

  void Declare(const std::string &name, Metric::Kind kind, const std::string &description,
               const std::string &unit, const std::vector<double> &boundaries) {
    std::lock_guard lock(mu_);
    auto [it, inserted] = families_.try_emplace(name);
    if (inserted) {
      it->second = MetricFamily{kind, description, unit, boundaries, {}};
    } else if (it->second.kind != kind) {
      throw internal::RayException("Metric '" + name +
                                   "' is already declared as a different kind of metric.");
    }
  }

  void Record(const std::string &name, double value,
              const std::map<std::string, std::string> &tags) {
    std::lock_guard lock(mu_);
    MetricFamily &family = families_.at(name);
    Series &series = family.series[tags];
    switch (family.kind) {
      case Metric::Kind::kGauge:
        series.value = value;
        break;
      case Metric::Kind::kCounter:
      case Metric::Kind::kSum:
        series.value += value;
        break;
      case Metric::Kind::kHistogram: {
        series.bucket_counts.resize(family.boundaries.size() + 1, 0);
        size_t bucket =
            std::lower_bound(family.boundaries.begin(), family.boundaries.end(), value) -
            family.boundaries.begin();
        ++series.bucket_counts[bucket];
        ++series.count;
        series.sum += value;
        break;
      }
    }
  }

  std::string PrometheusText() const {
    std::lock_guard lock(mu_);
    std::ostringstream out;
    for (const auto &[name, family] : families_) {
      static const char *kTypes[] = {"gauge", "counter", "counter", "histogram"};
      out << "# HELP " << name << ' ' << family.description << '\n';
      out << "# TYPE " << name << ' ' << kTypes[static_cast<int>(family.kind)] << '\n';
      for (const auto &[tags, series] : family.series) {
        auto labels = [&tags = tags](const std::string &extra) {
          std::ostringstream text;
          bool first = true;
          for (const auto &[key, value] : tags) {
            text << (first ? "" : ",") << key << "=\"" << Escape(value) << '"';
            first = false;
          }
          if (!extra.empty()) text << (first ? "" : ",") << extra;
          std::string body = text.str();
          return body.empty() ? std::string() : "{" + body + "}";
        };
        if (family.kind != Metric::Kind::kHistogram) {
          out << name << labels("") << ' ' << series.value << '\n';
          continue;
        }
        uint64_t cumulative = 0;
        for (size_t i = 0; i < series.bucket_counts.size(); ++i) {
          cumulative += series.bucket_counts[i];
          std::ostringstream bound;
          if (i < family.boundaries.size()) {
            bound << family.boundaries[i];
          } else {
            bound << "+Inf";
          }
          out << name << "_bucket" << labels("le=\"" + bound.str() + "\"") << ' ' << cumulative
              << '\n';
        }
        out << name << "_sum" << labels("") << ' ' << series.sum << '\n';
        out << name << "_count" << labels("") << ' ' << series.count << '\n';
      }
    }
    return out.str();
  }

 private:
  static std::string Escape(const std::string &value) {
    std::string escaped;
    for (char c : value) {
      if (c == '\\' || c == '"') escaped += '\\';
      if (c == '\n') {
        escaped += "\\n";
        continue;
      }
      escaped += c;
    }
    return escaped;
  }

  mutable std::mutex mu_;
  std::map<std::string, MetricFamily> families_;
};

}  // namespace

Metric::Metric(Kind kind, std::string name, std::string description, std::string unit,
               std::vector<std::string> tag_keys, std::vector<double> boundaries)
    : kind_(kind),
      name_(std::move(name)),
      description_(std::move(description)),
      unit_(std::move(unit)),
      tag_keys_(std::move(tag_keys)),
      boundaries_(std::move(boundaries)) {
  if (name_.empty()) throw internal::RayException("A metric needs a name.");
  if (!std::is_sorted(boundaries_.begin(), boundaries_.end())) {
    throw internal::RayException("Histogram '" + name_ + "': boundaries must be ascending.");
  }
  MetricRegistry::Instance().Declare(name_, kind_, description_, unit_, boundaries_);
}

Metric::~Metric() = default;

void Metric::Record(double value, const MetricTags &tags) {
  if (!std::isfinite(value)) {
    throw internal::RayException("Metric '" + name_ + "': cannot record a non-finite value.");
  }
  if ((kind_ == Kind::kCounter) && value < 0) {
    throw internal::RayException("Counter '" + name_ + "' cannot be increased by " +
                                 std::to_string(value) + ".");
  }
  std::map<std::string, std::string> ordered;
  for (const auto &[key, tag_value] : tags) {
    if (std::find(tag_keys_.begin(), tag_keys_.end(), key) == tag_keys_.end()) {
      throw internal::RayException("Metric '" + name_ + "': tag key '" + key +
                                   "' was not declared.");
    }
    ordered.emplace(key, tag_value);
  }
  MetricRegistry::Instance().Record(name_, value, ordered);
}

Gauge::Gauge(std::string name, std::string description, std::string unit,
             std::vector<std::string> tag_keys)
    : Metric(Kind::kGauge, std::move(name), std::move(description), std::move(unit),
             std::move(tag_keys)) {}

void Gauge::Set(double value, const MetricTags &tags) { Record(value, tags); }

Counter::Counter(std::string name, std::string description, std::string unit,
                 std::vector<std::string> tag_keys)
    : Metric(Kind::kCounter, std::move(name), std::move(description), std::move(unit),
             std::move(tag_keys)) {}

void Counter::Inc(double value, const MetricTags &tags) { Record(value, tags); }

Sum::Sum(std::string name, std::string description, std::string unit,
         std::vector<std::string> tag_keys)
    : Metric(Kind::kSum, std::move(name), std::move(description), std::move(unit),
             std::move(tag_keys)) {}

Histogram::Histogram(std::string name, std::string description, std::string unit,
                     std::vector<double> boundaries, std::vector<std::string> tag_keys)
    : Metric(Kind::kHistogram, std::move(name), std::move(description), std::move(unit),
             std::move(tag_keys), std::move(boundaries)) {}

void Histogram::Observe(double value, const MetricTags &tags) { Record(value, tags); }

namespace internal {
std::string MetricsPrometheusText() { return MetricRegistry::Instance().PrometheusText(); }
}  // namespace internal

}  // namespace ray
