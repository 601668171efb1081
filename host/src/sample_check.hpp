// The host's check of what collectors and processors emit, before any sink
// sees it: a sample whose metric name or a label name breaks Prometheus's
// name syntax, or with a label value that is not valid UTF-8, is dropped
// (Prometheus fails a whole scrape of /metrics on one such label, remote
// write receivers a whole request, and JSON answers would not parse).
#pragma once

#include <moni/plugin_abi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moni::host {

/// Why a sample is dropped (the `reason` label of moni_samples_dropped_total).
enum class DropReason : uint8_t {
  None = 0,
  InvalidUtf8,  ///< a label value is not valid UTF-8
  InvalidName,  ///< no or a bad metric name, or a bad label name
};
inline constexpr size_t kDropReasons = 3;
std::string_view drop_reason_name(DropReason r);

/// [a-zA-Z_:][a-zA-Z0-9_:]* (Prometheus's model.IsValidMetricName, legacy scheme).
bool valid_metric_name(std::string_view s);
/// [a-zA-Z_][a-zA-Z0-9_]* (model.LabelName.IsValid). Names starting with
/// "__" are valid: Prometheus's scrape keeps them too.
bool valid_label_name(std::string_view s);
/// Valid UTF-8 (Go's utf8.ValidString: no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(std::string_view s);

/// What is wrong with one sample (the first problem found), or None: its
/// labels must hold a valid "__name__", and every other label a valid name
/// and a UTF-8 value (empty values are fine: Prometheus reads them as absent).
/// Labels not sorted by name are no reason here: BatchCheck sorts them
/// (and drops the sample as InvalidName if a name then repeats).
DropReason check_sample(const moni_sample& s);

/// Checks batches and hands out the valid part. The common case (all valid)
/// returns the batch given, without a copy; otherwise the valid samples and
/// metadata are listed in this object (pointing into the given batch) and the
/// drops are counted. A sample whose labels are not sorted by name (the ABI
/// wants them sorted: storage and remote write rely on it) gets a sorted copy
/// of them, and is dropped as InvalidName if a name occurs twice (Prometheus
/// fails a scrape on it: "label name is not unique"). Metadata is repaired
/// rather than dropped: a record for a family that is no valid metric name
/// is left out, a HELP text that is not UTF-8 or a unit that is no name is
/// emptied.
/// Thread-safety: one object per thread (it is cheap to make: no allocation
/// until something is dropped).
class BatchCheck {
 public:
  /// The valid part of `in`; valid while `in` and this object are, and
  /// until the next check().
  const moni_batch& check(const moni_batch& in);

  /// Samples dropped by the last check(), by DropReason.
  uint64_t dropped[kDropReasons] = {};
  uint64_t dropped_total() const { return dropped[1] + dropped[2]; }
  /// Metadata records left out or repaired by the last check().
  uint64_t metadata_fixed = 0;
  /// Samples whose labels the last check() sorted.
  uint64_t samples_sorted = 0;
  /// The first problem of the last check(), for the log (names and values
  /// quoted with non-printable and non-ASCII bytes as \xNN); empty when none.
  std::string example;

 private:
  const moni_batch& slow(const moni_batch& in, size_t first_bad_sample);
  std::vector<moni_sample> samples_;
  std::vector<moni_label> labels_;  // sorted copies
  std::vector<moni_metadata> metadata_;
  moni_batch out_{};
};

/// `s` quoted for a log line: at most `max` bytes of it, with `"`, `\`,
/// control and non-ASCII bytes escaped (\xNN), so that the log stays UTF-8.
std::string quote_for_log(std::string_view s, size_t max = 120);

}  // namespace moni::host
