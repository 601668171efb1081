// A pattern in RE2 syntax (translated for std::regex, see re2_syntax.hpp)
// searched anywhere in the name, like node_exporter's --collector.*-exclude
// flags ("lo" also matches "lo0"; anchor with ^...$), used for device,
// mount point and field filters.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace moni::node {

/// Thread-safety: matches() is const and safe from any thread (its cache of
/// verdicts is locked).
class Pattern {
 public:
  Pattern();
  ~Pattern();
  Pattern(Pattern&&) noexcept;
  Pattern& operator=(Pattern&&) noexcept;
  /// Compiles `expr`; on failure returns false and sets `error`.
  bool compile(const std::string& expr, std::string& error);
  bool empty() const { return !re_; }
  bool matches(std::string_view s) const;
  const std::string& source() const { return source_; }

 private:
  struct Compiled;  // std::regex, kept out of this header (slow to compile)
  std::unique_ptr<Compiled> re_;
  std::string source_;
  // The names seen lately and their verdicts: device and mount names repeat
  // every cycle, and a cache hit is a string compare.
  struct Verdict {
    std::string name;
    bool match;
  };
  mutable std::unique_ptr<std::mutex> mu_ = std::make_unique<std::mutex>();
  mutable std::vector<Verdict> seen_;
};

/// An include-or-exclude filter of names (node_exporter's mutually
/// exclusive --device-include/--device-exclude pair).
struct NameFilter {
  Pattern include;
  Pattern exclude;
  bool ignored(std::string_view name) const {
    if (!include.empty()) return !include.matches(name);
    return !exclude.empty() && exclude.matches(name);
  }
};

}  // namespace moni::node
