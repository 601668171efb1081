#include "api_params.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <moni/duration.hpp>
#include <string>

namespace moni::prom_api {
namespace {

bool parse_float(std::string_view s, double& out) {
  if (s.empty()) return false;
  std::string str(s);
  if (std::isspace(static_cast<unsigned char>(str[0]))) return false;
  char* end = nullptr;
  out = std::strtod(str.c_str(), &end);
  return end == str.c_str() + str.size();
}

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool parse_rfc3339(std::string_view s, int64_t& ms) {
  auto num = [&](size_t pos, size_t n, int& out) {
    if (pos + n > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int Y, M, D, h, m, sec;
  if (!num(0, 4, Y) || s.size() < 20 || s[4] != '-' || !num(5, 2, M) || s[7] != '-' ||
      !num(8, 2, D) || (s[10] != 'T' && s[10] != 't') || !num(11, 2, h) || s[13] != ':' ||
      !num(14, 2, m) || s[16] != ':' || !num(17, 2, sec))
    return false;
  if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 59) return false;
  size_t i = 19;
  int64_t frac_ms = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t digits = 0;
    int64_t scale = 100;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      frac_ms += (s[i] - '0') * scale;
      scale /= 10;
      ++i;
      ++digits;
    }
    if (digits == 0) return false;
  }
  int64_t tz = 0;
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    ++i;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int th, tm;
    if (!num(i + 1, 2, th) || i + 3 >= s.size() || s[i + 3] != ':' || !num(i + 4, 2, tm))
      return false;
    tz = (th * 60 + tm) * 60 * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) return false;
  int64_t secs = days_from_civil(Y, static_cast<unsigned>(M), static_cast<unsigned>(D)) * 86400 +
                 h * 3600 + m * 60 + sec - tz;
  ms = secs * 1000 + frac_ms;
  return true;
}

}  // namespace

Result<int64_t> parse_time(std::string_view s) {
  double f;
  if (parse_float(s, f)) {
    // Beyond ±kMaxTimeMs (±73 million years) Prometheus's conversion wraps
    // around; here such a time is refused, so that the engine's arithmetic
    // (time - offset - range - lookback) cannot overflow.
    if (!std::isfinite(f) || std::fabs(f) > static_cast<double>(kMaxTimeMs / 1000))
      return make_error("cannot parse \"" + std::string(s) + "\" to a valid timestamp");
    double ip;
    double frac = std::modf(f, &ip);
    frac = std::round(frac * 1000) / 1000;
    return static_cast<int64_t>(ip) * 1000 + static_cast<int64_t>(std::llround(frac * 1000));
  }
  int64_t ms;
  if (parse_rfc3339(s, ms)) return ms;  // years 0000-9999: within the bounds
  return make_error("cannot parse \"" + std::string(s) + "\" to a valid timestamp");
}

Result<int64_t> parse_duration(std::string_view s) {
  double f;
  if (parse_float(s, f)) {
    double ms = f * 1000;
    if (!std::isfinite(ms) || ms > 9.2e18 || ms < -9.2e18)
      return make_error("cannot parse \"" + std::string(s) +
                        "\" to a valid duration. It overflows int64");
    return static_cast<int64_t>(ms);
  }
  auto d = parse_duration_ms(s);
  if (d) return *d;
  return make_error("cannot parse \"" + std::string(s) + "\" to a valid duration");
}

}  // namespace moni::prom_api
