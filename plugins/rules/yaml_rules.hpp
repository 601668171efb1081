// Prometheus YAML rule files: loading them into GroupSpecs (with
// file:line:column errors and Prometheus's validation), converting GroupSpecs
// to moni's TOML rule-file form, and the `moni rules import` subcommand.
#pragma once

#include <moni/result.hpp>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rule_spec.hpp"

namespace moni::rules {

/// Loads a Prometheus rule file (groups: name, interval, limit, rules:
/// record|alert, expr, for, keep_firing_for, labels, annotations). Unknown
/// keys, duplicate keys and group names, and unparsable expressions are
/// errors, all reported at once, one per line, as "file:line:col: message".
Result<std::vector<GroupSpec>> load_prometheus_rule_file(const std::string& path);
/// The same from text; `file` names it in positions and messages.
Result<std::vector<GroupSpec>> parse_prometheus_rules(std::string_view text,
                                                      const std::string& file);

/// moni's TOML rule-file form: [[group]] tables (name, interval, limit) each
/// followed by [[group.rule]] tables (record|alert, expr, for,
/// keep_firing_for, [group.rule.labels], [group.rule.annotations]).
std::string to_toml(const std::vector<GroupSpec>& groups);

/// Prometheus's YAML form of the same groups (for promtool and Prometheus).
std::string to_yaml(const std::vector<GroupSpec>& groups);

/// `moni rules import FILE [--out FILE]`: `args` are those after "import".
/// Writes the TOML to `out`, or to the --out file.
Result<void> run_rules_import(std::span<const std::string_view> args, std::ostream& out);

}  // namespace moni::rules
