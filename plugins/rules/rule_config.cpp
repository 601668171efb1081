#include "rule_config.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <map>
#include <set>

#include "alert_template.hpp"
#include "promql/parser.hpp"
#include "promql/value.hpp"
#if defined(MONI_RULES_HAVE_YAML)
#include "yaml_rules.hpp"
#endif

namespace moni::rules {

namespace {

LabelPairs read_pairs(ConfigReader& r, std::string_view key) {
  LabelPairs out;
  ConfigView t = r.raw(key);
  if (!t.present()) return out;
  if (t.type() != MONI_CFG_TABLE) {
    r.error(t, std::string(key) + " must be a table of strings (e.g. { severity = \"page\" })");
    return out;
  }
  for (size_t i = 0; i < t.size(); ++i) {
    std::string_view k;
    ConfigView v = t.at(i, &k);
    if (v.type() != MONI_CFG_STRING) {
      r.error(v, std::string(key) + "." + std::string(k) + " must be a string, got " +
                     std::string(config_type_name(v.type())));
      continue;
    }
    out.emplace_back(std::string(k), std::string(v.as_string()));
  }
  return out;
}

bool valid_metric_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string pos_of(const SourcePos& p) {
  std::string s = p.str();
  return s.empty() ? std::string() : s + ": ";
}

// The position of a PromQL parse error: the expr value's own position moved
// by the error's byte offset when the expression is on one line.
SourcePos expr_error_pos(const RuleSpec& r, size_t offset) {
  if (r.expr_pos.line == 0) return r.pos;
  SourcePos p = r.expr_pos;
  if (r.expr.find('\n') == std::string::npos) p.column += static_cast<uint32_t>(1 + offset);
  return p;
}

}  // namespace

SourcePos parse_where(const std::string& where) {
  SourcePos p;
  // file:line:col, where the file itself may contain ':'.
  auto c2 = where.rfind(':');
  if (c2 == std::string::npos || c2 == 0) {
    p.file = where;
    return p;
  }
  auto c1 = where.rfind(':', c2 - 1);
  if (c1 == std::string::npos) {
    p.file = where;
    return p;
  }
  try {
    p.line = static_cast<uint32_t>(std::stoul(where.substr(c1 + 1, c2 - c1 - 1)));
    p.column = static_cast<uint32_t>(std::stoul(where.substr(c2 + 1)));
    p.file = where.substr(0, c1);
  } catch (const std::exception&) {
    p = SourcePos{where, 0, 0};
  }
  return p;
}

std::vector<GroupSpec> read_groups(ConfigReader& r, std::string_view key) {
  std::vector<GroupSpec> out;
  for (auto& g : r.tables(key)) {
    GroupSpec gs;
    gs.pos = parse_where(g.table_view().where());
    gs.name = g.required_string("name");
    gs.interval_ms = g.duration_ms("interval", 0);
    if (g.has("interval") && gs.interval_ms <= 0)
      g.error(g.table_view().get("interval"), "interval must be > 0");
    gs.limit = g.integer("limit", 0, 0);
    for (auto& rr : g.tables("rule")) {
      RuleSpec rs;
      rs.pos = parse_where(rr.table_view().where());
      rs.record = rr.string("record", "");
      rs.alert = rr.string("alert", "");
      if (rr.has("expr")) rs.expr_pos = parse_where(rr.table_view().get("expr").where());
      rs.expr = rr.string("expr", "");
      rs.for_ms = rr.duration_ms("for", 0);
      rs.keep_firing_for_ms = rr.duration_ms("keep_firing_for", 0);
      rs.labels = read_pairs(rr, "labels");
      rs.annotations = read_pairs(rr, "annotations");
      gs.rules.push_back(std::move(rs));
    }
    out.push_back(std::move(gs));
  }
  return out;
}

std::vector<std::string> validate_groups(const std::vector<GroupSpec>& groups) {
  std::vector<std::string> errs;
  std::set<std::pair<std::string, std::string>> seen;  // (file, group name)
  for (const auto& g : groups) {
    std::string gp = pos_of(g.pos) + "rules: group \"" + g.name + "\": ";
    if (g.name.empty())
      errs.push_back(pos_of(g.pos) + "rules: a group's name must not be empty");
    else if (!seen.insert({g.pos.file, g.name}).second)
      errs.push_back(pos_of(g.pos) + "rules: group name \"" + g.name +
                     "\" is repeated in the same file");
    if (g.interval_ms < 0) errs.push_back(gp + "interval must be > 0");
    if (g.limit < 0) errs.push_back(gp + "limit must be >= 0");
    for (const auto& r : g.rules) {
      std::string name = r.record.empty() ? r.alert : r.record;
      std::string rp = pos_of(r.pos) + "rules: group \"" + g.name + "\": rule \"" + name + "\": ";
      if (r.record.empty() && r.alert.empty()) {
        errs.push_back(pos_of(r.pos) + "rules: group \"" + g.name +
                       "\": one of 'record' or 'alert' must be set");
        continue;
      }
      if (!r.record.empty() && !r.alert.empty())
        errs.push_back(rp + "only one of 'record' and 'alert' must be set");
      if (r.expr.empty()) {
        errs.push_back(rp + "field 'expr' must be set in rule");
      } else {
        promql::ParseError pe;
        auto e = promql::parse(r.expr, &pe);
        if (!e) {
          errs.push_back(pos_of(expr_error_pos(r, pe.pos)) + "rules: group \"" + g.name +
                         "\": rule \"" + name + "\": could not parse expression: " +
                         (pe.formatted.empty() ? e.error().message : pe.formatted));
        } else {
          auto t = (*e)->type();
          if (t != promql::ValueType::Vector && t != promql::ValueType::Scalar)
            errs.push_back(
                pos_of(r.expr_pos.line ? r.expr_pos : r.pos) + "rules: group \"" + g.name +
                "\": rule \"" + name +
                "\": the expression must evaluate to an instant vector or a scalar, "
                "not a " +
                (t == promql::ValueType::Matrix ? "range vector" : promql::value_type_name(t)));
        }
      }
      if (!r.record.empty()) {
        if (!r.annotations.empty())
          errs.push_back(rp + "invalid field 'annotations' in recording rule");
        if (r.for_ms != 0) errs.push_back(rp + "invalid field 'for' in recording rule");
        if (r.keep_firing_for_ms != 0)
          errs.push_back(rp + "invalid field 'keep_firing_for' in recording rule");
        if (!valid_metric_name(r.record))
          errs.push_back(rp + "invalid recording rule name: " + r.record);
      }
      if (r.for_ms < 0) errs.push_back(rp + "'for' must be >= 0");
      if (r.keep_firing_for_ms < 0) errs.push_back(rp + "'keep_firing_for' must be >= 0");
      for (const auto& [k, v] : r.labels) {
        if (!promql::valid_label_name(k) || k == "__name__")
          errs.push_back(rp + "invalid label name: " + k);
        if (!r.alert.empty()) {
          auto t = AlertTemplate::parse(v);
          if (!t)
            errs.push_back(rp + "label \"" + k + "\": template: __alert_" + r.alert + ":" +
                           t.error().message);
        }
      }
      for (const auto& [k, v] : r.annotations) {
        if (!promql::valid_label_name(k)) errs.push_back(rp + "invalid annotation name: " + k);
        auto t = AlertTemplate::parse(v);
        if (!t)
          errs.push_back(rp + "annotation \"" + k + "\": template: __alert_" + r.alert + ":" +
                         t.error().message);
      }
    }
  }
  return errs;
}

namespace {

// The files a rule_files pattern names: a glob's matches, or the path itself.
std::vector<std::string> expand_pattern(const std::string& pat, const std::string& base_dir) {
  std::string full =
      (!pat.empty() && pat[0] != '/' && !base_dir.empty()) ? base_dir + "/" + pat : pat;
  if (full.find_first_of("*?[") == std::string::npos) return {full};
  std::vector<std::string> files;
  glob_t g{};
  if (::glob(full.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) files.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  return files;
}

}  // namespace

std::string rule_files_stamp(const std::vector<std::string>& patterns,
                             const std::string& base_dir) {
  std::string out;
  for (const auto& pat : patterns)
    for (const auto& f : expand_pattern(pat, base_dir)) {
      out += f;
      struct stat st {};
      if (::stat(f.c_str(), &st) != 0) {
        out += "\n-\n";
        continue;
      }
      out += "\n" + std::to_string(st.st_ino) + " " + std::to_string(st.st_size) + " " +
             std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + "\n";
    }
  return out;
}

std::vector<GroupSpec> load_rule_files(const std::vector<std::string>& patterns,
                                       const std::string& base_dir,
                                       std::vector<std::string>& errors,
                                       const std::vector<std::string>* where) {
  std::vector<GroupSpec> out;
  std::set<std::string> loaded;
  for (size_t pi = 0; pi < patterns.size(); ++pi) {
    const std::string& pat = patterns[pi];
    std::vector<std::string> files = expand_pattern(pat, base_dir);
    if (files.size() == 1 && files[0].find_first_of("*?[") == std::string::npos) {
      struct stat st {};
      if (::stat(files[0].c_str(), &st) != 0) {
        std::string at = where && pi < where->size() && !(*where)[pi].empty() ? (*where)[pi] + ": "
                                                                              : std::string();
        errors.push_back(at + "rules: rule_files[" + std::to_string(pi) + "]: " + files[0] +
                         " does not exist");
        continue;
      }
    }
    for (const auto& f : files) {
      if (!loaded.insert(f).second) continue;
      bool yaml = f.ends_with(".yml") || f.ends_with(".yaml");
      if (yaml) {
#if defined(MONI_RULES_HAVE_YAML)
        auto r = load_prometheus_rule_file(f);
        if (!r) {
          errors.push_back(r.error().message);
          continue;
        }
        for (auto& g : *r) out.push_back(std::move(g));
#else
        errors.push_back(f +
                         ": rules: YAML rule files are not supported by this build; convert "
                         "the file to TOML [[group]] tables");
#endif
        continue;
      }
      auto gs = load_toml_rule_file(f, errors);
      for (auto& g : gs) out.push_back(std::move(g));
    }
  }
  return out;
}

}  // namespace moni::rules
