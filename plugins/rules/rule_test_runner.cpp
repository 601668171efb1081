#include "rule_test_runner.hpp"

#include <glob.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "overlay_queryable.hpp"
#include "promql/functions.hpp"
#include "promql/parser.hpp"
#include "promql/value.hpp"
#include "rule_config.hpp"
#include "rule_engine.hpp"

namespace moni::rules {

namespace {

// The test's series, with what the rules record appended as they run.
// Thread-safety: one thread.
class SeriesStore : public promql::Queryable, public SampleSink {
 public:
  void put(const Labels& ls, int64_t t, double v) {
    auto& pts = series_[ls];
    auto pos = std::lower_bound(pts.begin(), pts.end(), t,
                                [](const promql::Point& p, int64_t x) { return p.t < x; });
    if (pos != pts.end() && pos->t == t)
      pos->v = v;
    else
      pts.insert(pos, promql::Point{t, v});
  }
  Result<void> select(
      std::span<const Matcher> matchers, int64_t mint, int64_t maxt,
      const std::function<bool(Labels&&, std::vector<promql::Point>&&)>& fn) const override {
    for (const auto& [ls, pts] : series_) {
      if (!labels_match(ls, matchers)) continue;
      std::vector<promql::Point> in;
      for (const auto& p : pts)
        if (p.t >= mint && p.t <= maxt) in.push_back(p);
      if (in.empty()) continue;
      Labels copy = ls;
      if (!fn(std::move(copy), std::move(in))) break;
    }
    return {};
  }
  void add(const Labels& l, double v, int64_t t) override { put(l, t, v); }
  void flush() override {}

 private:
  std::map<Labels, std::vector<promql::Point>> series_;
};

Result<int64_t> duration(const YAML::Node& n, int64_t def) {
  if (!n) return def;
  return promql::parse_promql_duration(n.as<std::string>());
}

// promtool's expanding notation.
Result<std::vector<std::optional<double>>> expand(const std::string& spec) {
  std::vector<std::optional<double>> out;
  std::istringstream in(spec);
  auto num = [](const std::string& s) -> Result<double> {
    if (s == "stale") return stale_nan();
    if (s == "NaN") return std::nan("");
    if (s == "Inf" || s == "+Inf") return INFINITY;
    if (s == "-Inf") return -INFINITY;
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) return make_error("bad value '" + s + "'");
    return d;
  };
  for (std::string tok; in >> tok;) {
    auto x = tok.find('x');
    std::string head = x == std::string::npos ? tok : tok.substr(0, x);
    int n = 0;
    if (x != std::string::npos) {
      try {
        n = std::stoi(tok.substr(x + 1));
      } catch (const std::exception&) {
        return make_error("bad repetition in '" + tok + "'");
      }
    }
    if (head == "_") {
      for (int i = 0; i <= (x == std::string::npos ? 0 : n - 1); ++i) out.push_back(std::nullopt);
      continue;
    }
    size_t op = head.find_first_of("+-", 1);
    while (op != std::string::npos && (head[op - 1] == 'e' || head[op - 1] == 'E'))
      op = head.find_first_of("+-", op + 1);
    auto a = num(head.substr(0, op));
    if (!a) return a.error();
    double b = 0;
    if (op != std::string::npos) {
      auto bv = num(head.substr(op));
      if (!bv) return bv.error();
      b = *bv;
    }
    double k = *a;
    out.push_back(k);
    if (x == std::string::npos) continue;
    for (int i = 0; i < n; ++i) {
      k += b;
      out.push_back(k);
    }
  }
  return out;
}

// A series selector with only equality matchers ("up{job=\"a\"}") as labels.
Result<Labels> selector_labels(const std::string& s) {
  promql::ParseError pe;
  auto e = promql::parse(s, &pe);
  if (!e) return make_error("bad series '" + s + "': " + pe.formatted);
  if ((*e)->kind != promql::ExprKind::VectorSelector)
    return make_error("bad series '" + s + "': not a series selector");
  Labels ls;
  for (const auto& m : (*e)->matchers) {
    if (m.type != MatchType::Equal) return make_error("bad series '" + s + "': only = matchers");
    if (!m.value.empty()) promql::set_label(ls, m.name, m.value);
  }
  return ls;
}

std::string format_value(double v) { return promql::fn::format_float(v); }

// promtool reads test files strictly (yaml.UnmarshalStrict): a misspelt key
// is an error, never a test silently skipped. Every unknown key, with its
// position.
void check_keys(const YAML::Node& n, std::initializer_list<std::string_view> known,
                std::string_view what, const std::string& file, std::vector<std::string>& errors) {
  if (!n.IsMap()) return;
  for (const auto& kv : n) {
    std::string k = kv.first.Scalar();
    if (std::find(known.begin(), known.end(), k) != known.end()) continue;
    errors.push_back(file + ":" + std::to_string(kv.first.Mark().line + 1) + ":" +
                     std::to_string(kv.first.Mark().column + 1) + ": unknown field '" + k +
                     "' in " + std::string(what));
  }
}

void check_test_file_keys(const YAML::Node& root, const std::string& file,
                          std::vector<std::string>& errors) {
  check_keys(root, {"rule_files", "evaluation_interval", "group_eval_order", "tests"}, "test file",
             file, errors);
  for (const auto& t : root["tests"]) {
    check_keys(t,
               {"interval", "input_series", "alert_rule_test", "promql_expr_test",
                "external_labels", "external_url", "name"},
               "test", file, errors);
    for (const auto& s : t["input_series"])
      check_keys(s, {"series", "values"}, "series", file, errors);
    for (const auto& a : t["alert_rule_test"]) {
      check_keys(a, {"eval_time", "alertname", "exp_alerts"}, "alert_rule_test", file, errors);
      for (const auto& e : a["exp_alerts"])
        check_keys(e, {"exp_labels", "exp_annotations"}, "exp_alerts", file, errors);
    }
    for (const auto& p : t["promql_expr_test"]) {
      check_keys(p, {"expr", "eval_time", "exp_samples"}, "promql_expr_test", file, errors);
      for (const auto& e : p["exp_samples"])
        check_keys(e, {"labels", "value"}, "exp_samples", file, errors);
    }
  }
}

// promtool's group_eval_order: listed groups in that order, the others
// (position 0, as promtool gives them) where a stable sort leaves them, in
// file order. Returns group indices.
Result<std::vector<size_t>> group_order(const YAML::Node& order,
                                        const std::vector<GroupSpec>& groups) {
  std::map<std::string, size_t> pos;
  for (const auto& n : order) {
    std::string name = n.as<std::string>();
    if (!pos.emplace(name, pos.size()).second)
      return make_error("group name repeated in evaluation order: " + name);
  }
  std::vector<size_t> idx(groups.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  auto key = [&](size_t i) {
    auto it = pos.find(groups[i].name);
    return it == pos.end() ? size_t{0} : it->second;
  };
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  return idx;
}

struct Expected {
  Labels labels, annotations;
  bool operator<(const Expected& o) const {
    return std::tie(labels, annotations) < std::tie(o.labels, o.annotations);
  }
  bool operator==(const Expected& o) const = default;
};

std::string show(const std::vector<Expected>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) {
    s += "\n        " + std::to_string(i) + ": Labels:" + promql::labels_string(v[i].labels) +
         " Annotations:" + promql::labels_string(v[i].annotations);
  }
  return s + (v.empty() ? "]" : "\n      ]");
}

}  // namespace

Result<bool> run_rule_tests(const std::string& file, std::ostream& out, std::ostream& err) {
  // As promtool: the header first, whatever follows.
  out << "Unit Testing:  " << file << "\n";
  YAML::Node root;
  try {
    root = YAML::LoadFile(file);
  } catch (const YAML::Exception& e) {
    return make_error(file + ": " + e.what());
  }
  std::string dir = file.find('/') == std::string::npos ? "." : file.substr(0, file.rfind('/'));
  try {
    std::vector<std::string> errors;
    check_test_file_keys(root, file, errors);
    if (!errors.empty()) {
      std::string all;
      for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
      return make_error(all);
    }
    auto eval_iv = duration(root["evaluation_interval"], 60'000);
    if (!eval_iv) return make_error(file + ": evaluation_interval: " + eval_iv.error().message);
    // promtool globs each pattern against the test file's directory and
    // warns about one that matches nothing.
    std::vector<std::string> patterns;
    for (const auto& f : root["rule_files"]) {
      std::string pat = f.as<std::string>();
      std::string full = !pat.empty() && pat[0] != '/' && dir != "." ? dir + "/" + pat : pat;
      glob_t g{};
      int rc = ::glob(full.c_str(), 0, nullptr, &g);
      if (rc == 0)
        for (size_t i = 0; i < g.gl_pathc; ++i) patterns.emplace_back(g.gl_pathv[i]);
      else
        err << "  WARNING: no file match pattern " << full << "\n";
      globfree(&g);
    }
    auto groups = load_rule_files(patterns, "", errors);
    auto v = validate_groups(groups);
    errors.insert(errors.end(), v.begin(), v.end());
    if (!errors.empty()) {
      std::string all;
      for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
      return make_error(all);
    }
    auto order = group_order(root["group_eval_order"], groups);
    if (!order) return make_error(file + ": " + order.error().message);
    std::vector<std::string> failures;
    size_t cases = 0;
    int index = 0;
    for (const auto& t : root["tests"]) {
      std::string tname = t["name"] ? t["name"].as<std::string>() : "#" + std::to_string(index);
      ++index;
      auto series_iv = duration(t["interval"], *eval_iv);
      if (!series_iv)
        return make_error(file + ": test " + tname + ": " + series_iv.error().message);
      SeriesStore store;
      for (const auto& s : t["input_series"]) {
        auto ls = selector_labels(s["series"].as<std::string>());
        if (!ls) return make_error(file + ": test " + tname + ": " + ls.error().message);
        auto vals = expand(s["values"] ? s["values"].as<std::string>() : "");
        if (!vals) return make_error(file + ": test " + tname + ": " + vals.error().message);
        for (size_t i = 0; i < vals->size(); ++i)
          if ((*vals)[i]) store.put(*ls, static_cast<int64_t>(i) * *series_iv, *(*vals)[i]);
      }
      EngineOptions o;
      o.restore_for_state = false;  // as promtool: restored from the start
      for (const auto& kv : t["external_labels"])
        o.external_labels.push_back({kv.first.as<std::string>(), kv.second.as<std::string>()});
      std::sort(o.external_labels.begin(), o.external_labels.end());
      if (t["external_url"]) o.external_url = t["external_url"].as<std::string>();
      RuleEngine eng(groups, o);

      // Alert checks by evaluation time.
      std::multimap<int64_t, YAML::Node> alert_tests;
      int64_t maxt = 0;
      for (const auto& a : t["alert_rule_test"]) {
        auto et = duration(a["eval_time"], 0);
        if (!et) return make_error(file + ": test " + tname + ": eval_time: " + et.error().message);
        alert_tests.emplace(*et, a);
        maxt = std::max(maxt, *et);
      }
      for (const auto& p : t["promql_expr_test"]) {
        auto et = duration(p["eval_time"], 0);
        if (!et) return make_error(file + ": test " + tname + ": eval_time: " + et.error().message);
        maxt = std::max(maxt, *et);
      }
      std::vector<OutgoingAlert> notify;
      for (int64_t ts = 0; ts <= maxt; ts += *eval_iv) {
        for (size_t g : *order) eng.eval_group(g, store, ts, store, notify);
        auto [lo, hi] = alert_tests.equal_range(ts);
        for (auto it = lo; it != hi; ++it) {
          const YAML::Node& a = it->second;
          std::string name = a["alertname"].as<std::string>();
          std::vector<Expected> got, want;
          for (const auto& g : groups)
            for (const auto& r : g.rules) {
              if (r.alert != name) continue;
              for (const auto& al : eng.alerts(g.name, name))
                if (al.state == AlertState::Firing) got.push_back({al.labels, al.annotations});
            }
          std::sort(got.begin(), got.end());
          got.erase(std::unique(got.begin(), got.end()), got.end());
          for (const auto& e : a["exp_alerts"]) {
            Expected x;
            for (const auto& kv : e["exp_labels"])
              promql::set_label(x.labels, kv.first.as<std::string>(), kv.second.as<std::string>());
            promql::set_label(x.labels, "alertname", name);
            for (const auto& kv : e["exp_annotations"])
              promql::set_label(x.annotations, kv.first.as<std::string>(),
                                kv.second.as<std::string>());
            want.push_back(std::move(x));
          }
          std::sort(want.begin(), want.end());
          ++cases;
          if (got != want)
            failures.push_back("    alertname: " + name + ", time: " +
                               promql::fn::format_float(static_cast<double>(ts) / 60000) +
                               "m,\n        exp:" + show(want) + ",\n        got:" + show(got));
        }
      }
      for (const auto& p : t["promql_expr_test"]) {
        std::string expr = p["expr"].as<std::string>();
        int64_t et = *duration(p["eval_time"], 0);
        ++cases;
        promql::Engine qe(store);
        auto res = qe.instant(expr, et);
        std::vector<std::pair<Labels, double>> got, want;
        if (!res.ok()) {
          failures.push_back("    expr: \"" + expr + "\": " + res.message);
          continue;
        }
        if (res.value.type == promql::ValueType::Vector) {
          for (const auto& s : res.value.vec)
            got.emplace_back(s.labels ? *s.labels : Labels{}, s.v);
        } else if (res.value.type == promql::ValueType::Scalar) {
          got.emplace_back(Labels{}, res.value.scalar);
        }
        for (const auto& s : p["exp_samples"]) {
          auto ls = selector_labels(s["labels"] ? s["labels"].as<std::string>() : "{}");
          if (!ls) return make_error(file + ": test " + tname + ": " + ls.error().message);
          want.emplace_back(*ls, s["value"].as<double>());
        }
        std::sort(got.begin(), got.end());
        std::sort(want.begin(), want.end());
        bool same = got.size() == want.size();
        for (size_t i = 0; same && i < got.size(); ++i)
          same = got[i].first == want[i].first &&
                 (got[i].second == want[i].second ||
                  (std::isnan(got[i].second) && std::isnan(want[i].second)));
        if (!same) {
          std::string g, w;
          for (const auto& [ls, v] : want)
            w += "\n          " + promql::labels_string(ls) + " " + format_value(v);
          for (const auto& [ls, v] : got)
            g += "\n          " + promql::labels_string(ls) + " " + format_value(v);
          failures.push_back("    expr: \"" + expr + "\", time: " +
                             promql::fn::format_float(static_cast<double>(et) / 60000) +
                             "m,\n        exp:" + (w.empty() ? " nil" : w) +
                             "\n        got:" + (g.empty() ? " nil" : g));
        }
      }
    }
    if (failures.empty()) {
      // promtool 2.42 passes a file without test cases too, with the same
      // output; the warning goes to `err`, where it does not change that.
      if (cases == 0) err << "  WARNING: no test cases in " << file << "\n";
      out << "  SUCCESS\n\n";
      return true;
    }
    out << "  FAILED:\n";
    for (const auto& f : failures) out << f << "\n\n";
    return false;
  } catch (const YAML::Exception& e) {
    return make_error(file + ": " + e.what());
  }
}

}  // namespace moni::rules
