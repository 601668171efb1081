// Backfill from a Prometheus text or OpenMetrics file with timestamps (what
// `promtool tsdb create-blocks-from openmetrics` reads).
#pragma once

#include <moni/result.hpp>
#include <string>

#include "tsdb.hpp"

namespace moni::tsdb {

/// Appends every sample of `path` to `db` in time order, in batches.
/// Samples without a timestamp get `default_ts_ms`. Samples older than a
/// series' newest stored sample are rejected (counted as out of order).
/// Returns the number of samples appended.
Result<uint64_t> import_text_file(Db& db, const std::string& path, int64_t default_ts_ms);

}  // namespace moni::tsdb
