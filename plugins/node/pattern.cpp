#include "pattern.hpp"

#include "re2_syntax.hpp"

// GCC 12 warns inside <regex> itself (a std::function in a moved NFA state)
// when inlining at -O2; a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>

namespace moni::node {
namespace {
constexpr size_t kMaxVerdicts = 256;
}  // namespace

struct Pattern::Compiled {
  std::regex re;
};

Pattern::Pattern() = default;
Pattern::~Pattern() = default;
Pattern::Pattern(Pattern&&) noexcept = default;
Pattern& Pattern::operator=(Pattern&&) noexcept = default;

bool Pattern::compile(const std::string& expr, std::string& error) {
  std::string ecma;
  bool icase = false;
  if (!common::re2_to_ecmascript(expr, ecma, icase, error)) return false;
  auto flags = std::regex::ECMAScript;
  if (icase) flags |= std::regex::icase;
#ifdef __GLIBCXX__
  // libstdc++'s breadth-first matcher: no exponential backtracking (RE2's
  // promise), and no recursion as deep as the name is long.
  flags |= std::regex_constants::__polynomial;
#endif
  try {
    re_ = std::make_unique<Compiled>(Compiled{std::regex(ecma, flags)});
  } catch (const std::regex_error& e) {
    error = e.what();
    return false;
  }
  source_ = expr;
  seen_.clear();
  return true;
}

bool Pattern::matches(std::string_view s) const {
  if (!re_) return false;
  std::lock_guard lock(*mu_);
  for (const auto& v : seen_)
    if (v.name == s) return v.match;
  bool m = false;
  try {
    // Unanchored search, as node_exporter's flags (Go's MatchString): a
    // pattern copied from a node_exporter command line selects the same names.
    m = std::regex_search(s.begin(), s.end(), re_->re);
  } catch (const std::regex_error&) {
    m = false;  // never on the collect path: a resource limit counts as no match
  }
  if (seen_.size() == kMaxVerdicts) seen_.clear();
  seen_.push_back({std::string(s), m});
  return m;
}

}  // namespace moni::node
