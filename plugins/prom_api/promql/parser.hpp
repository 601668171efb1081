// The PromQL parser: query text to a type-checked AST, or an error with its
// position ("1:5: parse error: ..." as Prometheus words it).
#pragma once

#include <moni/result.hpp>
#include <string_view>

#include "ast.hpp"

namespace moni::promql {

/// A parse error: byte position in the query and Prometheus-style message.
struct ParseError {
  size_t pos = 0;
  std::string message;    // without position
  std::string formatted;  // "line:col: parse error: message"
};

/// Parses and type-checks `query`. Thread-safety: reentrant.
Result<ExprPtr> parse(std::string_view query, ParseError* err = nullptr);

/// Parses a Prometheus duration ("5m", "1h30m") to milliseconds.
Result<int64_t> parse_promql_duration(std::string_view s);

}  // namespace moni::promql
