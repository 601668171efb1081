// Test-only in-memory series store: implements the engine's Queryable and a
// C moni_storage_reader (so the prom_api plugin can read it through the
// harness), and loads OpenMetrics text with timestamps.
#pragma once

#include <moni/plugin_abi.h>

#include <map>
#include <string>
#include <vector>

#include "promql/queryable.hpp"

namespace moni::promql::test_support {

/// Thread-safety: read-only use is safe from any thread once loaded.
class MemoryStore : public Queryable {
 public:
  MemoryStore();
  /// Appends a sample (samples of a series must come in time order).
  void add(const Labels& labels, int64_t t_ms, double v);
  /// Loads OpenMetrics/Prometheus text with timestamps (seconds, as in
  /// promtool's backfill input). Returns the number of samples.
  size_t load_openmetrics(const std::string& text);

  Result<void> select(std::span<const Matcher> matchers, int64_t mint, int64_t maxt,
                      const std::function<bool(Labels&&, std::vector<Point>&&)>& fn) const override;
  std::vector<std::string> label_names(std::span<const Matcher> matchers, int64_t mint,
                                       int64_t maxt) const;
  std::vector<std::string> label_values(std::string_view name, std::span<const Matcher> matchers,
                                        int64_t mint, int64_t maxt) const;
  /// A storage reader over this store for PluginHarness::set_storage().
  const moni_storage_reader* reader() const { return &reader_; }
  size_t series_count() const { return series_.size(); }

 private:
  bool matches(const Labels& ls, std::span<const Matcher> ms) const;
  std::map<Labels, std::vector<Point>> series_;
  moni_storage_reader reader_{};
};

}  // namespace moni::promql::test_support
