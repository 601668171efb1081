// Rule groups as configured: what the TOML config and imported Prometheus
// YAML rule files both turn into, before any expression is parsed.
#pragma once

#include <cstdint>
#include <moni/sample.hpp>
#include <string>
#include <utility>
#include <vector>

namespace moni::rules {

/// Where a group or rule was written, for error messages ("file:line:col").
struct SourcePos {
  std::string file;
  uint32_t line = 0;    // 1-based; 0 when unknown
  uint32_t column = 0;  // 1-based; 0 when unknown
  std::string str() const {
    std::string s = file;
    if (line) s += ":" + std::to_string(line) + ":" + std::to_string(column ? column : 1);
    return s;
  }
};

using LabelPairs = std::vector<std::pair<std::string, std::string>>;

/// One rule: recording when `record` is set, alerting when `alert` is set.
struct RuleSpec {
  std::string record;
  std::string alert;
  std::string expr;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  LabelPairs labels;
  LabelPairs annotations;  // alerting rules only
  SourcePos pos;
  SourcePos expr_pos;  // of the expr value; unknown (line 0): errors use `pos`
};

/// A group: rules evaluated in order, every interval.
struct GroupSpec {
  std::string name;
  int64_t interval_ms = 0;  // 0: the plugin's default evaluation interval
  int64_t limit = 0;        // 0: no limit on series/alerts per rule
  std::vector<RuleSpec> rules;
  SourcePos pos;
};

/// One alert as the engine hands it to the notifier (Alertmanager's v2
/// postableAlert): labels include alertname; ends_at_ms is in the future for
/// an active alert and the resolution time for a resolved one.
/// Thread-safety: a value type.
struct OutgoingAlert {
  moni::Labels labels;       // sorted
  moni::Labels annotations;  // sorted
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;
  std::string generator_url;
};

}  // namespace moni::rules
