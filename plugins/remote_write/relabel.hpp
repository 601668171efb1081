// The write_relabel_configs subset remote_write applies before queueing:
// replace, keep, drop, labeldrop, labelkeep, hashmod, labelmap, with
// Prometheus semantics (fully anchored RE2 regexes, "$1"/"${name}"
// replacements). Own code: plugins may not share the relabel processor's.
#pragma once

#include <memory>
#include <moni/config.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace moni::remote_write {

/// A mutable label set reused across samples so that relabeling allocates
/// nothing once warm. Thread-safety: none.
class LabelBuf {
 public:
  struct Entry {
    std::string name, value;
  };
  void clear() { n_ = 0; }
  size_t size() const { return n_; }
  const Entry& operator[](size_t i) const { return e_[i]; }
  /// Appends without checking for duplicates (callers add sorted, unique sets).
  void push(std::string_view name, std::string_view value);
  /// Value of `name`, empty when absent.
  std::string_view get(std::string_view name) const;
  /// Sets (or with an empty value removes) `name`.
  void set(std::string_view name, std::string_view value);
  void erase_if_name(const re2::RE2& re, bool matching);
  void sort();

 private:
  std::vector<Entry> e_;
  size_t n_ = 0;
};

enum class RelabelAction { Replace, Keep, Drop, LabelDrop, LabelKeep, HashMod, LabelMap };

/// One rule. Thread-safety: immutable after construction, any thread.
struct RelabelRule {
  RelabelAction action = RelabelAction::Replace;
  std::vector<std::string> source_labels;
  std::string separator = ";";
  std::shared_ptr<re2::RE2> regex;  // anchored
  std::string target_label;
  std::string replacement = "$1";
  uint64_t modulus = 0;
};

/// Parses one [[write_relabel_configs]] table; errors go to `r`.
RelabelRule parse_relabel_rule(ConfigReader& r);

/// Applies `rules` to `labels` (sorted on return). False: the sample is dropped.
/// Thread-safety: `rules` may be shared; `labels` and `scratch` are the caller's.
bool relabel(const std::vector<RelabelRule>& rules, LabelBuf& labels, std::string& scratch);

}  // namespace moni::remote_write
