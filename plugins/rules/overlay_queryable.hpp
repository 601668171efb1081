// A Queryable that shows storage plus the samples a group evaluation has just
// produced at its timestamp, so a later rule of the group sees what earlier
// rules recorded in the same evaluation whatever the pipeline does with them
// (Prometheus appends each rule's result before evaluating the next).
#pragma once

#include <map>
#include <string>

#include "promql/queryable.hpp"

namespace moni::rules {

/// Thread-safety: add() from one thread, with no concurrent select().
class OverlayQueryable : public promql::Queryable {
 public:
  explicit OverlayQueryable(const promql::Queryable& base) : base_(base) {}
  /// Starts a new evaluation at `t_ms` (forgets earlier overlay samples).
  void reset(int64_t t_ms) {
    t_ = t_ms;
    fresh_.clear();
  }
  /// A sample produced at the current evaluation time (staleness markers too).
  void add(const Labels& labels, double v);

  Result<void> select(
      std::span<const Matcher> matchers, int64_t mint_ms, int64_t maxt_ms,
      const std::function<bool(Labels&&, std::vector<promql::Point>&&)>& fn) const override;

 private:
  const promql::Queryable& base_;
  int64_t t_ = 0;
  std::map<Labels, double> fresh_;
};

/// True when `ls` satisfies every matcher (absent labels match as "").
bool labels_match(const Labels& ls, std::span<const Matcher> matchers);

}  // namespace moni::rules
