// Parsing of the Prometheus API's time and duration parameters.
#pragma once

#include <cstdint>
#include <moni/result.hpp>
#include <string_view>

namespace moni::prom_api {

/// "1435781451.781" (Unix seconds) or RFC 3339 ("2015-07-01T20:10:51.781Z") to ms.
Result<int64_t> parse_time(std::string_view s);
/// "30" / "0.5" (seconds) or a Prometheus duration ("5m", "1h30m") to ms.
Result<int64_t> parse_duration(std::string_view s);

inline constexpr int64_t kMinTimeMs = -9223372036854775807LL / 4;
inline constexpr int64_t kMaxTimeMs = 9223372036854775807LL / 4;

}  // namespace moni::prom_api
