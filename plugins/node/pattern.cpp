#include "pattern.hpp"

#include <re2/re2.h>

namespace moni::node {

Pattern::Pattern() = default;
Pattern::~Pattern() = default;
Pattern::Pattern(Pattern&&) noexcept = default;
Pattern& Pattern::operator=(Pattern&&) noexcept = default;

bool Pattern::compile(const std::string& expr, std::string& error) {
  RE2::Options opts;
  opts.set_log_errors(false);
  // Unanchored search, as node_exporter's flags (Go's MatchString): a
  // pattern copied from a node_exporter command line selects the same names.
  auto re = std::make_unique<RE2>(expr, opts);
  if (!re->ok()) {
    error = re->error();
    return false;
  }
  re_ = std::move(re);
  source_ = expr;
  return true;
}

bool Pattern::matches(std::string_view s) const {
  return re_ && RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *re_);
}

}  // namespace moni::node
