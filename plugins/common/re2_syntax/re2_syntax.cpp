#include "re2_syntax.hpp"

namespace moni::common {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A literal character, escaped for ECMAScript.
void literal(char c, std::string& out) {
  if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
  out += c;
}

}  // namespace

bool re2_to_ecmascript(std::string_view re, std::string& out, bool& icase, std::string& error) {
  out.clear();
  icase = false;
  bool in_class = false;
  size_t i = 0;
  auto fail = [&](std::string why) {
    error = why + " at position " + std::to_string(i + 1) + " (moni matches RE2 syntax with "
            "std::regex; see the plugin's README)";
    return false;
  };
  while (i < re.size()) {
    char c = re[i];
    if (c == '\\') {
      if (i + 1 >= re.size()) return fail("trailing backslash");
      char e = re[i + 1];
      if (e >= '1' && e <= '9') return fail("backreferences are not RE2 syntax");
      if (e == 'p' || e == 'P') return fail("Unicode classes (\\p) are not supported");
      if (e == 'C') return fail("\\C is not supported");
      if (e == 'z' && !in_class) {  // end of text (no multi-line mode here)
        out += '$';
        i += 2;
        continue;
      }
      if (e == 'A' && !in_class) {
        out += '^';
        i += 2;
        continue;
      }
      if (e == 'Q') {  // \Q...\E: literal text
        size_t end = re.find("\\E", i + 2);
        std::string_view lit = re.substr(i + 2, end == std::string_view::npos ? end : end - i - 2);
        for (char l : lit) literal(l, out);
        i = end == std::string_view::npos ? re.size() : end + 2;
        continue;
      }
      if (e == 'x' && i + 2 < re.size() && re[i + 2] == '{') {  // \x{41}
        size_t close = re.find('}', i + 3);
        if (close == std::string_view::npos || close - i - 3 == 0 || close - i - 3 > 2)
          return fail("\\x{...} beyond \\x{FF} is not supported");
        std::string_view hex = re.substr(i + 3, close - i - 3);
        for (char h : hex)
          if (!is_hex(h)) return fail("bad \\x{...} escape");
        out += "\\x";
        if (hex.size() == 1) out += '0';
        out.append(hex);
        i = close + 1;
        continue;
      }
      out += c;
      out += e;
      i += 2;
      continue;
    }
    if (in_class) {
      if (c == '[' && i + 1 < re.size() && re[i + 1] == ':') {  // [:alpha:] as it is
        size_t end = re.find(":]", i + 2);
        if (end == std::string_view::npos) return fail("unterminated [:class:]");
        out.append(re.substr(i, end + 2 - i));
        i = end + 2;
        continue;
      }
      if (c == '[') out += '\\';  // a literal '[' inside a class
      if (c == ']') in_class = false;
      out += c;
      ++i;
      continue;
    }
    if (c == '[') {
      in_class = true;
      out += c;
      ++i;
      if (i < re.size() && re[i] == '^') out += re[i++];
      if (i < re.size() && re[i] == ']') {  // RE2: a leading ']' is literal
        out += "\\]";
        ++i;
      }
      continue;
    }
    if (c == '(' && i + 1 < re.size() && re[i + 1] == '?') {
      std::string_view rest = re.substr(i + 2);
      if (rest.starts_with("P<") || (rest.starts_with("<") && !rest.starts_with("<=") &&
                                     !rest.starts_with("<!"))) {  // named group
        size_t gt = re.find('>', i);
        if (gt == std::string_view::npos) return fail("unterminated group name");
        out += '(';
        i = gt + 1;
        continue;
      }
      if (rest.starts_with(":")) {
        out += "(?:";
        i += 3;
        continue;
      }
      if (rest.starts_with("i)") && out.empty()) {
        icase = true;
        i += 4;
        continue;
      }
      if (rest.starts_with("=") || rest.starts_with("!") || rest.starts_with("<"))
        return fail("lookaround is not RE2 syntax");
      return fail("inline flags other than a leading (?i) are not supported");
    }
    out += c;
    ++i;
  }
  if (in_class) return fail("missing ']'");
  return true;
}

}  // namespace moni::common
