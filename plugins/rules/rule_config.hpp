// Rule groups from TOML ([[group]] / [[group.rule]] tables of the instance or
// of a rule file) and their validation as Prometheus's rulefmt does it.
#pragma once

#include <moni/config.hpp>
#include <string>
#include <vector>

#include "rule_spec.hpp"

namespace moni::rules {

/// Reads the array of tables `key` ("group") of `r` into group specs. Type
/// and unknown-key errors go to `r` (reported by its finish()).
std::vector<GroupSpec> read_groups(ConfigReader& r, std::string_view key);

/// Checks groups as Prometheus's rule loader does (group and rule names,
/// expressions, label and annotation names, templates, duplicate group
/// names within one file). Returns "file:line:col: rules: message" lines.
std::vector<std::string> validate_groups(const std::vector<GroupSpec>& groups);

/// Loads a TOML rule file ([[group]] tables). Errors, with positions, are
/// appended to `errors`.
std::vector<GroupSpec> load_toml_rule_file(const std::string& path,
                                           std::vector<std::string>& errors);

/// Expands rule_files patterns (glob; relative ones against `base_dir`) and
/// loads every file: TOML by default, YAML (.yml/.yaml) through the
/// Prometheus rule file loader when it is built in. `where`, when given,
/// holds each pattern's "file:line:col" in the config, which prefixes the
/// errors about the pattern itself (a missing file).
std::vector<GroupSpec> load_rule_files(const std::vector<std::string>& patterns,
                                       const std::string& base_dir,
                                       std::vector<std::string>& errors,
                                       const std::vector<std::string>* where = nullptr);

/// What the rule_files patterns match now, as a string that changes when a
/// file is added, removed, replaced or written (path, inode, size, mtime).
std::string rule_files_stamp(const std::vector<std::string>& patterns, const std::string& base_dir);

/// "file:line:col" as ConfigView::where() writes it, back to a SourcePos.
SourcePos parse_where(const std::string& where);

}  // namespace moni::rules
