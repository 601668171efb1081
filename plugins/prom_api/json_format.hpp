// Prometheus API JSON: the success/error envelope and query results, with
// values as strings in Go's float formatting and timestamps as seconds.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "promql/engine.hpp"

namespace moni::prom_api {

/// A JSON string as Go's encoding/json writes it: each byte of invalid
/// UTF-8 becomes \ufffd, control characters, U+2028 and U+2029 are
/// \u-escaped, and with `html` (Prometheus' API responses) '<', '>', '&'
/// too. Without it the text stays readable (TOML written by `rules import`).
void append_json_string(std::string& out, std::string_view s, bool html = false);
void append_labels(std::string& out, const Labels& ls);
/// Milliseconds as Prometheus writes them: 1435781451.781
void append_timestamp(std::string& out, int64_t ms);
/// {"status":"success","data":{"resultType":...,"result":...}}
std::string query_success(const promql::QueryResult& r);
/// query_success's JSON handed to `sink` in pieces of about `chunk` bytes;
/// a matrix's series are released as they are written.
void write_query_success(promql::QueryResult& r, const std::function<void(std::string_view)>& sink,
                         size_t chunk = 4u << 20);
/// {"status":"success","data":<data_json>}
std::string success(std::string_view data_json);
std::string error_body(std::string_view error_type, std::string_view message);
/// The HTTP status Prometheus uses for an error type.
unsigned http_status(std::string_view error_type);

}  // namespace moni::prom_api
