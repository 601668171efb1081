#include "yaml_rules.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <moni/duration.hpp>
#include <moni/text_format.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "json_format.hpp"
#include "promql/parser.hpp"

namespace moni::rules {

namespace {

// Collects every error of a file, each with its position.
struct Loader {
  std::string file;
  std::vector<std::pair<SourcePos, std::string>> errors;

  SourcePos pos(const YAML::Node& n) const {
    YAML::Mark m = n.Mark();
    if (m.line < 0) return SourcePos{file, 0, 0};
    return SourcePos{file, static_cast<uint32_t>(m.line + 1), static_cast<uint32_t>(m.column + 1)};
  }
  void error(const YAML::Node& at, const std::string& msg) { errors.emplace_back(pos(at), msg); }

  // Checks that `map` is a mapping with unique keys out of `known`; returns
  // false (after reporting) when it is no mapping.
  bool check_keys(const YAML::Node& map, std::string_view what,
                  std::initializer_list<std::string_view> known) {
    if (!map.IsMap()) {
      error(map, std::string(what) + " must be a mapping");
      return false;
    }
    std::set<std::string> seen;
    for (const auto& kv : map) {
      const YAML::Node& k = kv.first;
      std::string key = k.IsScalar() ? k.Scalar() : std::string();
      if (!seen.insert(key).second) error(k, "mapping key \"" + key + "\" already defined");
      bool ok = false;
      for (auto s : known) ok |= s == key;
      if (!ok) error(k, "field " + key + " not found in " + std::string(what));
    }
    return true;
  }

  // A scalar as a string; null reads as empty.
  std::optional<std::string> scalar(const YAML::Node& n, std::string_view key) {
    if (n.IsNull()) return std::string();
    if (!n.IsScalar()) {
      error(n, std::string(key) + " must be a string");
      return std::nullopt;
    }
    return n.Scalar();
  }

  int64_t duration(const YAML::Node& n, std::string_view key) {
    auto s = scalar(n, key);
    if (!s || s->empty()) return 0;
    auto d = parse_duration_ms(*s);
    if (!d) {
      error(n, std::string(key) + ": " + d.error().message);
      return 0;
    }
    return *d;
  }

  LabelPairs pairs(const YAML::Node& n, std::string_view key, bool labels) {
    LabelPairs out;
    if (n.IsNull()) return out;
    if (!n.IsMap()) {
      error(n, std::string(key) + " must be a mapping of names to strings");
      return out;
    }
    std::set<std::string> seen;
    for (const auto& kv : n) {
      std::string name = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
      if (!seen.insert(name).second)
        error(kv.first, "mapping key \"" + name + "\" already defined");
      if (!text::valid_label_name(name) || (labels && name == kMetricNameLabel))
        error(kv.first,
              std::string(labels ? "invalid label name: " : "invalid annotation name: ") + name);
      auto v = scalar(kv.second, name);
      if (v) out.emplace_back(name, *v);
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void rule(const YAML::Node& n, GroupSpec& g, size_t index) {
    if (!check_keys(n, "rulefmt.RuleNode",
                    {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"}))
      return;
    RuleSpec r;
    r.pos = pos(n);
    std::string where = "group \"" + g.name + "\", rule " + std::to_string(index + 1);
    if (auto v = n["record"]) r.record = scalar(v, "record").value_or("");
    if (auto v = n["alert"]) r.alert = scalar(v, "alert").value_or("");
    if (r.record.empty() && r.alert.empty())
      error(n, where + ": one of 'record' or 'alert' must be set");
    if (!r.record.empty() && !r.alert.empty())
      error(n, where + ": only one of 'record' and 'alert' must be set");
    if (!r.record.empty() && !text::valid_metric_name(r.record))
      error(n["record"], where + ": invalid recording rule name: " + r.record);
    YAML::Node expr = n["expr"];
    if (expr) {
      r.expr = scalar(expr, "expr").value_or("");
      r.expr_pos = pos(expr);
    }
    if (r.expr.empty()) {
      error(expr ? expr : n, where + ": field 'expr' must be set in rule");
    } else {
      promql::ParseError pe;
      if (auto e = promql::parse(r.expr, &pe); !e)
        error(expr, where + ": could not parse expression: " +
                        (pe.formatted.empty() ? e.error().message : pe.formatted));
    }
    if (auto v = n["for"]) r.for_ms = duration(v, "for");
    if (auto v = n["keep_firing_for"]) r.keep_firing_for_ms = duration(v, "keep_firing_for");
    if (auto v = n["labels"]) r.labels = pairs(v, "labels", true);
    if (auto v = n["annotations"]) r.annotations = pairs(v, "annotations", false);
    if (!r.record.empty()) {
      if (n["annotations"] && !r.annotations.empty())
        error(n["annotations"], where + ": invalid field 'annotations' in recording rule");
      if (r.for_ms) error(n["for"], where + ": invalid field 'for' in recording rule");
      if (r.keep_firing_for_ms)
        error(n["keep_firing_for"], where + ": invalid field 'keep_firing_for' in recording rule");
    }
    g.rules.push_back(std::move(r));
  }

  std::vector<GroupSpec> file_root(const YAML::Node& root) {
    std::vector<GroupSpec> out;
    if (!root || root.IsNull()) return out;  // an empty file has no groups
    if (!check_keys(root, "rulefmt.RuleGroups", {"groups"})) return out;
    YAML::Node groups = root["groups"];
    if (!groups || groups.IsNull()) return out;
    if (!groups.IsSequence()) {
      error(groups, "groups must be a sequence");
      return out;
    }
    std::map<std::string, SourcePos> names;
    for (const auto& gn : groups) {
      if (!check_keys(gn, "rulefmt.RuleGroup", {"name", "interval", "limit", "rules"})) continue;
      GroupSpec g;
      g.pos = pos(gn);
      if (auto v = gn["name"]) g.name = scalar(v, "name").value_or("");
      if (g.name.empty()) {
        error(gn, "Groupname must not be empty");
      } else if (auto [it, fresh] = names.emplace(g.name, g.pos); !fresh) {
        error(gn["name"], "groupname: \"" + g.name + "\" is repeated in the same file (first at " +
                              it->second.str() + ")");
      }
      if (auto v = gn["interval"]) g.interval_ms = duration(v, "interval");
      if (auto v = gn["limit"]) {
        auto s = scalar(v, "limit").value_or("");
        try {
          size_t used = 0;
          g.limit = s.empty() ? 0 : std::stoll(s, &used);
          if (used != s.size() || g.limit < 0) throw std::invalid_argument(s);
        } catch (const std::exception&) {
          error(v, "limit must be an integer >= 0 (got \"" + s + "\")");
        }
      }
      YAML::Node rules = gn["rules"];
      if (rules && !rules.IsNull()) {
        if (!rules.IsSequence()) {
          error(rules, "rules must be a sequence");
        } else {
          size_t i = 0;
          for (const auto& rn : rules) rule(rn, g, i++);
        }
      }
      out.push_back(std::move(g));
    }
    return out;
  }
};

// TOML basic string with escapes (always valid, whatever the text holds):
// JSON's escapes are TOML's too, save that TOML also wants DEL escaped.
std::string toml_string(std::string_view s) {
  std::string out;
  prom_api::append_json_string(out, s);
  for (size_t i = 0; (i = out.find('\x7f', i)) != std::string::npos;) out.replace(i, 1, "\\u007F");
  return out;
}

std::string toml_key(std::string_view k) {
  bool bare = !k.empty();
  for (char c : k) bare &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  return bare ? std::string(k) : toml_string(k);
}

}  // namespace

Result<std::vector<GroupSpec>> parse_prometheus_rules(std::string_view text,
                                                      const std::string& file) {
  Loader l{file, {}};
  std::vector<GroupSpec> groups;
  try {
    YAML::Node root = YAML::Load(std::string(text));
    groups = l.file_root(root);
  } catch (const YAML::Exception& e) {
    SourcePos p{file, 0, 0};
    if (e.mark.line >= 0)
      p = SourcePos{file, static_cast<uint32_t>(e.mark.line + 1),
                    static_cast<uint32_t>(e.mark.column + 1)};
    l.errors.emplace_back(p, e.msg);
  }
  if (!l.errors.empty()) {
    // In file order, whatever order the checks ran in.
    std::stable_sort(l.errors.begin(), l.errors.end(), [](const auto& a, const auto& b) {
      return std::pair(a.first.line, a.first.column) < std::pair(b.first.line, b.first.column);
    });
    std::string all;
    for (const auto& [p, m] : l.errors) all += (all.empty() ? "" : "\n") + p.str() + ": " + m;
    return make_error(std::move(all));
  }
  return groups;
}

Result<std::vector<GroupSpec>> load_prometheus_rule_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(path + ": cannot open rule file");
  std::stringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error(path + ": cannot read rule file");
  return parse_prometheus_rules(ss.str(), path);
}

std::string to_toml(const std::vector<GroupSpec>& groups) {
  std::string out;
  for (const auto& g : groups) {
    if (!out.empty()) out += "\n";
    out += "[[group]]\nname = " + toml_string(g.name) + "\n";
    if (g.interval_ms) out += "interval = \"" + format_duration_ms(g.interval_ms) + "\"\n";
    if (g.limit) out += "limit = " + std::to_string(g.limit) + "\n";
    for (const auto& r : g.rules) {
      out += "\n[[group.rule]]\n";
      if (!r.record.empty()) out += "record = " + toml_string(r.record) + "\n";
      if (!r.alert.empty()) out += "alert = " + toml_string(r.alert) + "\n";
      out += "expr = " + toml_string(r.expr) + "\n";
      if (r.for_ms) out += "for = \"" + format_duration_ms(r.for_ms) + "\"\n";
      if (r.keep_firing_for_ms)
        out += "keep_firing_for = \"" + format_duration_ms(r.keep_firing_for_ms) + "\"\n";
      auto table = [&](const char* name, const LabelPairs& p) {
        if (p.empty()) return;
        out += std::string("[group.rule.") + name + "]\n";
        for (const auto& [k, v] : p) out += toml_key(k) + " = " + toml_string(v) + "\n";
      };
      table("labels", r.labels);
      table("annotations", r.annotations);
    }
  }
  return out;
}

std::string to_yaml(const std::vector<GroupSpec>& groups) {
  YAML::Emitter e;
  e << YAML::BeginMap << YAML::Key << "groups" << YAML::Value << YAML::BeginSeq;
  for (const auto& g : groups) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << YAML::DoubleQuoted << g.name;
    if (g.interval_ms)
      e << YAML::Key << "interval" << YAML::Value << format_duration_ms(g.interval_ms);
    if (g.limit) e << YAML::Key << "limit" << YAML::Value << g.limit;
    e << YAML::Key << "rules" << YAML::Value << YAML::BeginSeq;
    for (const auto& r : g.rules) {
      e << YAML::BeginMap;
      if (!r.record.empty()) e << YAML::Key << "record" << YAML::Value << r.record;
      if (!r.alert.empty()) e << YAML::Key << "alert" << YAML::Value << r.alert;
      e << YAML::Key << "expr" << YAML::Value << YAML::DoubleQuoted << r.expr;
      if (r.for_ms) e << YAML::Key << "for" << YAML::Value << format_duration_ms(r.for_ms);
      if (r.keep_firing_for_ms)
        e << YAML::Key << "keep_firing_for" << YAML::Value
          << format_duration_ms(r.keep_firing_for_ms);
      auto map = [&](const char* name, const LabelPairs& p) {
        if (p.empty()) return;
        e << YAML::Key << name << YAML::Value << YAML::BeginMap;
        for (const auto& [k, v] : p) e << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
        e << YAML::EndMap;
      };
      map("labels", r.labels);
      map("annotations", r.annotations);
      e << YAML::EndMap;
    }
    e << YAML::EndSeq << YAML::EndMap;
  }
  e << YAML::EndSeq << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

Result<void> run_rules_import(std::span<const std::string_view> args, std::ostream& out) {
  std::string in_path, out_path;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" || args[i] == "-o") {
      if (i + 1 >= args.size()) return make_error("rules import: --out needs a file name");
      out_path = args[++i];
    } else if (args[i].starts_with("--out=")) {
      out_path = args[i].substr(6);
    } else if (args[i].starts_with("-") && args[i] != "-") {
      return make_error("rules import: unknown option '" + std::string(args[i]) +
                        "' (usage: moni rules import FILE.yml [--out FILE.toml])");
    } else if (in_path.empty()) {
      in_path = args[i];
    } else {
      return make_error(
          "rules import: one input file only (usage: moni rules import FILE.yml "
          "[--out FILE.toml])");
    }
  }
  if (in_path.empty())
    return make_error(
        "rules import: missing input file (usage: moni rules import FILE.yml "
        "[--out FILE.toml])");
  auto groups = load_prometheus_rule_file(in_path);
  if (!groups) return groups.error();
  std::string toml =
      "# Converted from " + in_path + " by moni rules import.\n\n" + to_toml(*groups);
  if (out_path.empty()) {
    out << toml;
    out.flush();
    if (!out) return make_error("rules import: cannot write the output");
    return {};
  }
  std::ofstream f(out_path, std::ios::binary | std::ios::trunc);
  f << toml;
  f.close();
  if (!f) return make_error("rules import: cannot write " + out_path);
  return {};
}

}  // namespace moni::rules
