// Parsing of Prometheus-style durations ("15s", "1m30s", "100ms", "15d") and
// byte sizes ("512MiB", "10GB"), shared by the host and plugins.
#pragma once

#include <moni/result.hpp>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace moni {

/// Parses a Prometheus duration: one or more <integer><unit> terms with units
/// ms, s, m, h, d, w, y in decreasing order. Returns milliseconds.
inline Result<int64_t> parse_duration_ms(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return make_error("invalid duration \"" + std::string(s) + "\": " + std::string(why) +
                      " (expected e.g. \"15s\", \"1m30s\", \"100ms\", \"7d\")");
  };
  if (s.empty()) return bad("empty");
  if (s == "0") return int64_t{0};
  struct Unit {
    std::string_view name;
    int64_t ms;
  };
  static constexpr Unit units[] = {{"y", 365LL * 86400000}, {"w", 7LL * 86400000},
                                   {"d", 86400000},        {"h", 3600000},
                                   {"m", 60000},           {"s", 1000},
                                   {"ms", 1}};
  int64_t total = 0;
  int last_unit = -1;
  size_t i = 0;
  while (i < s.size()) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return bad("expected a number");
    int64_t n = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (n > (INT64_MAX - 9) / 10) return bad("too large");
      n = n * 10 + (s[i++] - '0');
    }
    size_t j = i;
    while (j < s.size() && std::isalpha(static_cast<unsigned char>(s[j]))) ++j;
    std::string_view u = s.substr(i, j - i);
    int found = -1;
    for (int k = 0; k < 7; ++k)
      if (units[k].name == u) found = k;
    if (found < 0) return bad(u.empty() ? "missing unit" : "unknown unit");
    if (found <= last_unit) return bad("units must be in decreasing order");
    last_unit = found;
    if (n > INT64_MAX / units[found].ms || n * units[found].ms > INT64_MAX - total)
      return bad("too large");
    total += n * units[found].ms;
    i = j;
  }
  return total;
}

/// Parses a byte size: an integer with an optional unit B, KB, MB, GB, TB,
/// PB, EB or KiB, MiB, GiB, TiB, PiB, EiB, all powers of 1024 as in
/// Prometheus's size flags and options (`--storage.tsdb.retention.size`,
/// `body_size_limit`): "10GB" copied from a Prometheus setup means the same.
inline Result<uint64_t> parse_bytes(std::string_view s) {
  auto bad = [&](std::string_view why) {
    return make_error("invalid size \"" + std::string(s) + "\": " + std::string(why) +
                      " (expected e.g. \"512MiB\", \"10GB\", \"4096\")");
  };
  size_t i = 0;
  uint64_t n = 0;
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return bad("expected a number");
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (n > (UINT64_MAX - 9) / 10) return bad("too large");
    n = n * 10 + static_cast<uint64_t>(s[i++] - '0');
  }
  std::string_view u = s.substr(i);
  struct Unit {
    std::string_view name;
    uint64_t mult;
  };
  static constexpr Unit units[] = {{"", 1},          {"B", 1},           {"KB", 1ULL << 10},
                                   {"KiB", 1ULL << 10}, {"MB", 1ULL << 20}, {"MiB", 1ULL << 20},
                                   {"GB", 1ULL << 30},  {"GiB", 1ULL << 30}, {"TB", 1ULL << 40},
                                   {"TiB", 1ULL << 40}, {"PB", 1ULL << 50}, {"PiB", 1ULL << 50},
                                   {"EB", 1ULL << 60},  {"EiB", 1ULL << 60}};
  for (const auto& unit : units)
    if (unit.name == u) {
      if (n > UINT64_MAX / unit.mult) return bad("too large");
      return n * unit.mult;
    }
  return bad("unknown unit");
}

/// Formats milliseconds as a Prometheus duration ("1m30s").
inline std::string format_duration_ms(int64_t ms) {
  if (ms == 0) return "0s";
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  const std::pair<const char*, int64_t> units[] = {
      {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
  for (auto [name, mult] : units)
    if (ms >= mult) {
      out += std::to_string(ms / mult) + name;
      ms %= mult;
    }
  return out;
}

}  // namespace moni
