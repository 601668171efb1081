// The deterministic batches of the crash test: batch k holds one sample per
// series at kT0 + k*1000 with a value derived from (k, series), including
// NaN payloads, the staleness marker and infinities.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <moni/batch.hpp>
#include <string>

namespace crash {

constexpr int64_t kT0 = 1700000000000;
constexpr int kSeries = 50;

inline double value(uint64_t k, int s) {
  uint64_t x = (k * 0x9E3779B97F4A7C15ULL) ^ (static_cast<uint64_t>(s) * 0xBF58476D1CE4E5B9ULL);
  x ^= x >> 31;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 29;
  if ((k + s) % 17 == 0) return std::bit_cast<double>(uint64_t{MONI_STALE_NAN_BITS});
  if ((k + s) % 19 == 0) return std::numeric_limits<double>::infinity();
  if (s % 3 == 0) return static_cast<double>(k * 10 + s);  // counter-like
  return std::bit_cast<double>(x);
}

// Writer w >= 0 (concurrent writers) has series of its own (label
// "writer"), with values of their own.
inline void fill(moni::Batch& b, uint64_t k, int w = -1) {
  b.clear();
  std::string ws = std::to_string(w);
  for (int s = 0; s < kSeries; ++s) {
    double v = value(k, s + (w + 1) * kSeries);
    if (w < 0)
      b.add("crash_metric", {{"series", std::to_string(s)}}, v,
            kT0 + static_cast<int64_t>(k) * 1000);
    else
      b.add("crash_metric", {{"series", std::to_string(s)}, {"writer", ws}}, v,
            kT0 + static_cast<int64_t>(k) * 1000);
  }
}

}  // namespace crash
