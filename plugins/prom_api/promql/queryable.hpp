// What the PromQL engine reads: series with samples in a time range. The
// prom_api plugin implements it over moni::StorageClient; tests implement it
// over an in-memory series store.
#pragma once

#include <functional>
#include <moni/result.hpp>
#include <moni/storage.hpp>
#include <span>
#include <vector>

#include "value.hpp"

namespace moni::promql {

/// Thread-safety: implementations must allow concurrent select() calls.
class Queryable {
 public:
  virtual ~Queryable() = default;
  /// Calls `fn(labels, points)` for every series matching all `matchers` that
  /// has samples in [mint, maxt] (points sorted by time, staleness markers
  /// included). Return false from `fn` to stop early.
  virtual Result<void> select(
      std::span<const Matcher> matchers, int64_t mint_ms, int64_t maxt_ms,
      const std::function<bool(Labels&& labels, std::vector<Point>&& points)>& fn) const = 0;
};

}  // namespace moni::promql
