// Application metrics: Gauge, Counter, Sum and Histogram.
//
//   #include <ray/api/metric.h>
//   ray::Counter requests("requests", "Requests served", "1", {"route"});
//   requests.Inc(1, {{"route", "/"}});
//
// Usable from drivers, tasks and actors. Each metric is identified by its
// name; values are kept per distinct tag set. Recording a tag key that was not
// declared, or a Counter increment below zero, throws RayException.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

#include "ray/api/visibility.h"

namespace ray {

using MetricTags = std::unordered_map<std::string, std::string>;

class RAY_EXPORT Metric {
 public:
  enum class Kind { kGauge, kCounter, kSum, kHistogram };

  virtual ~Metric();

  std::string GetName() const { return name_; }

  // Records `value` with `tags`: sets a gauge, adds to a counter or sum,
  // observes for a histogram.
  void Record(double value, const MetricTags &tags = {});

 protected:
  Metric(Kind kind, std::string name, std::string description, std::string unit,
         std::vector<std::string> tag_keys, std::vector<double> boundaries = {});

 private:
  Kind kind_;
  std::string name_;
  std::string description_;
  std::string unit_;
  std::vector<std::string> tag_keys_;
  std::vector<double> boundaries_;
};

class RAY_EXPORT Gauge : public Metric {
 public:
  Gauge(std::string name, std::string description, std::string unit,
        std::vector<std::string> tag_keys = {});
  void Set(double value, const MetricTags &tags = {});
};

class RAY_EXPORT Counter : public Metric {
 public:
  Counter(std::string name, std::string description, std::string unit,
          std::vector<std::string> tag_keys = {});
  void Inc(double value = 1.0, const MetricTags &tags = {});
};

class RAY_EXPORT Sum : public Metric {
 public:
  Sum(std::string name, std::string description, std::string unit,
      std::vector<std::string> tag_keys = {});
};

class RAY_EXPORT Histogram : public Metric {
 public:
  // `boundaries` are the upper bounds of the buckets, ascending.
  Histogram(std::string name, std::string description, std::string unit,
            std::vector<double> boundaries, std::vector<std::string> tag_keys = {});
  void Observe(double value, const MetricTags &tags = {});
};

namespace internal {
// Sunray extension: every metric recorded in this process, in the Prometheus
// text exposition format (what the metrics endpoint serves).
RAY_EXPORT std::string MetricsPrometheusText();
}  // namespace internal

}  // namespace ray
