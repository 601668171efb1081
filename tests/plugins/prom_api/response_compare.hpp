// Test-only: compares two Prometheus API responses as the differential tests
// require (labels exact, values within 1e-9 relative, error vs no error).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace moni::promql::test_support {

/// "" when `prometheus` and `moni` agree, else what differs. `ordered`:
/// vector results must also come in the same order.
std::string compare_responses(const nlohmann::json& prometheus, const nlohmann::json& moni,
                              bool ordered);
/// Reads a whole file.
std::string read_file(const std::string& path);

}  // namespace moni::promql::test_support
