#include "series_major.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "functions.hpp"

namespace moni::promql {

namespace {

const Expr* strip(const Expr* e) {
  while (e->kind == ExprKind::Paren) e = e->args[0].get();
  return e;
}

bool streamable_aggregation(Op op) {
  switch (op) {
    case Op::Sum:
    case Op::Avg:
    case Op::Min:
    case Op::Max:
    case Op::Count:
    case Op::Group:
    case Op::Stddev:
    case Op::Stdvar:
      return true;
    default:
      return false;
  }
}

struct Plan {
  const Expr* agg = nullptr;   // the aggregation, if any
  const Expr* call = nullptr;  // the range function
  const Expr* vs = nullptr;    // the vector selector under the matrix selector
  int64_t range_ms = 0;
  fn::RangeFn kind = fn::RangeFn::OverTime;
  std::vector<double> scalars;
  bool keep_name = false;
};

bool make_plan(const Expr& top, Plan& p) {
  const Expr* e = strip(&top);
  if (e->kind == ExprKind::Aggregate) {
    if (e->param || !streamable_aggregation(e->op)) return false;
    p.agg = e;
    e = strip(e->args[0].get());
  }
  if (e->kind != ExprKind::Call || !e->func) return false;
  const FunctionInfo& f = *e->func;
  int matrix_arg = -1;
  for (size_t i = 0; i < f.arg_types.size() && i < e->args.size(); ++i)
    if (f.arg_types[i] == ValueType::Matrix) matrix_arg = static_cast<int>(i);
  if (matrix_arg < 0) return false;
  p.kind = fn::range_fn_kind(f.name);
  // holt_winters validates its factors per window; absent_over_time makes
  // up labels: both stay with the step-by-step evaluator.
  if (p.kind == fn::RangeFn::HoltWinters || p.kind == fn::RangeFn::AbsentOverTime) return false;
  const Expr* m = strip(e->args[static_cast<size_t>(matrix_arg)].get());
  if (m->kind != ExprKind::MatrixSelector) return false;
  // Other arguments must be literals (their value is then the same at
  // every step, as the step-by-step evaluator would find it).
  for (size_t i = 0; i < e->args.size(); ++i) {
    if (static_cast<int>(i) == matrix_arg) {
      p.scalars.push_back(0);
      continue;
    }
    const Expr* a = strip(e->args[i].get());
    if (a->kind != ExprKind::Number) return false;
    p.scalars.push_back(a->number);
  }
  p.call = e;
  p.vs = m->args[0].get();
  p.range_ms = m->range_ms;
  p.keep_name = std::string_view(f.name) == "last_over_time";
  return true;
}

// Per-group, per-step accumulators of an aggregation, updated exactly as
// the step-by-step evaluator updates a group with each sample in turn.
struct GroupAcc {
  LabelsPtr labels;
  std::vector<double> value, mean, count;
  std::vector<uint8_t> seen;
  void init(size_t steps) {
    value.assign(steps, 0);
    mean.assign(steps, 0);
    count.assign(steps, 0);
    seen.assign(steps, 0);
  }
  void add(Op op, size_t i, double v) {
    if (!seen[i]) {
      seen[i] = 1;
      value[i] = (op == Op::Stddev || op == Op::Stdvar) ? 0 : v;
      mean[i] = v;
      count[i] = 1;
      return;
    }
    switch (op) {
      case Op::Sum:
        value[i] += v;
        break;
      case Op::Avg: {
        count[i]++;
        if (std::isinf(mean[i])) {
          if (std::isinf(v) && (mean[i] > 0) == (v > 0)) break;
          if (!std::isinf(v) && !std::isnan(v)) break;
        }
        mean[i] += v / count[i] - mean[i] / count[i];
        break;
      }
      case Op::Count:
        count[i]++;
        break;
      case Op::Max:
        if (value[i] < v || std::isnan(value[i])) value[i] = v;
        break;
      case Op::Min:
        if (value[i] > v || std::isnan(value[i])) value[i] = v;
        break;
      case Op::Stddev:
      case Op::Stdvar: {
        count[i]++;
        double delta = v - mean[i];
        mean[i] += delta / count[i];
        value[i] += delta * (v - mean[i]);
        break;
      }
      default:
        break;
    }
  }
  double result(Op op, size_t i) const {
    switch (op) {
      case Op::Avg:
        return mean[i];
      case Op::Count:
        return count[i];
      case Op::Group:
        return 1;
      case Op::Stddev:
        return std::sqrt(value[i] / count[i]);
      case Op::Stdvar:
        return value[i] / count[i];
      default:
        return value[i];
    }
  }
};

// One series' values at every step (an aggregation needs them in label
// order, and the storage yields series in its own order).
struct Row {
  Labels labels;  // the selected series' labels: the order of aggregation
  LabelsPtr out;  // the range function's result labels
  std::vector<double> values;
  std::vector<uint64_t> present;
};

class SeriesMajor {
 public:
  SeriesMajor(const Queryable& q, const QueryOptions& o, const Plan& p, int64_t start, int64_t end,
              int64_t step)
      : q_(q),
        o_(o),
        p_(p),
        start_(start),
        end_(end),
        step_(step),
        steps_(static_cast<size_t>((end - start) / step) + 1),
        deadline_(std::chrono::steady_clock::now() + o.timeout) {}

  // false: fall back to the step-by-step evaluator.
  bool run(QueryResult& res) {
    const Expr& vs = *p_.vs;
    int64_t lo = start_ - vs.offset_ms, hi = end_ - vs.offset_ms;
    if (vs.at != AtKind::None) lo = hi = at_time(start_) - vs.offset_ms;
    bool collided = false;
    std::unordered_set<std::string> out_keys;
    std::string err;
    ErrorType err_type = ErrorType::Execution;
    size_t nseries = 0;
    std::vector<Point> outp;
    auto r =
        q_.select(vs.matchers, lo - p_.range_ms, hi, [&](Labels&& ls, std::vector<Point>&& pts) {
          if (std::chrono::steady_clock::now() > deadline_) {
            err_type = ErrorType::Timeout;
            err = "query timed out in expression evaluation";
            return false;
          }
          pts.erase(std::remove_if(pts.begin(), pts.end(),
                                   [](const Point& pt) { return is_stale_nan(pt.v); }),
                    pts.end());
          fetched_ += static_cast<int64_t>(pts.size());
          if (o_.max_series && ++nseries > o_.max_series) {
            err = "query would select more than " + std::to_string(o_.max_series) +
                  " series (max_series)";
            return false;
          }
          if (fetched_ + (o_.max_series ? 0 : produced_) > o_.max_samples) {
            err = "query processing would load too many samples into memory in query execution";
            return false;
          }
          Labels out = p_.keep_name ? ls : drop_metric_name(ls);
          // Series that collide without __name__: Prometheus's duplicate check
          // applies per step; the step-by-step evaluator does it exactly.
          if (!p_.keep_name && !out_keys.insert(labels_key(out)).second) {
            collided = true;
            return false;
          }
          if (p_.agg) {
            Row row;
            row.values.resize(steps_);
            row.present.assign((steps_ + 63) / 64, 0);
            size_t n = evaluate(pts, [&](size_t i, int64_t, double v) {
              row.values[i] = v;
              row.present[i / 64] |= uint64_t{1} << (i % 64);
            });
            if (n) {  // produced samples are counted per group, after aggregation
              row.labels = std::move(ls);
              row.out = std::make_shared<const Labels>(std::move(out));
              rows_.push_back(std::move(row));
            }
          } else {
            outp.clear();
            outp.reserve(steps_);
            size_t n = evaluate(pts, [&](size_t, int64_t t, double v) { outp.push_back({t, v}); });
            produced_ += static_cast<int64_t>(n);
            if (n) {
              res.value.mat.push_back(Series{std::make_shared<const Labels>(std::move(out)),
                                             std::vector<Point>(outp.begin(), outp.end())});
            }
          }
          return true;
        });
    if (collided) return false;
    res.samples_fetched = fetched_;
    res.value.type = ValueType::Matrix;
    if (!r) return fail(res, ErrorType::Internal, r.error().message);
    if (!err.empty()) return fail(res, err_type, err);
    if (p_.agg) aggregate(res.value.mat);
    if (fetched_ + produced_ > o_.max_samples)
      return fail(res, ErrorType::Execution,
                  "query processing would load too many samples into memory in query execution");
    std::sort(res.value.mat.begin(), res.value.mat.end(),
              [](const Series& a, const Series& b) { return *a.labels < *b.labels; });
    return true;
  }

 private:
  bool fail(QueryResult& res, ErrorType t, std::string msg) {
    res.error = t;
    res.message = std::move(msg);
    res.value = {};
    return true;
  }

  int64_t at_time(int64_t ts) const { return p_.vs->at_time(ts, start_, end_); }

  // The range function over the series' window at every step; emit(i, ts,
  // value) for each step with a value. Windows are [ref - range, ref] and
  // move forward, so both ends are found by walking from the last ones.
  template <class Emit>
  size_t evaluate(const std::vector<Point>& pts, Emit&& emit) {
    const Point* d = pts.data();
    const size_t n = pts.size();
    const char* name = p_.call->func->name;
    size_t lo = 0, hi = 0, count = 0, i = 0;
    for (int64_t ts = start_; ts <= end_; ts += step_, ++i) {
      const int64_t maxt = at_time(ts) - p_.vs->offset_ms;
      const int64_t mint = maxt - p_.range_ms;
      if (lo > 0 && d[lo - 1].t >= mint) lo = 0;  // moved back (@)
      while (lo < n && d[lo].t < mint) ++lo;
      if (hi < lo || (hi > 0 && d[hi - 1].t > maxt)) hi = lo;
      while (hi < n && d[hi].t <= maxt) ++hi;
      if (lo == hi) continue;
      auto v = fn::range_fn_value(p_.kind, name, std::span<const Point>(d + lo, hi - lo), mint,
                                  maxt, p_.range_ms, ts, p_.scalars);
      if (!v) continue;
      emit(i, ts, *v);
      ++count;
    }
    return count;
  }

  void aggregate(Matrix& out) {
    const Expr& e = *p_.agg;
    std::vector<size_t> order(rows_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return rows_[a].labels < rows_[b].labels; });
    std::vector<GroupAcc> groups;
    std::unordered_map<std::string, size_t> index;
    for (size_t ri : order) {
      Row& row = rows_[ri];
      Labels g;
      for (const auto& l : *row.out) {
        bool listed = std::find(e.grouping.begin(), e.grouping.end(), l.name) != e.grouping.end();
        if (e.without ? (!listed && l.name != kMetricNameLabel) : listed) g.push_back(l);
      }
      auto [it, fresh] = index.emplace(labels_key(g), groups.size());
      if (fresh) {
        groups.emplace_back();
        groups.back().labels = std::make_shared<const Labels>(std::move(g));
        groups.back().init(steps_);
      }
      GroupAcc& acc = groups[it->second];
      for (size_t w = 0; w < row.present.size(); ++w)
        for (uint64_t bits = row.present[w]; bits; bits &= bits - 1) {
          size_t i = w * 64 + static_cast<size_t>(__builtin_ctzll(bits));
          acc.add(e.op, i, row.values[i]);
        }
      row = Row{};  // release as we go
    }
    for (auto& g : groups) {
      Series s{g.labels, {}};
      for (size_t i = 0; i < steps_; ++i)
        if (g.seen[i])
          s.points.push_back(Point{start_ + static_cast<int64_t>(i) * step_, g.result(e.op, i)});
      produced_ += static_cast<int64_t>(s.points.size());
      out.push_back(std::move(s));
    }
  }

  const Queryable& q_;
  const QueryOptions& o_;
  const Plan& p_;
  int64_t start_, end_, step_;
  size_t steps_;
  std::chrono::steady_clock::time_point deadline_;
  int64_t fetched_ = 0, produced_ = 0;
  std::vector<Row> rows_;
};

}  // namespace

std::optional<QueryResult> eval_series_major(const Queryable& q, const QueryOptions& o,
                                             const Expr& expr, int64_t start, int64_t end,
                                             int64_t step) {
  if (step <= 0 || end < start) return std::nullopt;
  Plan p;
  if (!make_plan(expr, p)) return std::nullopt;
  QueryResult res;
  SeriesMajor sm(q, o, p, start, end, step);
  if (!sm.run(res)) return std::nullopt;
  return res;
}

}  // namespace moni::promql
