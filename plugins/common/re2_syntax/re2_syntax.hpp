// Patterns users write (node_exporter flags, selectors) are Go/RE2 regular
// expressions; the node and prom_exposition plugins match them
// with std::regex (ECMAScript) instead of linking RE2 (whose library cost
// ~0.4 MiB of resident memory). This turns the RE2 syntax people write into
// ECMAScript and refuses, with a message, what ECMAScript cannot express.
#pragma once

#include <string>
#include <string_view>

namespace moni::common {

/// `re` (RE2 syntax) as an ECMAScript pattern in `out`; a leading (?i) sets
/// `icase`. False with `error` for: backreferences, \p{...} Unicode classes,
/// \C, lookaround, and inline flags other than a leading (?i).
bool re2_to_ecmascript(std::string_view re, std::string& out, bool& icase, std::string& error);

}  // namespace moni::common
