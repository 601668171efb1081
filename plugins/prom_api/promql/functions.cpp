#include "functions.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace moni::promql::fn {

double go_max(double a, double b) {
  if (std::isinf(a) && a > 0) return a;
  if (std::isinf(b) && b > 0) return b;
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == 0 && a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

double go_min(double a, double b) {
  if (std::isinf(a) && a < 0) return a;
  if (std::isinf(b) && b < 0) return b;
  if (std::isnan(a) || std::isnan(b)) return NAN;
  if (a == 0 && a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}

namespace {
// Kahan-Neumaier summation step, as Prometheus's kahanSumInc.
inline void kahan_inc(double inc, double& sum, double& c) {
  double t = sum + inc;
  if (std::fabs(sum) >= std::fabs(inc))
    c += (sum - t) + inc;
  else
    c += (inc - t) + sum;
  sum = t;
}
}  // namespace

std::optional<double> extrapolated_rate(std::span<const Point> pts, int64_t range_start,
                                        int64_t range_end, int64_t range_ms, bool counter,
                                        bool is_rate) {
  if (pts.size() < 2) return std::nullopt;
  double result = pts.back().v - pts.front().v;
  if (counter) {
    double last = 0;
    for (const auto& p : pts) {
      if (p.v < last) result += last;
      last = p.v;
    }
  }
  double to_start = static_cast<double>(pts.front().t - range_start) / 1000;
  double to_end = static_cast<double>(range_end - pts.back().t) / 1000;
  double sampled = static_cast<double>(pts.back().t - pts.front().t) / 1000;
  double avg_between = sampled / static_cast<double>(pts.size() - 1);
  if (counter && result > 0 && pts.front().v >= 0) {
    double to_zero = sampled * (pts.front().v / result);
    if (to_zero < to_start) to_start = to_zero;
  }
  double threshold = avg_between * 1.1;
  double interval = sampled;
  interval += to_start < threshold ? to_start : avg_between / 2;
  interval += to_end < threshold ? to_end : avg_between / 2;
  double factor = interval / sampled;
  if (is_rate) factor /= static_cast<double>(range_ms) / 1000;
  return result * factor;
}

std::optional<double> instant_value(std::span<const Point> pts, bool is_rate) {
  if (pts.size() < 2) return std::nullopt;
  const Point& last = pts[pts.size() - 1];
  const Point& prev = pts[pts.size() - 2];
  double v = (is_rate && last.v < prev.v) ? last.v : last.v - prev.v;
  int64_t dt = last.t - prev.t;
  if (dt == 0) return std::nullopt;
  if (is_rate) v /= static_cast<double>(dt) / 1000;
  return v;
}

std::pair<double, double> linear_regression(std::span<const Point> pts, int64_t intercept_ms) {
  double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
  double init_y = pts[0].v;
  bool const_y = true;
  for (size_t i = 0; i < pts.size(); ++i) {
    if (const_y && i > 0 && pts[i].v != init_y) const_y = false;
    n += 1;
    double x = static_cast<double>(pts[i].t - intercept_ms) / 1e3;
    kahan_inc(x, sx, cx);
    kahan_inc(pts[i].v, sy, cy);
    kahan_inc(x * pts[i].v, sxy, cxy);
    kahan_inc(x * x, sx2, cx2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {NAN, NAN};
    return {0, init_y};
  }
  sx += cx;
  sy += cy;
  sxy += cxy;
  sx2 += cx2;
  double cov = sxy - sx * sy / n;
  double var = sx2 - sx * sx / n;
  double slope = cov / var;
  double intercept = sy / n - slope * sx / n;
  return {slope, intercept};
}

namespace {
// Prometheus sorts with NaN first (vectorByValueHeap.Less).
bool nan_first_less(double a, double b) {
  if (std::isnan(a)) return !std::isnan(b);
  if (std::isnan(b)) return false;
  return a < b;
}
}  // namespace

double quantile(double q, std::vector<double>& values) {
  if (values.empty()) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  if (std::isnan(q)) return NAN;
  std::sort(values.begin(), values.end(), nan_first_less);
  double n = static_cast<double>(values.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<size_t>(lower)] * (1 - weight) +
         values[static_cast<size_t>(upper)] * weight;
}

double bucket_quantile(double q, std::vector<std::pair<double, double>>& b) {
  if (std::isnan(q)) return NAN;
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  std::stable_sort(b.begin(), b.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  if (!(std::isinf(b.back().first) && b.back().first > 0)) return NAN;
  // Coalesce buckets with the same upper bound.
  size_t i = 0;
  auto last = b[0];
  for (size_t k = 1; k < b.size(); ++k) {
    if (b[k].first == last.first) {
      last.second += b[k].second;
    } else {
      b[i++] = last;
      last = b[k];
    }
  }
  b[i] = last;
  b.resize(i + 1);
  double mx = -INFINITY;
  for (auto& x : b) {
    if (x.second > mx)
      mx = x.second;
    else if (x.second < mx)
      x.second = mx;
  }
  if (b.size() < 2) return NAN;
  double obs = b.back().second;
  if (obs == 0) return NAN;
  double rank = q * obs;
  size_t lo = 0, hi = b.size() - 1;  // sort.Search over [0, n-1)
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (b[mid].second >= rank)
      hi = mid;
    else
      lo = mid + 1;
  }
  size_t k = lo;
  if (k == b.size() - 1) return b[b.size() - 2].first;
  if (k == 0 && b[0].first <= 0) return b[0].first;
  double start = 0, end = b[k].first, count = b[k].second;
  if (k > 0) {
    start = b[k - 1].first;
    count -= b[k - 1].second;
    rank -= b[k - 1].second;
  }
  return start + (end - start) * (rank / count);
}

double over_time(std::string_view name, std::span<const Point> pts, double param) {
  if (name == "avg_over_time") {
    double mean = 0, count = 0, c = 0;
    for (const auto& p : pts) {
      count++;
      if (std::isinf(mean)) {
        if (std::isinf(p.v) && (mean > 0) == (p.v > 0)) continue;
        if (!std::isinf(p.v) && !std::isnan(p.v)) continue;
      }
      kahan_inc(p.v / count - mean / count, mean, c);
    }
    return std::isinf(mean) ? mean : mean + c;
  }
  if (name == "sum_over_time") {
    double sum = 0, c = 0;
    for (const auto& p : pts) kahan_inc(p.v, sum, c);
    return std::isinf(sum) ? sum : sum + c;
  }
  if (name == "count_over_time") return static_cast<double>(pts.size());
  if (name == "min_over_time" || name == "max_over_time") {
    bool is_max = name[1] == 'a';
    double m = pts[0].v;
    for (const auto& p : pts)
      if ((is_max ? p.v > m : p.v < m) || std::isnan(m)) m = p.v;
    return m;
  }
  if (name == "stddev_over_time" || name == "stdvar_over_time") {
    double count = 0, mean = 0, cmean = 0, aux = 0, caux = 0;
    for (const auto& p : pts) {
      count++;
      double delta = p.v - (mean + cmean);
      kahan_inc(delta / count, mean, cmean);
      kahan_inc(delta * (p.v - (mean + cmean)), aux, caux);
    }
    double var = (aux + caux) / count;
    return name[3] == 'd' ? std::sqrt(var) : var;
  }
  if (name == "quantile_over_time") {
    std::vector<double> vals;
    vals.reserve(pts.size());
    for (const auto& p : pts) vals.push_back(p.v);
    return quantile(param, vals);
  }
  if (name == "last_over_time") return pts.back().v;
  if (name == "present_over_time") return 1;
  if (name == "changes") {
    double changes = 0, prev = pts[0].v;
    for (size_t i = 1; i < pts.size(); ++i) {
      double cur = pts[i].v;
      if (cur != prev && !(std::isnan(cur) && std::isnan(prev))) changes++;
      prev = cur;
    }
    return changes;
  }
  if (name == "resets") {
    double resets = 0, prev = pts[0].v;
    for (size_t i = 1; i < pts.size(); ++i) {
      if (pts[i].v < prev) resets++;
      prev = pts[i].v;
    }
    return resets;
  }
  return NAN;
}

std::optional<double> holt_winters(std::span<const Point> pts, double sf, double tf) {
  size_t l = pts.size();
  if (l < 2) return std::nullopt;
  double s0 = 0, s1 = pts[0].v, b = pts[1].v - pts[0].v;
  for (size_t i = 1; i < l; ++i) {
    double x = sf * pts[i].v;
    if (i - 1 != 0) b = tf * (s1 - s0) + (1 - tf) * b;
    double y = (1 - sf) * (s1 + b);
    s0 = s1;
    s1 = x + y;
  }
  return s1;
}

RangeFn range_fn_kind(std::string_view name) {
  if (name == "rate") return RangeFn::Rate;
  if (name == "increase") return RangeFn::Increase;
  if (name == "delta") return RangeFn::Delta;
  if (name == "irate") return RangeFn::Irate;
  if (name == "idelta") return RangeFn::Idelta;
  if (name == "deriv") return RangeFn::Deriv;
  if (name == "predict_linear") return RangeFn::PredictLinear;
  if (name == "holt_winters") return RangeFn::HoltWinters;
  if (name == "absent_over_time") return RangeFn::AbsentOverTime;
  return RangeFn::OverTime;
}

std::optional<double> range_fn_value(RangeFn k, std::string_view name, std::span<const Point> pts,
                                     int64_t range_start, int64_t range_end, int64_t range_ms,
                                     int64_t ts, std::span<const double> scalars) {
  switch (k) {
    case RangeFn::Rate:
      return extrapolated_rate(pts, range_start, range_end, range_ms, true, true);
    case RangeFn::Increase:
      return extrapolated_rate(pts, range_start, range_end, range_ms, true, false);
    case RangeFn::Delta:
      return extrapolated_rate(pts, range_start, range_end, range_ms, false, false);
    case RangeFn::Irate:
      return instant_value(pts, true);
    case RangeFn::Idelta:
      return instant_value(pts, false);
    case RangeFn::Deriv:
      if (pts.size() < 2) return std::nullopt;
      return linear_regression(pts, pts[0].t).first;
    case RangeFn::PredictLinear: {
      if (pts.size() < 2) return std::nullopt;
      auto [slope, intercept] = linear_regression(pts, ts);
      return slope * scalars[1] + intercept;
    }
    case RangeFn::HoltWinters:
    case RangeFn::AbsentOverTime:
      return std::nullopt;
    case RangeFn::OverTime:
      break;
  }
  return over_time(name, pts, name == "quantile_over_time" ? scalars[0] : 0);
}

char* format_fixed(char* out, double v) {
  // std::to_chars(fixed) prints large values' exact digits
  // (123456789012345683968); Go pads the shortest round-trip digits with
  // zeros (123456789012345680000): the digits come from the scientific form.
  char sci[40];
  char* end = std::to_chars(sci, sci + sizeof sci, v, std::chars_format::scientific).ptr;
  const char* p = sci;
  if (*p == '-') *out++ = *p++;
  char digits[32];
  int nd = 0;
  for (; p < end && *p != 'e'; ++p)
    if (*p != '.') digits[nd++] = *p;
  // p is at 'e', then a sign and two or three digits (not NUL-terminated).
  int exp = 0;
  for (const char* d = p + 2; d < end; ++d) exp = exp * 10 + (*d - '0');
  int dp = (p[1] == '-' ? -exp : exp) + 1;  // the decimal point's position in digits
  if (dp <= 0) {
    *out++ = '0';
    *out++ = '.';
    out = std::fill_n(out, -dp, '0');
    out = std::copy_n(digits, nd, out);
  } else if (dp >= nd) {
    out = std::copy_n(digits, nd, out);
    out = std::fill_n(out, dp - nd, '0');
  } else {
    out = std::copy_n(digits, dp, out);
    *out++ = '.';
    out = std::copy_n(digits + dp, nd - dp, out);
  }
  return out;
}

std::string format_float(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[kFixedMax];
  return std::string(buf, format_fixed(buf, v));
}

}  // namespace moni::promql::fn
