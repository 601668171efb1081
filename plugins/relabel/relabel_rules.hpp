// Prometheus relabeling (relabel_configs / metric_relabel_configs): rule
// parsing from TOML and application to one label set, with Prometheus's
// semantics (fully anchored RE2 regexes, $1 / ${1} / ${name} expansion,
// hashmod on MD5). Shared by the relabel processor and the scrape
// collector's metric_relabel_configs (one owner, compiled into both).
#pragma once

#include <moni/sdk.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace moni::relabel {

enum class Action {
  Replace,
  Keep,
  Drop,
  KeepEqual,
  DropEqual,
  HashMod,
  LabelMap,
  LabelDrop,
  LabelKeep,
  Lowercase,
  Uppercase
};

/// One relabel rule. Thread-safety: immutable after parsing; apply() is
/// const and may run on several threads.
struct Rule {
  Action action = Action::Replace;
  std::vector<std::string> source_labels;
  std::string separator = ";";
  std::string target_label;
  std::string regex_text = "(.*)";
  std::shared_ptr<re2::RE2> regex;  // "^(?:regex_text)$"
  uint64_t modulus = 0;
  std::string replacement = "$1";
};

/// A mutable label set (sorted by name, unique, may include __name__).
using LabelSet = std::vector<Label>;

/// Reads an array of rule tables under `key` (e.g. "relabel_configs");
/// errors go to `r` with their key path.
std::vector<Rule> parse_rules(ConfigReader& r, std::string_view key);

/// A rule option at fault and what is wrong with it.
struct RuleError {
  std::string_view key;  // "regex", "target_label", "modulus", "action", ...
  std::string message;
};

/// Compiles the rule's regex (fully anchored).
std::optional<RuleError> compile_regex(Rule& rule);

/// Checks the options the rule's action needs or refuses.
std::optional<RuleError> check_action(const Rule& rule);

/// Applies `rules` in order. Returns false when the sample is dropped
/// (keep/drop rules, or no labels left).
bool apply(const std::vector<Rule>& rules, LabelSet& labels);

/// Go regexp.Expand semantics on `tmpl` with `groups` (0 = whole match) of
/// `re`: $1, ${1}, $name, ${name}; $$ is a literal $; $1x means ${1x}.
std::string expand(const re2::RE2& re, std::string_view tmpl,
                   const std::vector<std::string_view>& groups);

/// The action keyword ("replace", "hashmod", ...).
std::string_view action_name(Action a);

}  // namespace moni::relabel
