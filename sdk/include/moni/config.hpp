// ConfigView: a plugin's read-only window on its TOML table, and
// ConfigReader: typed option parsing that reports every error at once with
// file:line:column and rejects unknown keys.
#pragma once

#include <moni/duration.hpp>
#include <moni/plugin_abi.h>
#include <moni/sample.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace moni {

/// A node of the host-owned config tree. Thread-safety: read-only, any thread.
class ConfigView {
 public:
  ConfigView() = default;
  ConfigView(const moni_config_api* api, const moni_config_node* node) : api_(api), node_(node) {}

  bool present() const { return node_ != nullptr; }
  moni_config_type type() const {
    return node_ ? static_cast<moni_config_type>(api_->type(node_)) : MONI_CFG_NONE;
  }
  ConfigView get(std::string_view key) const {
    return ConfigView(api_, node_ ? api_->get(node_, ms(key)) : nullptr);
  }
  size_t size() const { return node_ ? api_->size(node_) : 0; }
  /// i-th entry; for tables `key` receives its key.
  ConfigView at(size_t i, std::string_view* key = nullptr) const {
    moni_str k{nullptr, 0};
    ConfigView v(api_, api_->at(node_, i, &k));
    if (key) *key = sv(k);
    return v;
  }
  std::string_view as_string() const { return sv(api_->as_string(node_)); }
  int64_t as_integer() const { return api_->as_integer(node_); }
  double as_float() const { return api_->as_float(node_); }
  bool as_boolean() const { return api_->as_boolean(node_) != 0; }
  /// "file:line:column" of this node, or of the nearest known position.
  std::string where() const {
    if (!node_) return {};
    moni_source_pos p = api_->position(node_);
    return std::string(sv(p.file)) + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
  }
  const moni_config_api* api() const { return api_; }
  const moni_config_node* node() const { return node_; }

 private:
  const moni_config_api* api_ = nullptr;
  const moni_config_node* node_ = nullptr;
};

inline std::string_view config_type_name(moni_config_type t) {
  switch (t) {
    case MONI_CFG_TABLE: return "table";
    case MONI_CFG_ARRAY: return "array";
    case MONI_CFG_STRING: return "string";
    case MONI_CFG_INTEGER: return "integer";
    case MONI_CFG_FLOAT: return "float";
    case MONI_CFG_BOOLEAN: return "boolean";
    case MONI_CFG_DATETIME: return "date-time";
    default: return "nothing";
  }
}

/// Thrown (during create only) with every config error, one per line.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Keys of an instance table that belong to the host (scheduling, wiring).
inline constexpr std::string_view kHostInstanceKeys[] = {"plugin", "interval", "timeout",
                                                         "jitter"};

/// Reads typed options from one table, collecting errors instead of stopping
/// at the first. Call finish() on the root reader last: it adds unknown-key
/// errors (of child tables too) and throws ConfigError when anything was
/// wrong. Child readers share the root's error list.
/// Thread-safety: none; used during create only.
class ConfigReader {
 public:
  /// `component` prefixes messages, e.g. "node" or "scrape[agents]".
  ConfigReader(ConfigView table, std::string component, bool instance_root = true)
      : table_(table), component_(std::move(component)), shared_(std::make_shared<Shared>()) {
    register_table();
    if (instance_root)
      for (auto k : kHostInstanceKeys) used_->insert(std::string(k));
    if (table_.present() && table_.type() != MONI_CFG_TABLE)
      error(table_, "expected a table, got " + std::string(config_type_name(table_.type())));
  }

  /// Records an error at `node` (or at the table when the node is absent).
  void error(const ConfigView& node, const std::string& message) {
    std::string where = node.present() ? node.where() : table_.where();
    shared_->errors.push_back((where.empty() ? std::string() : where + ": ") + component_ + ": " +
                       prefix_ + message);
  }
  bool has(std::string_view key) const { return table_.get(key).present(); }
  ConfigView raw(std::string_view key) {
    used_->insert(std::string(key));
    return table_.get(key);
  }
  ConfigView table_view() const { return table_; }

  std::string string(std::string_view key, std::string def) {
    auto n = typed(key, MONI_CFG_STRING, "a string");
    return n ? std::string(n->as_string()) : def;
  }
  std::optional<std::string> optional_string(std::string_view key) {
    auto n = typed(key, MONI_CFG_STRING, "a string");
    if (!n) return std::nullopt;
    return std::string(n->as_string());
  }
  std::string required_string(std::string_view key) {
    if (!has(key)) {
      used_->insert(std::string(key));
      error(ConfigView(), "missing required option '" + std::string(key) + "'");
      return {};
    }
    return string(key, {});
  }
  bool boolean(std::string_view key, bool def) {
    auto n = typed(key, MONI_CFG_BOOLEAN, "a boolean");
    return n ? n->as_boolean() : def;
  }
  int64_t integer(std::string_view key, int64_t def, int64_t min = INT64_MIN,
                  int64_t max = INT64_MAX) {
    auto n = typed(key, MONI_CFG_INTEGER, "an integer");
    if (!n) return def;
    int64_t v = n->as_integer();
    if (v < min || v > max) {
      error(*n, key_name(key) + " must be in [" + std::to_string(min) + ", " +
                    std::to_string(max) + "] (got " + std::to_string(v) + ")");
      return def;
    }
    return v;
  }
  double number(std::string_view key, double def) {
    ConfigView n = raw(key);
    if (!n.present()) return def;
    if (n.type() != MONI_CFG_FLOAT && n.type() != MONI_CFG_INTEGER) {
      wrong_type(n, key, "a number");
      return def;
    }
    return n.as_float();
  }
  /// A duration string such as "15s"; returns milliseconds.
  int64_t duration_ms(std::string_view key, int64_t def) {
    auto n = typed(key, MONI_CFG_STRING, "a duration string like \"15s\"");
    if (!n) return def;
    auto r = parse_duration_ms(n->as_string());
    if (!r) {
      error(*n, key_name(key) + ": " + r.error().message);
      return def;
    }
    return *r;
  }
  /// A size string such as "10GiB" or an integer number of bytes.
  uint64_t bytes(std::string_view key, uint64_t def) {
    ConfigView n = raw(key);
    if (!n.present()) return def;
    if (n.type() == MONI_CFG_INTEGER) {
      if (n.as_integer() < 0) {
        error(n, key_name(key) + " must be >= 0 (got " + std::to_string(n.as_integer()) + ")");
        return def;
      }
      return static_cast<uint64_t>(n.as_integer());
    }
    if (n.type() != MONI_CFG_STRING) {
      wrong_type(n, key, "a size like \"10GiB\"");
      return def;
    }
    auto r = parse_bytes(n.as_string());
    if (!r) {
      error(n, key_name(key) + ": " + r.error().message);
      return def;
    }
    return *r;
  }
  std::vector<std::string> strings(std::string_view key, std::vector<std::string> def) {
    auto n = typed(key, MONI_CFG_ARRAY, "an array of strings");
    if (!n) return def;
    std::vector<std::string> out;
    for (size_t i = 0; i < n->size(); ++i) {
      ConfigView e = n->at(i);
      if (e.type() != MONI_CFG_STRING) {
        error(e, key_name(key) + "[" + std::to_string(i) + "] must be a string, got " +
                     std::string(config_type_name(e.type())));
        continue;
      }
      out.emplace_back(e.as_string());
    }
    return out;
  }
  /// A string that must be one of `choices`.
  std::string choice(std::string_view key, std::string def,
                     std::initializer_list<std::string_view> choices) {
    auto n = typed(key, MONI_CFG_STRING, "a string");
    if (!n) return def;
    for (auto c : choices)
      if (c == n->as_string()) return std::string(c);
    std::string list;
    for (auto c : choices) list += (list.empty() ? "\"" : ", \"") + std::string(c) + "\"";
    error(*n, key_name(key) + " must be one of " + list + " (got \"" +
                  std::string(n->as_string()) + "\")");
    return def;
  }
  /// A child reader for a sub-table (absent tables read as empty).
  ConfigReader table(std::string_view key) {
    ConfigView n = raw(key);
    bool is_table = !n.present() || n.type() == MONI_CFG_TABLE;
    if (!is_table) wrong_type(n, key, "a table");
    return child_reader(is_table ? n : ConfigView(), prefix_ + std::string(key) + ".");
  }
  /// Child readers for an array of tables ([[key]]).
  std::vector<ConfigReader> tables(std::string_view key) {
    std::vector<ConfigReader> out;
    auto n = typed(key, MONI_CFG_ARRAY, "an array of tables");
    if (!n) return out;
    for (size_t i = 0; i < n->size(); ++i) {
      ConfigView e = n->at(i);
      if (e.type() != MONI_CFG_TABLE) {
        error(e, key_name(key) + "[" + std::to_string(i) + "] must be a table");
        continue;
      }
      out.push_back(child_reader(e, prefix_ + std::string(key) + "[" + std::to_string(i) + "]."));
    }
    return out;
  }

  /// Adds unknown-key errors of this table and of every child table read
  /// through it, then throws ConfigError if any error was seen.
  void finish() {
    for (const auto& t : shared_->tables)
      for (size_t i = 0; i < t.table.size(); ++i) {
        std::string_view k;
        ConfigView v = t.table.at(i, &k);
        if (!t.used->count(std::string(k)))
          shared_->errors.push_back(v.where() + ": " + component_ + ": unknown option '" +
                                    t.prefix + std::string(k) + "'" + hint(k, *t.used));
      }
    shared_->tables.clear();
    if (!shared_->errors.empty()) {
      std::string all;
      for (const auto& e : shared_->errors) all += (all.empty() ? "" : "\n") + e;
      throw ConfigError(all);
    }
  }
  bool ok() const { return shared_->errors.empty(); }

 private:
  struct Table {
    ConfigView table;
    std::string prefix;
    std::shared_ptr<std::set<std::string>> used;
  };
  struct Shared {
    std::vector<std::string> errors;
    std::vector<Table> tables;
  };
  ConfigReader(ConfigView table, std::string component, std::string prefix,
               std::shared_ptr<Shared> shared)
      : table_(table), component_(std::move(component)), prefix_(std::move(prefix)),
        shared_(std::move(shared)) {
    register_table();
  }
  // " (did you mean 'x'?)" for a known key close to `k` (a typo), or how to
  // write a quoted "a.b" that names a key b of a known table a.
  static std::string hint(std::string_view k, const std::set<std::string>& known) {
    if (auto dot = k.find('.'); dot != std::string_view::npos && known.count(std::string(k.substr(0, dot))))
      return " (a quoted key is one name: write " + std::string(k) +
             " unquoted, or put it under its table [..." + std::string(k.substr(0, dot)) + "])";
    std::string best;
    size_t best_d = std::max<size_t>(1, k.size() / 4) + 1;  // at most ~1 typo per 4 letters
    for (const auto& c : known)
      if (size_t d = edit_distance(k, c); d < best_d) {
        best_d = d;
        best = c;
      }
    return best.empty() ? std::string() : " (did you mean '" + best + "'?)";
  }
  // Levenshtein distance, with a transposition of neighbours counting one.
  static size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> prev2(b.size() + 1), prev(b.size() + 1), cur(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= b.size(); ++j) {
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
          cur[j] = std::min(cur[j], prev2[j - 2] + 1);
      }
      std::swap(prev2, prev);
      std::swap(prev, cur);
    }
    return prev[b.size()];
  }
  ConfigReader child_reader(ConfigView table, std::string prefix) {
    return ConfigReader(table, component_, std::move(prefix), shared_);
  }
  void register_table() {
    if (table_.present() && table_.type() == MONI_CFG_TABLE)
      shared_->tables.push_back({table_, prefix_, used_});
  }
  // error() puts the table's prefix in front; messages name the bare key.
  static std::string key_name(std::string_view key) { return std::string(key); }
  void wrong_type(const ConfigView& n, std::string_view key, std::string_view want) {
    error(n, key_name(key) + " must be " + std::string(want) + ", got " +
                 std::string(config_type_name(n.type())));
  }
  std::optional<ConfigView> typed(std::string_view key, moni_config_type t, std::string_view want) {
    ConfigView n = raw(key);
    if (!n.present()) return std::nullopt;
    if (n.type() != t) {
      wrong_type(n, key, want);
      return std::nullopt;
    }
    return n;
  }

  ConfigView table_;
  std::string component_;
  std::string prefix_;
  std::shared_ptr<std::set<std::string>> used_ = std::make_shared<std::set<std::string>>();
  std::shared_ptr<Shared> shared_;
};

}  // namespace moni
