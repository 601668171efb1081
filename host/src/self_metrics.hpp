// moni's own metrics (moni_*): what the built-in "self" collector emits and
// what the host serves at /metrics when no plugin does.
#pragma once

#include <atomic>
#include <moni/batch.hpp>
#include <string>

#include "graph.hpp"

namespace moni::host {

/// Host-wide counters. Thread-safety: atomics.
struct HostStats {
  std::atomic<uint64_t> plugin_load_failures{0};
  std::atomic<uint64_t> reloads_success{0}, reloads_failure{0};
};

/// Adds every moni_* metric of `graph` (and each instance's self_metrics())
/// to `out`. Thread-safety: safe concurrently with the graph running.
void collect_self_metrics(Graph& graph, const PipelineCounters& counters, const HostStats& stats,
                          Batch& out);

inline constexpr const char* kSelfMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

/// The same metrics as Prometheus text 0.0.4, appended to `out` (the
/// host's /metrics when no plugin serves it).
void render_self_metrics(Graph& graph, const PipelineCounters& counters, const HostStats& stats,
                         std::string& out);

}  // namespace moni::host
