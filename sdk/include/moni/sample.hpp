// The sample model: series labels, float64 values, ms timestamps, metadata.
#pragma once

#include <moni/plugin_abi.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace moni {

inline std::string_view sv(moni_str s) { return {s.ptr, s.len}; }
inline moni_str ms(std::string_view s) { return moni_str{s.data(), s.size()}; }

/// Metric family type, as in the Prometheus/OpenMetrics TYPE line.
enum class MetricType : uint32_t {
  Unknown = MONI_METRIC_UNKNOWN,
  Counter = MONI_METRIC_COUNTER,
  Gauge = MONI_METRIC_GAUGE,
  Histogram = MONI_METRIC_HISTOGRAM,
  Summary = MONI_METRIC_SUMMARY,
  Info = MONI_METRIC_INFO,
  StateSet = MONI_METRIC_STATESET,
  GaugeHistogram = MONI_METRIC_GAUGE_HISTOGRAM,
};

/// The TYPE keyword of the text format ("counter", "gauge", ...).
inline std::string_view type_name(MetricType t) {
  switch (t) {
    case MetricType::Counter: return "counter";
    case MetricType::Gauge: return "gauge";
    case MetricType::Histogram: return "histogram";
    case MetricType::Summary: return "summary";
    case MetricType::Info: return "info";
    case MetricType::StateSet: return "stateset";
    case MetricType::GaugeHistogram: return "gaugehistogram";
    default: return "unknown";
  }
}

/// An owning label pair. Thread-safety: a value type.
struct Label {
  std::string name;
  std::string value;
  friend bool operator==(const Label&, const Label&) = default;
  friend auto operator<=>(const Label&, const Label&) = default;
};

/// An owning, sorted label set including "__name__". Thread-safety: a value type.
using Labels = std::vector<Label>;

inline constexpr std::string_view kMetricNameLabel = "__name__";

/// The Prometheus staleness marker: a NaN with a bit pattern of its own.
inline double stale_nan() { return std::bit_cast<double>(uint64_t{MONI_STALE_NAN_BITS}); }
inline bool is_stale_nan(double v) { return std::bit_cast<uint64_t>(v) == MONI_STALE_NAN_BITS; }

/// Family metadata (owning). Thread-safety: a value type.
struct Metadata {
  std::string family;
  MetricType type = MetricType::Unknown;
  std::string help;
  std::string unit;
};

/// Label value of `name` in a sorted ABI label array, or empty when absent.
inline std::string_view find_label(const moni_label* labels, uint32_t count, std::string_view name) {
  for (uint32_t i = 0; i < count; ++i)
    if (sv(labels[i].name) == name) return sv(labels[i].value);
  return {};
}

}  // namespace moni
