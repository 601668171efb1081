// The PromQL evaluator: instant and range queries over a Queryable with
// Prometheus 2.42 semantics (lookback, staleness, extrapolation, matching).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ast.hpp"
#include "queryable.hpp"
#include "value.hpp"

namespace moni::promql {

struct QueryOptions {
  int64_t lookback_ms = 5 * 60 * 1000;
  /// Samples a query may hold (fetched plus produced); Prometheus's default.
  int64_t max_samples = 50'000'000;
  /// Series one selector may select (0: unlimited).
  size_t max_series = 0;
  std::chrono::milliseconds timeout{std::chrono::minutes(2)};
  /// Step of a subquery written without one ("[1h:]").
  int64_t default_subquery_step_ms = 60'000;
  /// Range queries that allow it are evaluated series by series
  /// (series_major.hpp); false forces step by step (tests compare both).
  bool series_major = true;
};

/// Prometheus's API error types.
enum class ErrorType { None, BadData, Execution, Timeout, Canceled, Internal };
const char* error_type_name(ErrorType t);

/// Thread-safety: a value type.
struct QueryResult {
  ErrorType error = ErrorType::None;
  std::string message;
  /// Vector (instant), Matrix (range, or an instant range-vector
  /// expression), Scalar or String.
  Value value;
  int64_t time_ms = 0;  // evaluation time of scalar/string/vector results
  int64_t samples_fetched = 0;
  bool ok() const { return error == ErrorType::None; }
};

/// Evaluates queries. Thread-safety: const methods may run concurrently.
class Engine {
 public:
  explicit Engine(const Queryable& q, QueryOptions opts = {}) : q_(q), opts_(opts) {}

  QueryResult instant(std::string_view query, int64_t time_ms) const;
  QueryResult range(std::string_view query, int64_t start_ms, int64_t end_ms,
                    int64_t step_ms) const;
  /// Evaluates an already parsed expression.
  QueryResult exec(const Expr& expr, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                   bool instant) const;

  const QueryOptions& options() const { return opts_; }

 private:
  const Queryable& q_;
  QueryOptions opts_;
};

}  // namespace moni::promql
