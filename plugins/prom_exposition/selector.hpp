// Series selectors of /federate?match[]=...: `metric`, `metric{a="b"}`,
// `{__name__=~"x.*",job!="y"}`, parsed into storage label matchers.
#pragma once

#include <moni/sdk.hpp>

#include <string_view>
#include <vector>

namespace moni::expo {

/// Parses one PromQL series selector. Fails with a message naming the
/// position when the syntax is wrong, a regex does not compile, or every
/// matcher matches the empty string (as Prometheus requires).
Result<std::vector<Matcher>> parse_selector(std::string_view s);

}  // namespace moni::expo
