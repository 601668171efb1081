#include "engine.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "functions.hpp"
#include "parser.hpp"
#include "series_major.hpp"

namespace moni::promql {

const char* error_type_name(ErrorType t) {
  switch (t) {
    case ErrorType::BadData:
      return "bad_data";
    case ErrorType::Execution:
      return "execution";
    case ErrorType::Timeout:
      return "timeout";
    case ErrorType::Canceled:
      return "canceled";
    case ErrorType::Internal:
      return "internal";
    default:
      return "";
  }
}

namespace {

struct EvalError {
  ErrorType type;
  std::string message;
};

[[noreturn]] void exec_error(std::string msg) {
  throw EvalError{ErrorType::Execution, std::move(msg)};
}

struct FetchedSeries {
  LabelsPtr labels;
  LabelsPtr nameless;
  std::vector<Point> points;
  // Start of the last window taken from this series: a range query's windows
  // move forward step by step, so the next one is found by walking a few
  // points from here instead of two binary searches over the whole series.
  size_t cursor = 0;
};

struct SelectorData {
  bool loaded = false;
  int8_t nameless_unique = -1;  // series still distinct without __name__? -1: not yet known
  int64_t mint = INT64_MAX, maxt = INT64_MIN;
  std::vector<FetchedSeries> series;
};

// A window of one series for a range-vector function.
struct Window {
  const FetchedSeries* src = nullptr;  // set for matrix selectors
  LabelsPtr labels;
  std::span<const Point> points;
};

bool str_eq(const char* a, const char* b) { return std::strcmp(a, b) == 0; }

LabelsPtr share(Labels&& ls) { return std::make_shared<const Labels>(std::move(ls)); }

const LabelsPtr& empty_labels() {
  static const LabelsPtr e = std::make_shared<const Labels>();
  return e;
}

double scalar_binop(Op op, double l, double r) {
  switch (op) {
    case Op::Add:
      return l + r;
    case Op::Sub:
      return l - r;
    case Op::Mul:
      return l * r;
    case Op::Div:
      return l / r;
    case Op::Pow:
      return std::pow(l, r);
    case Op::Mod:
      return std::fmod(l, r);
    case Op::Atan2:
      return std::atan2(l, r);
    case Op::Eql:
      return l == r ? 1 : 0;
    case Op::Neq:
      return l != r ? 1 : 0;
    case Op::Gtr:
      return l > r ? 1 : 0;
    case Op::Lss:
      return l < r ? 1 : 0;
    case Op::Gte:
      return l >= r ? 1 : 0;
    case Op::Lte:
      return l <= r ? 1 : 0;
    default:
      return NAN;
  }
}

// vectorElemBinop: value and whether to keep the element.
std::pair<double, bool> elem_binop(Op op, double l, double r) {
  switch (op) {
    case Op::Eql:
      return {l, l == r};
    case Op::Neq:
      return {l, l != r};
    case Op::Gtr:
      return {l, l > r};
    case Op::Lss:
      return {l, l < r};
    case Op::Gte:
      return {l, l >= r};
    case Op::Lte:
      return {l, l <= r};
    default:
      return {scalar_binop(op, l, r), true};
  }
}

bool drops_metric_name(Op op) {
  return op == Op::Add || op == Op::Sub || op == Op::Mul || op == Op::Div || op == Op::Pow ||
         op == Op::Mod;
}

std::string signature(const Labels& ls, const VectorMatching& m) {
  std::string k;
  if (m.on) {
    for (const auto& l : ls)
      if (std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end()) {
        k += l.name;
        k.push_back('\xff');
        k += l.value;
        k.push_back('\xff');
      }
  } else {
    for (const auto& l : ls) {
      if (l.name == kMetricNameLabel) continue;
      if (std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end()) continue;
      k += l.name;
      k.push_back('\xff');
      k += l.value;
      k.push_back('\xff');
    }
  }
  return k;
}

Labels signature_labels(const Labels& ls, const VectorMatching& m) {
  Labels out;
  for (const auto& l : ls) {
    bool listed = std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end();
    if (m.on ? listed : (!listed && l.name != kMetricNameLabel)) out.push_back(l);
  }
  return out;
}

class Evaluator {
 public:
  Evaluator(const Queryable& q, const QueryOptions& o, int64_t start, int64_t end, int64_t step,
            bool instant)
      : q_(q),
        o_(o),
        start_(start),
        end_(end),
        step_(step),
        instant_(instant),
        deadline_(std::chrono::steady_clock::now() + o.timeout) {}

  void plan(const Expr& e, int64_t mint, int64_t maxt) {
    switch (e.kind) {
      case ExprKind::VectorSelector: {
        auto [lo, hi] = ref_range(e, mint, maxt);
        extend(e, lo - o_.lookback_ms, hi);
        return;
      }
      case ExprKind::MatrixSelector: {
        const Expr& vs = *e.args[0];
        auto [lo, hi] = ref_range(vs, mint, maxt);
        extend(vs, lo - e.range_ms, hi);
        return;
      }
      case ExprKind::Subquery: {
        auto [lo, hi] = ref_range(e, mint, maxt);
        plan(*e.args[0], lo - e.range_ms, hi);
        return;
      }
      default:
        if (e.param) plan(*e.param, mint, maxt);
        for (const auto& a : e.args) plan(*a, mint, maxt);
    }
  }

  Value eval(const Expr& e, int64_t ts) {
    check_deadline();
    switch (e.kind) {
      case ExprKind::Number: {
        Value v;
        v.type = ValueType::Scalar;
        v.scalar = e.number;
        return v;
      }
      case ExprKind::String: {
        Value v;
        v.type = ValueType::String;
        v.str = e.str;
        return v;
      }
      case ExprKind::Paren:
        return eval(*e.args[0], ts);
      case ExprKind::VectorSelector: {
        Value v;
        v.type = ValueType::Vector;
        v.vec = vector_selector(e, ts);
        return v;
      }
      case ExprKind::MatrixSelector:
      case ExprKind::Subquery: {
        Value v;
        v.type = ValueType::Matrix;
        std::vector<Window> ws;
        std::vector<std::vector<Point>> storage;
        windows(e, ts, ws, storage);
        for (auto& w : ws)
          v.mat.push_back(Series{w.labels, std::vector<Point>(w.points.begin(), w.points.end())});
        return v;
      }
      case ExprKind::Unary: {
        Value v = eval(*e.args[0], ts);
        if (e.op != Op::Sub) return v;
        if (v.type == ValueType::Scalar) {
          v.scalar = -v.scalar;
          return v;
        }
        for (auto& s : v.vec) {
          s.v = -s.v;
          s.labels = nameless(s.labels);
        }
        check_dups(v.vec);
        return v;
      }
      case ExprKind::Binary:
        return binary(e, ts);
      case ExprKind::Aggregate: {
        Value v;
        v.type = ValueType::Vector;
        v.vec = aggregate(e, ts);
        check_dups(v.vec);
        return v;
      }
      case ExprKind::Call:
        return call(e, ts);
    }
    return {};
  }

  int64_t samples_fetched() const { return fetched_; }
  void count_samples(int64_t n) {
    produced_ += n;
    if (produced_ + fetched_ > o_.max_samples)
      exec_error("query processing would load too many samples into memory in query execution");
  }
  void check_deadline() {
    if ((++ticks_ & 63) == 0 && std::chrono::steady_clock::now() > deadline_)
      throw EvalError{ErrorType::Timeout, "query timed out in expression evaluation"};
  }

 private:
  int64_t at_time(const Expr& e, int64_t ts) const { return e.at_time(ts, start_, end_); }
  std::pair<int64_t, int64_t> ref_range(const Expr& e, int64_t mint, int64_t maxt) const {
    if (e.at != AtKind::None) {
      int64_t t = at_time(e, 0) - e.offset_ms;
      return {t, t};
    }
    return {mint - e.offset_ms, maxt - e.offset_ms};
  }
  void extend(const Expr& vs, int64_t lo, int64_t hi) {
    auto& d = sel_[&vs];
    d.mint = std::min(d.mint, lo);
    d.maxt = std::max(d.maxt, hi);
  }

  SelectorData& load(const Expr& vs, bool for_range) {
    auto& d = sel_[&vs];
    if (d.loaded) return d;
    d.loaded = true;
    std::string err;
    auto r = q_.select(vs.matchers, d.mint, d.maxt, [&](Labels&& ls, std::vector<Point>&& pts) {
      if (for_range)
        pts.erase(std::remove_if(pts.begin(), pts.end(),
                                 [](const Point& p) { return is_stale_nan(p.v); }),
                  pts.end());
      fetched_ += static_cast<int64_t>(pts.size());
      FetchedSeries fs;
      fs.labels = share(std::move(ls));
      fs.points = std::move(pts);
      d.series.push_back(std::move(fs));
      if (o_.max_series && d.series.size() > o_.max_series) {
        err = "query would select more than " + std::to_string(o_.max_series) +
              " series (max_series)";
        return false;
      }
      if (fetched_ + produced_ > o_.max_samples) {
        err = "query processing would load too many samples into memory in query execution";
        return false;
      }
      return true;
    });
    if (!r) throw EvalError{ErrorType::Internal, r.error().message};
    if (!err.empty()) exec_error(err);
    std::sort(d.series.begin(), d.series.end(),
              [](const FetchedSeries& a, const FetchedSeries& b) { return *a.labels < *b.labels; });
    return d;
  }

  LabelsPtr nameless(const LabelsPtr& ls) {
    if (!has_label(*ls, kMetricNameLabel)) return ls;
    return share(drop_metric_name(*ls));
  }
  static LabelsPtr nameless_cached(const FetchedSeries& s) {
    auto& fs = const_cast<FetchedSeries&>(s);
    if (!fs.nameless) fs.nameless = share(drop_metric_name(*fs.labels));
    return fs.nameless;
  }

  Vector vector_selector(const Expr& vs, int64_t ts) {
    auto& d = load(vs, false);
    int64_t ref = at_time(vs, ts) - vs.offset_ms;
    Vector out;
    for (const auto& s : d.series) {
      auto it = std::upper_bound(s.points.begin(), s.points.end(), ref,
                                 [](int64_t t, const Point& p) { return t < p.t; });
      if (it == s.points.begin()) continue;
      --it;
      if (it->t < ref - o_.lookback_ms || is_stale_nan(it->v)) continue;
      out.push_back(Sample{s.labels, it->v, it->t});
    }
    return out;
  }

  // Windows of a matrix selector or subquery at `ts`; subquery points are
  // kept alive in `storage`.
  void windows(const Expr& e, int64_t ts, std::vector<Window>& out,
               std::vector<std::vector<Point>>& storage) {
    if (e.kind == ExprKind::Paren) return windows(*e.args[0], ts, out, storage);
    if (e.kind == ExprKind::MatrixSelector) {
      const Expr& vs = *e.args[0];
      auto& d = load(vs, true);
      int64_t maxt = at_time(vs, ts) - vs.offset_ms;
      int64_t mint = maxt - e.range_ms;
      for (auto& s : d.series) {
        const Point* pts = s.points.data();
        const size_t n = s.points.size();
        size_t lo = s.cursor;
        if (lo > n || (lo > 0 && pts[lo - 1].t >= mint)) lo = 0;  // moved back (subquery)
        for (int walk = 0; lo < n && pts[lo].t < mint; ++lo)
          if (++walk == 8) {  // far ahead: search the rest
            lo = static_cast<size_t>(
                std::lower_bound(pts + lo, pts + n, mint,
                                 [](const Point& p, int64_t t) { return p.t < t; }) -
                pts);
            break;
          }
        s.cursor = lo;
        size_t hi = lo;
        for (int walk = 0; hi < n && pts[hi].t <= maxt; ++hi)
          if (++walk == 16) {
            hi = static_cast<size_t>(
                std::upper_bound(pts + hi, pts + n, maxt,
                                 [](int64_t t, const Point& p) { return t < p.t; }) -
                pts);
            break;
          }
        if (lo == hi) continue;
        out.push_back(Window{&s, s.labels, std::span<const Point>(pts + lo, hi - lo)});
      }
      return;
    }
    // Subquery: the inner expression at aligned steps in [ref - range, ref].
    int64_t step = e.step_ms ? e.step_ms : o_.default_subquery_step_ms;
    int64_t ref = at_time(e, ts) - e.offset_ms;
    int64_t lo = ref - e.range_ms;
    int64_t first = (lo / step) * step;
    if (first < lo) first += step;
    auto& memo = subq_[&e];
    std::unordered_map<std::string, size_t> idx;
    std::vector<LabelsPtr> labels;
    ++subquery_depth_;
    for (int64_t t = first; t <= ref; t += step) {
      auto it = memo.find(t);
      if (it == memo.end()) {
        Value v = eval(*e.args[0], t);
        Vector vec;
        if (v.type == ValueType::Scalar)
          vec.push_back(Sample{empty_labels(), v.scalar, t});
        else
          vec = std::move(v.vec);
        count_samples(static_cast<int64_t>(vec.size()));
        // Empty steps are not kept: `nonexistent[1y:1ms]` would otherwise
        // grow the memo by 3e10 entries before the timeout, uncounted by
        // max_samples.
        if (vec.empty()) continue;
        it = memo.emplace(t, std::move(vec)).first;
      }
      for (const auto& s : it->second) {
        auto [p, inserted] = idx.emplace(labels_key(*s.labels), labels.size());
        if (inserted) {
          labels.push_back(s.labels);
          storage.emplace_back();
        }
        storage[p->second].push_back(Point{t, s.v});
      }
    }
    --subquery_depth_;
    // Series in label order, as Prometheus's matrices are.
    std::vector<size_t> order(labels.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return *labels[a] < *labels[b]; });
    for (size_t i : order) out.push_back(Window{nullptr, labels[i], storage[i]});
  }

  // Prometheus checks every step of every function, operator and
  // aggregation result (rangeEval), in instant and range queries alike.
  void check_dups(const Vector& v) {
    if (v.size() < 2) return;
    // Sorting (hash, index) pairs avoids a hash-map allocation per sample.
    dup_scratch_.clear();
    for (size_t i = 0; i < v.size(); ++i) dup_scratch_.emplace_back(label_hash(v[i].labels), i);
    std::sort(dup_scratch_.begin(), dup_scratch_.end());
    for (size_t i = 1; i < dup_scratch_.size(); ++i) {
      if (dup_scratch_[i].first != dup_scratch_[i - 1].first) continue;
      for (size_t k = i; k-- > 0 && dup_scratch_[k].first == dup_scratch_[i].first;)
        if (*v[dup_scratch_[k].second].labels == *v[dup_scratch_[i].second].labels)
          exec_error("vector cannot contain metrics with the same labelset");
    }
  }

  // FNV-1a of a label set, cached by address (the set is kept alive here).
  uint64_t label_hash(const LabelsPtr& ls) {
    auto it = hash_cache_.find(ls.get());
    if (it != hash_cache_.end()) return it->second;
    uint64_t h = 1469598103934665603ULL;
    auto mix = [&](std::string_view x) {
      for (unsigned char c : x) h = (h ^ c) * 1099511628211ULL;
      h = (h ^ 0xff) * 1099511628211ULL;
    };
    for (const auto& l : *ls) {
      mix(l.name);
      mix(l.value);
    }
    if (ls.use_count() > 1 && hash_cache_.size() < 200'000) {  // only shared, stable sets
      hash_cache_.emplace(ls.get(), h);
      hash_keep_.push_back(ls);
    }
    return h;
  }

  // ---- binary operators
  Value binary(const Expr& e, int64_t ts) {
    Value l = eval(*e.args[0], ts);
    Value r = eval(*e.args[1], ts);
    Value out;
    if (l.type == ValueType::Scalar && r.type == ValueType::Scalar) {
      out.type = ValueType::Scalar;
      out.scalar = scalar_binop(e.op, l.scalar, r.scalar);
      return out;
    }
    out.type = ValueType::Vector;
    if (l.type == ValueType::Vector && r.type == ValueType::Vector) {
      out.vec = vector_binop(e, l.vec, r.vec);
    } else {
      bool swap = l.type == ValueType::Scalar;
      Vector& vec = swap ? r.vec : l.vec;
      double sc = swap ? l.scalar : r.scalar;
      for (auto& s : vec) {
        double lv = s.v, rv = sc;
        if (swap) std::swap(lv, rv);
        auto [value, keep] = elem_binop(e.op, lv, rv);
        if (is_comparison(e.op) && swap) value = rv;
        if (e.return_bool) {
          value = keep ? 1 : 0;
          keep = true;
        }
        if (!keep) continue;
        s.v = value;
        if (drops_metric_name(e.op) || e.return_bool) s.labels = nameless(s.labels);
        out.vec.push_back(std::move(s));
      }
    }
    check_dups(out.vec);
    return out;
  }

  Vector vector_binop(const Expr& e, Vector& lhs, Vector& rhs) {
    const VectorMatching& m = *e.matching;
    Vector out;
    if (e.op == Op::And || e.op == Op::Unless) {
      std::unordered_set<std::string> rs;
      for (const auto& s : rhs) rs.insert(signature(*s.labels, m));
      for (auto& s : lhs)
        if ((rs.count(signature(*s.labels, m)) > 0) == (e.op == Op::And))
          out.push_back(std::move(s));
      return out;
    }
    if (e.op == Op::Or) {
      std::unordered_set<std::string> ls;
      for (auto& s : lhs) {
        ls.insert(signature(*s.labels, m));
        out.push_back(std::move(s));
      }
      for (auto& s : rhs)
        if (!ls.count(signature(*s.labels, m))) out.push_back(std::move(s));
      return out;
    }
    bool swapped = m.card == Card::OneToMany;
    Vector& L = swapped ? rhs : lhs;
    Vector& R = swapped ? lhs : rhs;
    std::unordered_map<std::string, const Sample*> right;
    for (const auto& s : R) {
      auto [it, inserted] = right.emplace(signature(*s.labels, m), &s);
      if (!inserted)
        exec_error(
            "found duplicate series for the match group " +
            labels_string(signature_labels(*s.labels, m)) + " on the " +
            (swapped ? "left" : "right") + " hand-side of the operation: [" +
            labels_string(*it->second->labels) + ", " + labels_string(*s.labels) +
            "];many-to-many matching not allowed: matching labels must be unique on one side");
    }
    std::unordered_map<std::string, std::unordered_set<std::string>> matched;
    for (const auto& ls : L) {
      std::string sig = signature(*ls.labels, m);
      auto it = right.find(sig);
      if (it == right.end()) continue;
      const Sample& rs = *it->second;
      double vl = ls.v, vr = rs.v;
      if (swapped) std::swap(vl, vr);
      auto [value, keep] = elem_binop(e.op, vl, vr);
      if (e.return_bool)
        value = keep ? 1 : 0;
      else if (!keep)
        continue;
      Labels metric = result_metric(*ls.labels, *rs.labels, e.op, m);
      if (e.return_bool) metric = drop_metric_name(metric);
      auto mit = matched.find(sig);
      if (m.card == Card::OneToOne) {
        if (mit != matched.end())
          exec_error(
              "multiple matches for labels: many-to-one matching must be explicit "
              "(group_left/group_right)");
        matched[sig];
      } else {
        auto& inserted = matched[sig];
        if (!inserted.insert(labels_key(metric)).second)
          exec_error("multiple matches for labels: grouping labels must ensure unique matches");
      }
      out.push_back(Sample{share(std::move(metric)), value, 0});
    }
    return out;
  }

  static Labels result_metric(const Labels& lhs, const Labels& rhs, Op op,
                              const VectorMatching& m) {
    Labels out = lhs;
    if (drops_metric_name(op)) set_label(out, kMetricNameLabel, "");
    if (m.card == Card::OneToOne) {
      Labels kept;
      for (const auto& l : out) {
        bool listed = std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end();
        if (m.on ? listed : !listed) kept.push_back(l);
      }
      out = std::move(kept);
    }
    for (const auto& name : m.include) set_label(out, name, get_label(rhs, name));
    return out;
  }

  // ---- aggregation
  Vector aggregate(const Expr& e, int64_t ts) {
    double param = 0;
    std::string str_param;
    if (e.param) {
      Value p = eval(*e.param, ts);
      if (p.type == ValueType::String)
        str_param = p.str;
      else
        param = p.scalar;
    }
    Value in = eval(*e.args[0], ts);
    Vector& vec = in.vec;
    // Prometheus' convertibleToInt64 (its largest float below 2^63) and
    // message, the value as Go's %v: always an exponent at this magnitude.
    if ((e.op == Op::Topk || e.op == Op::Bottomk) &&
        !(param <= 9223372036854774784.0 && param >= -9223372036854775808.0)) {
      std::string v = std::isnan(param) ? "NaN" : param > 0 ? "+Inf" : "-Inf";
      if (std::isfinite(param)) {
        char buf[64];
        v.assign(buf,
                 std::to_chars(buf, buf + sizeof buf, param, std::chars_format::scientific).ptr);
      }
      exec_error("Scalar value " + v + " overflows int64");
    }
    if (e.op == Op::CountValues && !valid_label_name(str_param))
      exec_error("invalid label name \"" + str_param + "\"");
    if (e.op == Op::CountValues) {
      for (auto& s : vec) {
        Labels ls = *s.labels;
        set_label(ls, str_param, fn::format_float(s.v));
        s.labels = share(std::move(ls));
      }
    }
    std::vector<std::string> grouping = e.grouping;
    if (e.op == Op::CountValues && !e.without) grouping.push_back(str_param);
    auto group_labels = [&](const Labels& ls) {
      Labels out;
      for (const auto& l : ls) {
        bool listed = std::find(grouping.begin(), grouping.end(), l.name) != grouping.end();
        if (e.without ? (!listed && l.name != kMetricNameLabel) : listed) out.push_back(l);
      }
      return out;
    };
    struct Group {
      LabelsPtr labels;
      double value = 0, mean = 0, count = 0;
      std::vector<double> values;
      std::vector<const Sample*> members;
    };
    std::vector<Group> groups;
    std::unordered_map<const Labels*, size_t> index;
    auto& cache = group_cache_[&e];
    for (const auto& s : vec) {
      // Each input label set maps to an interned group label set, cached per
      // node across steps (count_values makes new sets each step: no cache).
      LabelsPtr gl;
      auto cit =
          e.op == Op::CountValues ? cache.by_input.end() : cache.by_input.find(s.labels.get());
      if (cit != cache.by_input.end()) {
        gl = cit->second;
      } else {
        Labels g = group_labels(*s.labels);
        auto [iit, fresh] = cache.interned.emplace(labels_key(g), nullptr);
        if (fresh) iit->second = share(std::move(g));
        gl = iit->second;
        if (e.op != Op::CountValues) {
          cache.by_input.emplace(s.labels.get(), gl);
          cache.keep.push_back(s.labels);
        }
      }
      auto [it, inserted] = index.emplace(gl.get(), groups.size());
      if (inserted) {
        Group g;
        g.labels = gl;
        g.value = s.v;
        g.mean = s.v;
        g.count = 1;
        if (e.op == Op::Stddev || e.op == Op::Stdvar) g.value = 0;
        if (e.op == Op::Quantile) g.values.push_back(s.v);
        if (e.op == Op::Topk || e.op == Op::Bottomk) g.members.push_back(&s);
        groups.push_back(std::move(g));
        continue;
      }
      Group& g = groups[it->second];
      switch (e.op) {
        case Op::Sum:
          g.value += s.v;
          break;
        case Op::Avg: {
          g.count++;
          if (std::isinf(g.mean)) {
            if (std::isinf(s.v) && (g.mean > 0) == (s.v > 0)) break;
            if (!std::isinf(s.v) && !std::isnan(s.v)) break;
          }
          g.mean += s.v / g.count - g.mean / g.count;
          break;
        }
        case Op::Count:
        case Op::CountValues:
          g.count++;
          break;
        case Op::Group:
          break;
        case Op::Max:
          if (g.value < s.v || std::isnan(g.value)) g.value = s.v;
          break;
        case Op::Min:
          if (g.value > s.v || std::isnan(g.value)) g.value = s.v;
          break;
        case Op::Stddev:
        case Op::Stdvar: {
          g.count++;
          double delta = s.v - g.mean;
          g.mean += delta / g.count;
          g.value += delta * (s.v - g.mean);
          break;
        }
        case Op::Quantile:
          g.values.push_back(s.v);
          break;
        case Op::Topk:
        case Op::Bottomk:
          g.members.push_back(&s);
          break;
        default:
          break;
      }
    }
    Vector out;
    if (e.op == Op::Topk || e.op == Op::Bottomk) {
      int64_t k = std::isnan(param) ? 0 : static_cast<int64_t>(std::clamp(param, -9e18, 9e18));
      if (k < 1) return out;
      bool top = e.op == Op::Topk;
      for (auto& g : groups) {
        std::stable_sort(g.members.begin(), g.members.end(), [&](const Sample* a, const Sample* b) {
          if (std::isnan(a->v)) return false;
          if (std::isnan(b->v)) return true;
          return top ? a->v > b->v : a->v < b->v;
        });
        size_t n = std::min(g.members.size(), static_cast<size_t>(k));
        for (size_t i = 0; i < n; ++i)
          out.push_back(Sample{g.members[i]->labels, g.members[i]->v, 0});
      }
      return out;
    }
    for (auto& g : groups) {
      double v = 0;
      switch (e.op) {
        case Op::Avg:
          v = g.mean;
          break;
        case Op::Count:
        case Op::CountValues:
          v = g.count;
          break;
        case Op::Group:
          v = 1;
          break;
        case Op::Stddev:
          v = std::sqrt(g.value / g.count);
          break;
        case Op::Stdvar:
          v = g.value / g.count;
          break;
        case Op::Quantile:
          v = fn::quantile(param, g.values);
          break;
        default:
          v = g.value;
      }
      out.push_back(Sample{g.labels, v, 0});
    }
    return out;
  }

  // ---- function calls
  Value call(const Expr& e, int64_t ts) {
    const FunctionInfo& f = *e.func;
    const char* name = f.name;
    Value out;
    out.type = f.return_type;
    if (str_eq(name, "time")) {
      out.scalar = static_cast<double>(ts) / 1000;
      return out;
    }
    if (str_eq(name, "pi")) {
      out.scalar = M_PI;
      return out;
    }
    // Functions over a range vector.
    int matrix_arg = -1;
    for (size_t i = 0; i < f.arg_types.size() && i < e.args.size(); ++i)
      if (f.arg_types[i] == ValueType::Matrix) matrix_arg = static_cast<int>(i);
    if (matrix_arg >= 0) {
      bool dup_free = false;
      out.vec = range_function(e, matrix_arg, ts, &dup_free);
      if (!dup_free) check_dups(out.vec);
      return out;
    }
    if (str_eq(name, "vector")) {
      Value a = eval(*e.args[0], ts);
      out.vec.push_back(Sample{empty_labels(), a.scalar, ts});
      return out;
    }
    if (str_eq(name, "scalar")) {
      Value a = eval(*e.args[0], ts);
      out.scalar = a.vec.size() == 1 ? a.vec[0].v : NAN;
      return out;
    }
    if (str_eq(name, "absent")) {
      Value a = eval(*e.args[0], ts);
      if (!a.vec.empty()) return out;
      out.vec.push_back(Sample{absent_labels(*e.args[0]), 1, ts});
      return out;
    }
    if (str_eq(name, "timestamp")) {
      const Expr* arg = e.args[0].get();
      while (arg->kind == ExprKind::Paren) arg = arg->args[0].get();
      Value a = eval(*arg, ts);
      bool selector = arg->kind == ExprKind::VectorSelector;
      for (auto& s : a.vec)
        out.vec.push_back(
            Sample{nameless(s.labels), static_cast<double>(selector ? s.t : ts) / 1000, 0});
      check_dups(out.vec);
      return out;
    }
    // Date functions default to vector(time()).
    bool is_date = str_eq(name, "day_of_month") || str_eq(name, "day_of_week") ||
                   str_eq(name, "day_of_year") || str_eq(name, "days_in_month") ||
                   str_eq(name, "hour") || str_eq(name, "minute") || str_eq(name, "month") ||
                   str_eq(name, "year");
    if (is_date && e.args.empty()) {
      out.vec.push_back(Sample{empty_labels(), date_part(name, static_cast<double>(ts) / 1000), 0});
      return out;
    }
    std::vector<Value> args;
    for (const auto& a : e.args) args.push_back(eval(*a, ts));
    Vector& in = args[0].vec;
    if (str_eq(name, "sort") || str_eq(name, "sort_desc")) {
      // NaN sorts last both ways (sort.Reverse over Prometheus's value heaps).
      bool desc = name[4] == '_';
      std::stable_sort(in.begin(), in.end(), [&](const Sample& a, const Sample& b) {
        if (std::isnan(b.v)) return !std::isnan(a.v);
        if (std::isnan(a.v)) return false;
        return desc ? a.v > b.v : a.v < b.v;
      });
      out.vec = std::move(in);
      return out;
    }
    if (str_eq(name, "label_replace")) {
      out.vec = label_replace(e, args);
      check_dups(out.vec);
      return out;
    }
    if (str_eq(name, "label_join")) {
      const std::string& dst = args[1].str;
      const std::string& sep = args[2].str;
      if (!valid_label_name(dst))
        exec_error("invalid destination label name in label_join(): " + dst);
      for (size_t i = 3; i < args.size(); ++i)
        if (!valid_label_name(args[i].str))
          exec_error("invalid source label name in label_join(): " + args[i].str);
      for (auto& s : in) {
        std::string joined;
        for (size_t i = 3; i < args.size(); ++i) {
          if (i > 3) joined += sep;
          joined += get_label(*s.labels, args[i].str);
        }
        Labels ls = *s.labels;
        set_label(ls, dst, joined);
        out.vec.push_back(Sample{share(std::move(ls)), s.v, 0});
      }
      check_dups(out.vec);
      return out;
    }
    if (str_eq(name, "histogram_quantile")) {
      out.vec = histogram_quantile(args[0].scalar, args[1].vec);
      check_dups(out.vec);
      return out;
    }
    // Element-wise functions that drop the metric name.
    double a1 = args.size() > 1 ? args[1].scalar : 0;
    double a2 = args.size() > 2 ? args[2].scalar : 0;
    if (str_eq(name, "clamp") && a2 < a1) return out;
    for (auto& s : in) {
      double v = s.v, r;
      if (str_eq(name, "abs"))
        r = std::fabs(v);
      else if (str_eq(name, "ceil"))
        r = std::ceil(v);
      else if (str_eq(name, "floor"))
        r = std::floor(v);
      else if (str_eq(name, "exp"))
        r = std::exp(v);
      else if (str_eq(name, "ln"))
        r = std::log(v);
      else if (str_eq(name, "log2"))
        r = std::log2(v);
      else if (str_eq(name, "log10"))
        r = std::log10(v);
      else if (str_eq(name, "sqrt"))
        r = std::sqrt(v);
      else if (str_eq(name, "sgn"))
        r = v > 0 ? 1 : v < 0 ? -1 : v;
      else if (str_eq(name, "deg"))
        r = v * 180 / M_PI;
      else if (str_eq(name, "rad"))
        r = v * M_PI / 180;
      else if (str_eq(name, "sin"))
        r = std::sin(v);
      else if (str_eq(name, "cos"))
        r = std::cos(v);
      else if (str_eq(name, "tan"))
        r = std::tan(v);
      else if (str_eq(name, "asin"))
        r = std::asin(v);
      else if (str_eq(name, "acos"))
        r = std::acos(v);
      else if (str_eq(name, "atan"))
        r = std::atan(v);
      else if (str_eq(name, "sinh"))
        r = std::sinh(v);
      else if (str_eq(name, "cosh"))
        r = std::cosh(v);
      else if (str_eq(name, "tanh"))
        r = std::tanh(v);
      else if (str_eq(name, "asinh"))
        r = std::asinh(v);
      else if (str_eq(name, "acosh"))
        r = std::acosh(v);
      else if (str_eq(name, "atanh"))
        r = std::atanh(v);
      else if (str_eq(name, "round")) {
        double to = args.size() > 1 ? a1 : 1;
        double inv = 1.0 / to;
        r = std::floor(v * inv + 0.5) / inv;
      } else if (str_eq(name, "clamp"))
        r = fn::go_max(a1, fn::go_min(a2, v));
      else if (str_eq(name, "clamp_max"))
        r = fn::go_min(a1, v);
      else if (str_eq(name, "clamp_min"))
        r = fn::go_max(a1, v);
      else if (is_date)
        r = date_part(name, v);
      else
        exec_error(std::string("function ") + name + " is not implemented");
      out.vec.push_back(Sample{nameless(s.labels), r, 0});
    }
    check_dups(out.vec);
    return out;
  }

  static double date_part(const char* name, double secs) {
    if (std::isnan(secs) || std::isinf(secs)) return NAN;
    time_t t = static_cast<time_t>(secs);
    struct tm tm {};
    gmtime_r(&t, &tm);
    if (str_eq(name, "day_of_month")) return tm.tm_mday;
    if (str_eq(name, "day_of_week")) return tm.tm_wday;
    if (str_eq(name, "day_of_year")) return tm.tm_yday + 1;
    if (str_eq(name, "hour")) return tm.tm_hour;
    if (str_eq(name, "minute")) return tm.tm_min;
    if (str_eq(name, "month")) return tm.tm_mon + 1;
    if (str_eq(name, "year")) return tm.tm_year + 1900;
    // days_in_month
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y = tm.tm_year + 1900;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return tm.tm_mon == 1 && leap ? 29 : days[tm.tm_mon];
  }

  static LabelsPtr absent_labels(const Expr& arg) {
    const Expr* e = &arg;
    while (e->kind == ExprKind::Paren) e = e->args[0].get();
    if (e->kind == ExprKind::MatrixSelector) e = e->args[0].get();
    if (e->kind != ExprKind::VectorSelector) return empty_labels();
    Labels ls;
    std::vector<std::string> drop;
    for (const auto& m : e->matchers) {
      if (m.name == kMetricNameLabel) continue;
      if (m.type == MatchType::Equal && !has_label(ls, m.name))
        set_label(ls, m.name, m.value);
      else
        drop.push_back(m.name);
    }
    for (const auto& d : drop) set_label(ls, d, "");
    return share(std::move(ls));
  }

  // Whether the selector's series keep distinct label sets once __name__ is
  // dropped; computed once per query, so that functions over it need not
  // look for duplicates at every step (a sort of the whole output).
  bool nameless_unique(SelectorData& d) {
    if (d.nameless_unique < 0) {
      std::vector<std::pair<uint64_t, size_t>> h;
      h.reserve(d.series.size());
      for (size_t i = 0; i < d.series.size(); ++i)
        h.emplace_back(label_hash(nameless_cached(d.series[i])), i);
      std::sort(h.begin(), h.end());
      d.nameless_unique = 1;
      for (size_t i = 1; i < h.size() && d.nameless_unique; ++i)
        for (size_t k = i; k-- > 0 && h[k].first == h[i].first;)
          if (*nameless_cached(d.series[h[k].second]) == *nameless_cached(d.series[h[i].second])) {
            d.nameless_unique = 0;
            break;
          }
    }
    return d.nameless_unique == 1;
  }

  // *dup_free: the result cannot hold two equal label sets (no need to check).
  Vector range_function(const Expr& e, int matrix_arg, int64_t ts, bool* dup_free) {
    const char* name = e.func->name;
    std::vector<Window> ws;
    std::vector<std::vector<Point>> storage;
    const Expr& marg = *e.args[static_cast<size_t>(matrix_arg)];
    // Scalar arguments are evaluated once per step.
    std::vector<double> scalars;
    for (size_t i = 0; i < e.args.size(); ++i)
      scalars.push_back(static_cast<int>(i) == matrix_arg ? 0 : eval(*e.args[i], ts).scalar);
    windows(marg, ts, ws, storage);
    Vector out;
    if (str_eq(name, "absent_over_time")) {
      if (ws.empty()) out.push_back(Sample{absent_labels(marg), 1, 0});
      return out;
    }
    // The window's end and length, for rate extrapolation.
    const Expr* m = &marg;
    while (m->kind == ExprKind::Paren) m = m->args[0].get();
    int64_t range_ms = m->range_ms;
    const Expr& timed = m->kind == ExprKind::MatrixSelector ? *m->args[0] : *m;
    int64_t range_end = at_time(timed, ts) - timed.offset_ms;
    int64_t range_start = range_end - range_ms;
    bool keep_name = str_eq(name, "last_over_time");
    if (m->kind == ExprKind::MatrixSelector) {
      // Storage series are distinct; without __name__ they may collide.
      *dup_free = keep_name || nameless_unique(load(*m->args[0], true));
    }
    const fn::RangeFn kind = fn::range_fn_kind(name);
    out.reserve(ws.size());
    for (const auto& w : ws) {
      std::optional<double> v;
      if (kind == fn::RangeFn::HoltWinters) {
        double sf = scalars[1], tf = scalars[2];
        if (sf <= 0 || sf >= 1)
          exec_error("invalid smoothing factor. Expected: 0 < sf < 1, got: " + std::to_string(sf));
        if (tf <= 0 || tf >= 1)
          exec_error("invalid trend factor. Expected: 0 < tf < 1, got: " + std::to_string(tf));
        v = fn::holt_winters(w.points, sf, tf);
      } else {
        v = fn::range_fn_value(kind, name, w.points, range_start, range_end, range_ms, ts, scalars);
      }
      if (!v) continue;
      LabelsPtr ls = keep_name ? w.labels : (w.src ? nameless_cached(*w.src) : nameless(w.labels));
      out.push_back(Sample{std::move(ls), *v, 0});
    }
    return out;
  }

  Vector label_replace(const Expr& e, std::vector<Value>& args) {
    const std::string& dst = args[1].str;
    const std::string& repl = args[2].str;
    const std::string& src = args[3].str;
    const std::string& re_text = args[4].str;
    auto& re = regex_[&e];
    if (!re) {
      re = std::make_unique<RE2>("^(?:" + re_text + ")$", RE2::Quiet);
      if (!re->ok()) exec_error("invalid regular expression in label_replace(): " + re_text);
    }
    if (!valid_label_name(dst))
      exec_error("invalid destination label name in label_replace(): " + dst);
    Vector out;
    int ngroups = re->NumberOfCapturingGroups();
    std::vector<re2::StringPiece> groups(static_cast<size_t>(ngroups + 1));
    for (auto& s : args[0].vec) {
      std::string_view sv_ = get_label(*s.labels, src);
      re2::StringPiece input(sv_.data(), sv_.size());
      if (!re->Match(input, 0, input.size(), RE2::UNANCHORED, groups.data(), ngroups + 1)) {
        out.push_back(std::move(s));
        continue;
      }
      std::string res = expand(*re, repl, groups);
      Labels ls = *s.labels;
      set_label(ls, dst, res);
      out.push_back(Sample{share(std::move(ls)), s.v, 0});
    }
    return out;
  }

  // Go's regexp.Expand: $1, ${1}, $name, ${name}, $$.
  static std::string expand(const RE2& re, const std::string& tmpl,
                            const std::vector<re2::StringPiece>& groups) {
    std::string out;
    const auto& named = re.NamedCapturingGroups();
    for (size_t i = 0; i < tmpl.size(); ++i) {
      if (tmpl[i] != '$') {
        out.push_back(tmpl[i]);
        continue;
      }
      if (i + 1 < tmpl.size() && tmpl[i + 1] == '$') {
        out.push_back('$');
        ++i;
        continue;
      }
      std::string name;
      size_t j = i + 1;
      bool brace = j < tmpl.size() && tmpl[j] == '{';
      if (brace) ++j;
      size_t k = j;
      while (k < tmpl.size() &&
             (std::isalnum(static_cast<unsigned char>(tmpl[k])) || tmpl[k] == '_'))
        ++k;
      name = tmpl.substr(j, k - j);
      if (name.empty() || (brace && (k >= tmpl.size() || tmpl[k] != '}'))) {
        out.push_back('$');
        continue;
      }
      i = brace ? k : k - 1;
      bool numeric =
          std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; });
      int idx = -1;
      if (numeric) {
        if (name.size() < 10) idx = std::stoi(name);
      } else {
        auto it = named.find(name);
        if (it != named.end()) idx = it->second;
      }
      if (idx >= 0 && static_cast<size_t>(idx) < groups.size() &&
          groups[static_cast<size_t>(idx)].data())
        out.append(groups[static_cast<size_t>(idx)].data(),
                   groups[static_cast<size_t>(idx)].size());
    }
    return out;
  }

  Vector histogram_quantile(double q, const Vector& in) {
    struct Group {
      LabelsPtr labels;
      std::vector<std::pair<double, double>> buckets;
    };
    std::vector<Group> groups;
    std::unordered_map<std::string, size_t> index;
    for (const auto& s : in) {
      std::string le(get_label(*s.labels, "le"));
      char* endp = nullptr;
      if (le.empty()) continue;
      double ub = std::strtod(le.c_str(), &endp);
      if (endp != le.c_str() + le.size() || std::isspace(static_cast<unsigned char>(le[0])))
        continue;
      Labels without_le;
      for (const auto& l : *s.labels)
        if (l.name != "le") without_le.push_back(l);
      auto [it, inserted] = index.emplace(labels_key(without_le), groups.size());
      if (inserted) groups.push_back(Group{share(drop_metric_name(without_le)), {}});
      groups[it->second].buckets.emplace_back(ub, s.v);
    }
    Vector out;
    for (auto& g : groups) out.push_back(Sample{g.labels, fn::bucket_quantile(q, g.buckets), 0});
    return out;
  }

  const Queryable& q_;
  const QueryOptions& o_;
  int64_t start_, end_, step_;
  bool instant_;
  std::chrono::steady_clock::time_point deadline_;
  std::unordered_map<const Expr*, SelectorData> sel_;
  std::unordered_map<const Expr*, std::unordered_map<int64_t, Vector>> subq_;
  std::unordered_map<const Expr*, std::unique_ptr<RE2>> regex_;
  struct GroupCache {
    std::unordered_map<const Labels*, LabelsPtr> by_input;
    std::unordered_map<std::string, LabelsPtr> interned;
    std::vector<LabelsPtr> keep;  // keeps by_input's keys alive
  };
  std::unordered_map<const Expr*, GroupCache> group_cache_;
  std::unordered_map<const Labels*, uint64_t> hash_cache_;
  std::vector<LabelsPtr> hash_keep_;
  std::vector<std::pair<uint64_t, size_t>> dup_scratch_;
  int subquery_depth_ = 0;
  int64_t fetched_ = 0, produced_ = 0;
  uint64_t ticks_ = 0;
};

}  // namespace

QueryResult Engine::instant(std::string_view query, int64_t time_ms) const {
  auto e = parse(query);
  if (!e) return QueryResult{ErrorType::BadData, e.error().message, {}, 0, 0};
  return exec(**e, time_ms, time_ms, 0, true);
}

QueryResult Engine::range(std::string_view query, int64_t start_ms, int64_t end_ms,
                          int64_t step_ms) const {
  auto e = parse(query);
  if (!e) return QueryResult{ErrorType::BadData, e.error().message, {}, 0, 0};
  return exec(**e, start_ms, end_ms, step_ms, false);
}

QueryResult Engine::exec(const Expr& expr, int64_t start, int64_t end, int64_t step,
                         bool instant) const {
  QueryResult res;
  ValueType t = expr.type();
  if (!instant && t != ValueType::Scalar && t != ValueType::Vector) {
    res.error = ErrorType::BadData;
    res.message = std::string("invalid expression type \"") + value_type_name(t) +
                  "\" for range query, must be Scalar or instant Vector";
    return res;
  }
  if (!instant && opts_.series_major)
    if (auto r = eval_series_major(q_, opts_, expr, start, end, step)) return std::move(*r);
  Evaluator ev(q_, opts_, start, end, step, instant);
  try {
    ev.plan(expr, start, end);
    if (instant) {
      res.value = ev.eval(expr, start);
      res.time_ms = start;
      if (res.value.type == ValueType::Vector)
        for (auto& s : res.value.vec) s.t = start;
    } else {
      std::unordered_map<std::string, size_t> index;
      std::unordered_map<const Labels*, size_t> by_ptr;
      std::vector<LabelsPtr> seen;
      Matrix& mat = res.value.mat;
      res.value.type = ValueType::Matrix;
      for (int64_t ts = start; ts <= end; ts += step) {
        ev.check_deadline();
        Value v = ev.eval(expr, ts);
        if (v.type == ValueType::Scalar) {
          v.vec.push_back(Sample{empty_labels(), v.scalar, ts});
        }
        ev.count_samples(static_cast<int64_t>(v.vec.size()));
        for (auto& s : v.vec) {
          // Most label sets are the same shared object at every step; look
          // them up by address (kept alive in `seen`) before hashing labels.
          auto pit = by_ptr.find(s.labels.get());
          size_t idx;
          if (pit != by_ptr.end()) {
            idx = pit->second;
          } else {
            auto [it, inserted] = index.emplace(labels_key(*s.labels), mat.size());
            if (inserted) mat.push_back(Series{s.labels, {}});
            idx = it->second;
            by_ptr.emplace(s.labels.get(), idx);
            seen.push_back(s.labels);
          }
          mat[idx].points.push_back(Point{ts, s.v});
        }
      }
      std::sort(mat.begin(), mat.end(),
                [](const Series& a, const Series& b) { return *a.labels < *b.labels; });
    }
  } catch (const EvalError& e) {
    res.error = e.type;
    res.message = e.message;
    res.value = {};
  }
  res.samples_fetched = ev.samples_fetched();
  return res;
}

}  // namespace moni::promql
