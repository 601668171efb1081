// Compiled label matchers with Prometheus semantics: regexes are fully
// anchored RE2, and an absent label matches as the empty string.
#pragma once

#include <memory>
#include <moni/result.hpp>
#include <moni/storage.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace moni::tsdb {

/// One compiled matcher. Thread-safety: const methods are safe from any
/// thread (RE2 is thread-safe).
class LabelMatcher {
 public:
  static Result<LabelMatcher> compile(const Matcher& m);
  LabelMatcher(LabelMatcher&&) noexcept;
  LabelMatcher& operator=(LabelMatcher&&) noexcept;
  ~LabelMatcher();

  bool matches(std::string_view value) const;
  /// Whether a series without this label matches.
  bool matches_empty() const { return matches_empty_; }
  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }

 private:
  LabelMatcher() = default;
  MatchType type_ = MatchType::Equal;
  std::string name_, value_;
  std::unique_ptr<re2::RE2> re_;
  bool matches_empty_ = false;
};

Result<std::vector<LabelMatcher>> compile_matchers(std::span<const Matcher> ms);

}  // namespace moni::tsdb
