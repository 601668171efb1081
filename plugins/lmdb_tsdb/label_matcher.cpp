#include "label_matcher.hpp"

#include <re2/re2.h>

namespace moni::tsdb {

LabelMatcher::LabelMatcher(LabelMatcher&&) noexcept = default;
LabelMatcher& LabelMatcher::operator=(LabelMatcher&&) noexcept = default;
LabelMatcher::~LabelMatcher() = default;

Result<LabelMatcher> LabelMatcher::compile(const Matcher& m) {
  LabelMatcher out;
  out.type_ = m.type;
  out.name_ = m.name;
  out.value_ = m.value;
  if (m.type == MatchType::Regex || m.type == MatchType::NotRegex) {
    RE2::Options opt;
    opt.set_log_errors(false);
    opt.set_dot_nl(true);  // Prometheus compiles with (?s)
    out.re_ = std::make_unique<RE2>("^(?:" + m.value + ")$", opt);
    if (!out.re_->ok())
      return make_error("lmdb_tsdb: invalid regex in matcher " + m.name + "=~\"" + m.value +
                        "\": " + out.re_->error());
  } else if (m.type != MatchType::Equal && m.type != MatchType::NotEqual) {
    return make_error("lmdb_tsdb: unknown matcher type " +
                      std::to_string(static_cast<uint32_t>(m.type)));
  }
  out.matches_empty_ = out.matches("");
  return out;
}

bool LabelMatcher::matches(std::string_view v) const {
  switch (type_) {
    case MatchType::Equal:
      return v == value_;
    case MatchType::NotEqual:
      return v != value_;
    case MatchType::Regex:
      return RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *re_);
    case MatchType::NotRegex:
      return !RE2::FullMatch(re2::StringPiece(v.data(), v.size()), *re_);
  }
  return false;
}

Result<std::vector<LabelMatcher>> compile_matchers(std::span<const Matcher> ms) {
  std::vector<LabelMatcher> out;
  out.reserve(ms.size());
  for (const auto& m : ms) {
    auto r = LabelMatcher::compile(m);
    if (!r) return r.error();
    out.push_back(std::move(r.value()));
  }
  return out;
}

}  // namespace moni::tsdb
