// Range queries evaluated series by series instead of step by step, for the
// shapes whose value at a step depends on one series at a time: a range
// function over a matrix selector, optionally under an aggregation. This is
// how Prometheus evaluates them too: each series is read once, its window
// slides forward step by step, and no per-step vectors are built.
#pragma once

#include <cstdint>
#include <optional>

#include "ast.hpp"
#include "engine.hpp"
#include "queryable.hpp"

namespace moni::promql {

/// The result of the range query, or nullopt when `expr` is not such a shape
/// or its series collide once `__name__` is dropped (the step-by-step
/// evaluator then answers, with Prometheus's duplicate-labelset semantics).
/// Thread-safety: a pure function of its arguments (`q` must allow
/// concurrent select()).
std::optional<QueryResult> eval_series_major(const Queryable& q, const QueryOptions& o,
                                             const Expr& expr, int64_t start, int64_t end,
                                             int64_t step);

}  // namespace moni::promql
