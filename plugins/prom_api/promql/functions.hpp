// Numeric kernels of PromQL functions, written to match Prometheus 2.42's
// arithmetic step for step (the differential tests compare to 1e-9).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

#include "value.hpp"

namespace moni::promql::fn {

/// Go's math.Max / math.Min (NaN wins, unlike std::fmax).
double go_max(double a, double b);
double go_min(double a, double b);

/// rate/increase/delta with Prometheus's extrapolation; nullopt with < 2 points.
std::optional<double> extrapolated_rate(std::span<const Point> pts, int64_t range_start_ms,
                                        int64_t range_end_ms, int64_t range_ms, bool counter,
                                        bool is_rate);
/// irate / idelta.
std::optional<double> instant_value(std::span<const Point> pts, bool is_rate);
/// Least squares fit with x in seconds relative to `intercept_ms`.
std::pair<double, double> linear_regression(std::span<const Point> pts, int64_t intercept_ms);
/// The quantile of `values` (sorted in place) as the quantile aggregation does.
double quantile(double q, std::vector<double>& values);
/// histogram_quantile over classic buckets (upper bound, cumulative count).
double bucket_quantile(double q, std::vector<std::pair<double, double>>& buckets);
/// The *_over_time family, changes and resets; `param` is quantile_over_time's q.
double over_time(std::string_view name, std::span<const Point> pts, double param);
/// holt_winters; nullopt with < 2 points.
std::optional<double> holt_winters(std::span<const Point> pts, double sf, double tf);
/// A range-vector function, resolved from its name once per query node.
enum class RangeFn {
  Rate,
  Increase,
  Delta,
  Irate,
  Idelta,
  Deriv,
  PredictLinear,
  HoltWinters,
  AbsentOverTime,
  OverTime  // *_over_time (but absent_over_time), changes, resets
};
RangeFn range_fn_kind(std::string_view name);
/// One window's value for every range function but holt_winters and
/// absent_over_time (the evaluator handles those). `range_*` bound the
/// window (for extrapolation), `ts` is the step time, `scalars` the
/// function's arguments by position (the matrix argument's slot unused).
std::optional<double> range_fn_value(RangeFn k, std::string_view name, std::span<const Point> pts,
                                     int64_t range_start_ms, int64_t range_end_ms, int64_t range_ms,
                                     int64_t ts, std::span<const double> scalars);
/// Go's strconv.FormatFloat(v, 'f', -1, 64) of a finite v into `out` (at
/// least kFixedMax bytes); returns the end.
constexpr size_t kFixedMax = 400;
char* format_fixed(char* out, double v);
/// Go's strconv.FormatFloat(v, 'f', -1, 64).
std::string format_float(double v);

}  // namespace moni::promql::fn
