// Prometheus text exposition format 0.0.4 for the host's own /metrics.
#pragma once

#include <moni/plugin_abi.h>

#include <string>

namespace moni::host {

inline constexpr const char* kTextContentType = "text/plain; version=0.0.4; charset=utf-8";

/// Renders a batch grouped by metric family with HELP/TYPE lines from its
/// metadata; sample timestamps are left out. Thread-safety: pure function.
std::string render_prometheus_text(const moni_batch& batch);

}  // namespace moni::host
