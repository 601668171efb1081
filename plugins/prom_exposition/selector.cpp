#include "selector.hpp"

#include "re2_syntax.hpp"

// GCC 12 warns inside <regex> itself (a std::function in a moved NFA state)
// when inlining at -O2; a known false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <regex>
#include <string>

namespace moni::expo {
namespace {

bool name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool name_char(char c) { return name_start(c) || (c >= '0' && c <= '9'); }

struct P {
  std::string_view s;
  size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
  }
  Error err(std::string_view what) const {
    return make_error("invalid selector \"" + std::string(s) + "\" at position " +
                      std::to_string(i + 1) + ": " + std::string(what));
  }
  int hex(char c) const {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  // A quoted string ("...", '...' with Go escapes, or `raw`).
  Result<std::string> str() {
    if (i >= s.size()) return err("expected a quoted string");
    char q = s[i];
    if (q != '"' && q != '\'' && q != '`') return err("expected a quoted string");
    ++i;
    std::string out;
    while (i < s.size() && s[i] != q) {
      char c = s[i++];
      if (c != '\\' || q == '`') {
        out += c;
        continue;
      }
      if (i >= s.size()) break;
      char e = s[i++];
      switch (e) {
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case '\\': out += '\\'; break;
        case '"': out += '"'; break;
        case '\'': out += '\''; break;
        case 'x': {
          if (i + 2 > s.size() || hex(s[i]) < 0 || hex(s[i + 1]) < 0) return err("bad \\x escape");
          out += static_cast<char>(hex(s[i]) * 16 + hex(s[i + 1]));
          i += 2;
          break;
        }
        default:
          --i;
          return err(std::string("unknown escape sequence '\\") + e + "'");
      }
    }
    if (i >= s.size()) return err("unterminated string");
    ++i;
    return out;
  }
};

// Whether the (fully anchored) RE2 regex matches "". Checked with std::regex
// (RE2's library costs ~0.4 MiB resident); RE2 syntax that std::regex cannot
// express is left to the storage, which matches with its own engine.
Result<bool> matches_empty_string(const std::string& re) {
  std::string ecma, why;
  bool icase = false;
  if (!common::re2_to_ecmascript(re, ecma, icase, why)) return false;
  try {
    std::regex r("^(?:" + ecma + ")$", icase ? std::regex::ECMAScript | std::regex::icase
                                             : std::regex::ECMAScript);
    return std::regex_match("", r);
  } catch (const std::regex_error& e) {
    return make_error(e.what());
  }
}

}  // namespace

Result<std::vector<Matcher>> parse_selector(std::string_view s) {
  P p{s};
  std::vector<Matcher> out;
  p.ws();
  if (p.i < s.size() && (name_start(s[p.i]) || s[p.i] == ':')) {
    size_t b = p.i;
    while (p.i < s.size() && (name_char(s[p.i]) || s[p.i] == ':')) ++p.i;
    out.push_back({MatchType::Equal, "__name__", std::string(s.substr(b, p.i - b))});
    p.ws();
  }
  bool named = !out.empty();
  if (p.i < s.size() && s[p.i] == '{') {
    ++p.i;
    for (;;) {
      p.ws();
      if (p.i < s.size() && s[p.i] == '}') {
        ++p.i;
        break;
      }
      if (p.i >= s.size() || !name_start(s[p.i])) return p.err("expected a label name or '}'");
      size_t b = p.i;
      while (p.i < s.size() && name_char(s[p.i])) ++p.i;
      std::string name(s.substr(b, p.i - b));
      if (named && name == "__name__") return p.err("metric name must not be set twice");
      p.ws();
      MatchType t;
      if (s.substr(p.i, 2) == "=~") t = MatchType::Regex, p.i += 2;
      else if (s.substr(p.i, 2) == "!~") t = MatchType::NotRegex, p.i += 2;
      else if (s.substr(p.i, 2) == "!=") t = MatchType::NotEqual, p.i += 2;
      else if (s.substr(p.i, 1) == "=") t = MatchType::Equal, p.i += 1;
      else return p.err("expected one of =, !=, =~, !~");
      p.ws();
      auto v = p.str();
      if (!v) return v.error();
      out.push_back({t, std::move(name), std::move(*v)});
      p.ws();
      if (p.i < s.size() && s[p.i] == ',') {
        ++p.i;
        continue;
      }
      if (p.i < s.size() && s[p.i] == '}') {
        ++p.i;
        break;
      }
      return p.err("expected ',' or '}'");
    }
  }
  p.ws();
  if (p.i != s.size()) return p.err("unexpected characters");
  if (out.empty()) return p.err("empty selector");
  bool non_empty = false;
  for (const auto& m : out) {
    bool matches_empty = false;
    if (m.type == MatchType::Regex || m.type == MatchType::NotRegex) {
      auto full = matches_empty_string(m.value);
      if (!full)
        return make_error("invalid selector \"" + std::string(s) + "\": bad regex \"" + m.value +
                          "\": " + full.error().message);
      matches_empty = m.type == MatchType::Regex ? *full : !*full;
    } else {
      matches_empty = m.type == MatchType::Equal ? m.value.empty() : !m.value.empty();
    }
    non_empty |= !matches_empty;
  }
  if (!non_empty)
    return make_error("invalid selector \"" + std::string(s) +
                      "\": it must contain at least one matcher that does not match the empty "
                      "string");
  return out;
}

}  // namespace moni::expo
