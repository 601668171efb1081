// Every PromQL expression of the shipped Grafana dashboards
// (packaging/grafana/dashboards/*.json) must be in the differential corpus
// (tests/data/promql/corpus.txt), with the dashboard variables substituted as
// Grafana substitutes them, so that promql_diff_test compares it with
// Prometheus 2.42. A new panel whose expression is missing fails here and the
// failure prints the corpus lines to add.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "promql/parser.hpp"

namespace {

using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Grafana's Prometheus data source escapes values of multi-value/"include
// All" variables for use inside a regex matcher (prometheusSpecialRegexEscape):
// a backslash becomes four, each regex metacharacter gets two backslashes
// (the query text holds a PromQL string, so the regex sees one).
std::string regex_escape(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\\\\\";
    else if (std::string_view("$^*{}[]'+?.()|").find(c) != std::string_view::npos)
      out += std::string("\\\\") + c;
    else
      out += c;
  }
  return out;
}

// What a variable of a dashboard turns into: "All" gives the variable's
// allValue unescaped; selected values are escaped, and several are joined
// as "(a|b)" (Grafana's interpolateQueryExpr).
std::string variable_value(const json& var, const std::vector<std::string>* selected) {
  if (!selected) return var.value("allValue", std::string(".*"));
  std::vector<std::string> esc;
  for (const auto& s : *selected) esc.push_back(regex_escape(s));
  if (esc.size() == 1) return esc[0];
  std::string out = "(";
  for (size_t i = 0; i < esc.size(); ++i) out += (i ? "|" : "") + esc[i];
  return out + ")";
}

// One way Grafana would send a dashboard's queries: a time range (which fixes
// the built-in interval variables) and the variables' selections (none:
// "All"). The built-ins follow Grafana's backend (pkg/tsdb/prometheus):
// $__rate_interval = max($__interval + step, 4 * step), printed as a Go
// duration ("1m0s"); $__range = "<seconds>s". With the data source's 15 s
// scrape interval, a 1 h panel has $__interval = step = 15 s, a 24 h panel 1 m.
struct Variant {
  std::string name;
  std::map<std::string, std::string> builtins;
  std::map<std::string, std::vector<std::string>> selected;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"last 1 h, all values",
       {{"__rate_interval", "1m0s"}, {"__range", "3600s"}, {"__interval", "15s"}},
       {}},
      {"last 24 h, selected values",
       {{"__rate_interval", "4m0s"}, {"__range", "86400s"}, {"__interval", "1m"}},
       {{"instance", {"a:9100", "b:9100"}},
        {"name", {"worker-1"}},
        {"image", {"nginx:1.25", "example.org/app/worker:2.0"}},
        {"collector", {"cgroup"}}}},
  };
  return v;
}

// Replaces $name and ${name} for every variable; longest names first so
// $__range does not eat the prefix of a longer name.
std::string substitute(std::string expr, const std::map<std::string, std::string>& values) {
  std::vector<std::pair<std::string, std::string>> order(values.begin(), values.end());
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [name, value] : order)
    for (const std::string& from : {"${" + name + "}", "$" + name})
      for (size_t pos; (pos = expr.find(from)) != std::string::npos;)
        expr.replace(pos, from.size(), value);
  return expr;
}

// Names of the $name / ${name} references in an expression.
std::vector<std::string> variable_names(const std::string& expr) {
  std::vector<std::string> out;
  for (size_t i = 0; i < expr.size(); ++i) {
    if (expr[i] != '$') continue;
    size_t j = i + 1 + (i + 1 < expr.size() && expr[i + 1] == '{');
    size_t k = j;
    while (k < expr.size() && (std::isalnum(static_cast<unsigned char>(expr[k])) || expr[k] == '_'))
      ++k;
    out.push_back(expr.substr(j, k - j));
  }
  return out;
}

struct DashboardExpr {
  std::string file, panel, expr;
};

void collect_exprs(const json& panels, const std::string& file, std::vector<DashboardExpr>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collect_exprs(p["panels"], file, out);  // collapsed rows
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"])
      if (t.contains("expr")) out.push_back({file, p.value("title", ""), t["expr"]});
  }
}

std::set<std::string> corpus() {
  std::set<std::string> out;
  std::ifstream f(std::string(MONI_TEST_DATA_DIR) + "/promql/corpus.txt");
  for (std::string line; std::getline(f, line);)
    if (!line.empty() && line[0] != '#') out.insert(line);
  return out;
}

std::vector<std::filesystem::path> dashboard_files() {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(std::string(MONI_SOURCE_DIR) +
                                                           "/packaging/grafana/dashboards"))
    if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(DashboardExprs, EveryExpressionIsInTheDifferentialCorpus) {
  const auto in_corpus = corpus();
  ASSERT_GE(in_corpus.size(), 300u);
  std::vector<std::string> missing;
  size_t checked = 0, exprs = 0;
  for (const auto& path : dashboard_files()) {
    json d = json::parse(read_file(path.string()));
    const std::string file = path.filename().string();
    std::map<std::string, json> vars;
    for (const auto& v : d["templating"]["list"]) vars[v["name"]] = v;
    std::vector<DashboardExpr> found;
    collect_exprs(d["panels"], file, found);
    EXPECT_FALSE(found.empty()) << file << " has no expressions";
    exprs += found.size();
    for (const auto& de : found) {
      // Every variable the expression uses is defined (or a built-in).
      for (const std::string& name : variable_names(de.expr)) {
        EXPECT_TRUE(vars.count(name) || variants()[0].builtins.count(name))
            << file << " panel '" << de.panel << "' uses undefined variable $" << name;
      }
      for (const auto& variant : variants()) {
        std::map<std::string, std::string> values = variant.builtins;
        for (const auto& [name, var] : vars) {
          auto sel = variant.selected.find(name);
          values[name] =
              variable_value(var, sel == variant.selected.end() ? nullptr : &sel->second);
        }
        std::string q = substitute(de.expr, values);
        ++checked;
        moni::promql::ParseError err;
        EXPECT_TRUE(moni::promql::parse(q, &err).ok())
            << file << " panel '" << de.panel << "': " << q << ": " << err.formatted;
        if (!in_corpus.count(q) && std::find(missing.begin(), missing.end(), q) == missing.end())
          missing.push_back(q);
      }
    }
  }
  EXPECT_GE(exprs, 60u) << "fewer dashboard expressions than the three dashboards have";
  std::string lines;
  for (const auto& m : missing) lines += m + "\n";
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << checked
                               << " substituted dashboard expressions are not in "
                                  "tests/data/promql/corpus.txt; add these lines:\n"
                               << lines;
}

TEST(DashboardExprs, DashboardsAreWellFormed) {
  std::set<std::string> uids;
  size_t n = 0;
  for (const auto& path : dashboard_files()) {
    ++n;
    const std::string file = path.filename().string();
    json d = json::parse(read_file(path.string()), nullptr, false);
    ASSERT_FALSE(d.is_discarded()) << file << " is not JSON";
    // The grafana output plugin uploads them by uid (stable across versions)
    // and points their data source references at the data source it manages.
    ASSERT_TRUE(d.contains("uid") && d["uid"].is_string()) << file;
    EXPECT_TRUE(uids.insert(d["uid"].get<std::string>()).second) << file << ": duplicate uid";
    EXPECT_LE(d["uid"].get<std::string>().size(), 40u) << file << ": Grafana allows 40 characters";
    EXPECT_FALSE(d.contains("id") && !d["id"].is_null())
        << file << ": a numeric id must not be set";
    EXPECT_TRUE(d.contains("title")) << file;
    std::vector<DashboardExpr> found;
    collect_exprs(d["panels"], file, found);
    std::set<int> ids;
    std::function<void(const json&)> check = [&](const json& panels) {
      for (const auto& p : panels) {
        EXPECT_TRUE(ids.insert(p.value("id", -1)).second)
            << file << ": duplicate panel id in '" << p.value("title", "") << "'";
        if (p.contains("datasource")) {
          EXPECT_EQ(p["datasource"], json({{"type", "prometheus"}, {"uid", "moni"}}))
              << file << " panel '" << p.value("title", "") << "'";
        }
        if (p.contains("panels")) check(p["panels"]);
      }
    };
    check(d["panels"]);
  }
  EXPECT_GE(n, 3u) << "host overview, containers and moni health";
}

}  // namespace
