#include "lexer.hpp"

#include <cctype>
#include <cstdint>

namespace moni::promql {
namespace {

bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool is_alnum(char c) { return is_alpha(c) || std::isdigit(static_cast<unsigned char>(c)); }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The rune at q[i] as Go's utf8.DecodeRuneInString: its length (1 for an
// invalid byte) and whether it is utf8.RuneError (invalid, or U+FFFD
// itself, which Prometheus' lexer cannot tell apart).
size_t decode_rune(std::string_view q, size_t i, bool& rune_error) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(q[i + k]); };
  auto cont = [&](size_t k) { return i + k < q.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  rune_error = false;
  if (c < 0x80) return 1;
  uint32_t cp = 0;
  size_t len = 0;
  if (c >= 0xC2 && c <= 0xDF && cont(1)) {
    cp = ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    cp = ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) len = 3;
  } else if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    cp = ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    if (cp >= 0x10000 && cp <= 0x10FFFF) len = 4;
  }
  if (len == 0) {
    rune_error = true;
    return 1;
  }
  rune_error = cp == 0xFFFD;
  return len;
}

bool is_duration_unit_start(char c) {
  return c == 's' || c == 'm' || c == 'h' || c == 'd' || c == 'w' || c == 'y';
}

}  // namespace

std::string describe(const Token& t) {
  switch (t.type) {
    case Tok::End:
      return "end of input";
    case Tok::Ident:
      return "identifier \"" + t.text + "\"";
    case Tok::Number:
      return "number \"" + t.text + "\"";
    case Tok::String:
      return "string";
    case Tok::Duration:
      return "duration \"" + t.text + "\"";
    case Tok::LParen:
      return "\"(\"";
    case Tok::RParen:
      return "\")\"";
    case Tok::LBrace:
      return "\"{\"";
    case Tok::RBrace:
      return "\"}\"";
    case Tok::LBracket:
      return "\"[\"";
    case Tok::RBracket:
      return "\"]\"";
    case Tok::Comma:
      return "\",\"";
    case Tok::Assign:
      return "\"=\"";
    case Tok::Colon:
      return "\":\"";
    case Tok::At:
      return "\"@\"";
    default:
      return "<op:" + t.text + ">";
  }
}

std::vector<Token> lex(std::string_view q) {
  std::vector<Token> out;
  size_t i = 0;
  int brackets = 0;  // inside [...] a ':' separates range and step
  auto push = [&](Tok t, size_t start, size_t end, std::string text) {
    out.push_back(Token{t, start, end, std::move(text)});
  };
  auto fail = [&](size_t at, std::string msg) {
    push(Tok::Error, at, at, std::move(msg));
    return out;
  };
  // Tokens take ~50 times the bytes of their text: a 64 MB form body of
  // "((((" must not become gigabytes before the parser refuses its depth.
  constexpr size_t kMaxTokens = 1'000'000;
  while (i < q.size()) {
    if (out.size() >= kMaxTokens)
      return fail(i, "query too long: more than " + std::to_string(kMaxTokens) + " tokens");
    char c = q[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') {  // comment to end of line
      while (i < q.size() && q[i] != '\n') ++i;
      continue;
    }
    size_t start = i;
    if (is_digit(c) || (c == '.' && i + 1 < q.size() && is_digit(q[i + 1]))) {
      // Number or duration.
      if (c == '0' && i + 1 < q.size() && (q[i + 1] == 'x' || q[i + 1] == 'X')) {
        i += 2;
        while (i < q.size() && hexval(q[i]) >= 0) ++i;
        push(Tok::Number, start, i, std::string(q.substr(start, i - start)));
        continue;
      }
      while (i < q.size() && is_digit(q[i])) ++i;
      bool plain_int = true;
      if (i < q.size() && is_duration_unit_start(q[i])) {
        // A duration: <int><unit>[<int><unit>...]
        size_t j = i;
        while (j < q.size() && (is_digit(q[j]) || std::isalpha(static_cast<unsigned char>(q[j]))))
          ++j;
        push(Tok::Duration, start, j, std::string(q.substr(start, j - start)));
        i = j;
        continue;
      }
      if (i < q.size() && q[i] == '.') {
        plain_int = false;
        ++i;
        while (i < q.size() && is_digit(q[i])) ++i;
      }
      if (i < q.size() && (q[i] == 'e' || q[i] == 'E')) {
        size_t j = i + 1;
        if (j < q.size() && (q[j] == '+' || q[j] == '-')) ++j;
        if (j < q.size() && is_digit(q[j])) {
          i = j;
          while (i < q.size() && is_digit(q[i])) ++i;
        }
      }
      (void)plain_int;
      if (i < q.size() && is_alnum(q[i]))
        return fail(start, "bad number or duration syntax: \"" +
                               std::string(q.substr(start, i + 1 - start)) + "\"");
      push(Tok::Number, start, i, std::string(q.substr(start, i - start)));
      continue;
    }
    if (is_alpha(c) || (c == ':' && brackets == 0)) {
      while (i < q.size() && (is_alnum(q[i]) || (q[i] == ':' && brackets == 0))) ++i;
      push(Tok::Ident, start, i, std::string(q.substr(start, i - start)));
      continue;
    }
    if (c == '"' || c == '\'') {
      std::string val;
      ++i;
      bool closed = false;
      while (i < q.size()) {
        char d = q[i];
        if (d == c) {
          closed = true;
          ++i;
          break;
        }
        if (d == '\n') return fail(i, "unterminated quoted string");
        if (d != '\\') {
          bool bad = false;
          size_t n = decode_rune(q, i, bad);
          if (bad) return fail(start, "invalid UTF-8 rune");
          val.append(q.substr(i, n));
          i += n;
          continue;
        }
        if (i + 1 >= q.size()) return fail(i, "unterminated quoted string");
        char e = q[i + 1];
        i += 2;
        switch (e) {
          case 'a':
            val.push_back('\a');
            break;
          case 'b':
            val.push_back('\b');
            break;
          case 'f':
            val.push_back('\f');
            break;
          case 'n':
            val.push_back('\n');
            break;
          case 'r':
            val.push_back('\r');
            break;
          case 't':
            val.push_back('\t');
            break;
          case 'v':
            val.push_back('\v');
            break;
          case '\\':
            val.push_back('\\');
            break;
          case '"':
          case '\'':
            if (e != c) return fail(i - 2, "unknown escape sequence");
            val.push_back(e);
            break;
          case 'x':
          case 'u':
          case 'U': {
            int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int k = 0; k < n; ++k) {
              if (i >= q.size() || hexval(q[i]) < 0)
                return fail(i, "illegal character in escape sequence");
              cp = cp * 16 + static_cast<uint32_t>(hexval(q[i++]));
            }
            if (e == 'x')
              val.push_back(static_cast<char>(cp));
            else if (cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000))
              return fail(i, "escape sequence is an invalid Unicode code point");
            else
              append_utf8(val, cp);
            break;
          }
          default:
            if (e >= '0' && e <= '7') {
              uint32_t cp = static_cast<uint32_t>(e - '0');
              for (int k = 0; k < 2; ++k) {
                if (i >= q.size() || q[i] < '0' || q[i] > '7')
                  return fail(i, "illegal character in escape sequence");
                cp = cp * 8 + static_cast<uint32_t>(q[i++] - '0');
              }
              if (cp > 255) return fail(i, "escape sequence is an invalid Unicode code point");
              val.push_back(static_cast<char>(cp));
              break;
            }
            return fail(i - 2, "unknown escape sequence");
        }
      }
      if (!closed) return fail(start, "unterminated quoted string");
      push(Tok::String, start, i, std::move(val));
      continue;
    }
    if (c == '`') {
      size_t j = q.find('`', i + 1);
      if (j == std::string_view::npos) return fail(start, "unterminated raw string");
      for (size_t k = i + 1; k < j;) {
        bool bad = false;
        k += decode_rune(q, k, bad);
        if (bad) return fail(start, "invalid UTF-8 rune");
      }
      push(Tok::String, start, j + 1, std::string(q.substr(i + 1, j - i - 1)));
      i = j + 1;
      continue;
    }
    auto two = [&](char a, char b) { return c == a && i + 1 < q.size() && q[i + 1] == b; };
    Tok t;
    size_t len = 1;
    if (two('=', '='))
      t = Tok::Eql, len = 2;
    else if (two('!', '='))
      t = Tok::Neq, len = 2;
    else if (two('=', '~'))
      t = Tok::EqlRegex, len = 2;
    else if (two('!', '~'))
      t = Tok::NeqRegex, len = 2;
    else if (two('<', '='))
      t = Tok::Lte, len = 2;
    else if (two('>', '='))
      t = Tok::Gte, len = 2;
    else {
      switch (c) {
        case '(':
          t = Tok::LParen;
          break;
        case ')':
          t = Tok::RParen;
          break;
        case '{':
          t = Tok::LBrace;
          break;
        case '}':
          t = Tok::RBrace;
          break;
        case '[':
          t = Tok::LBracket;
          ++brackets;
          break;
        case ']':
          t = Tok::RBracket;
          --brackets;
          break;
        case ',':
          t = Tok::Comma;
          break;
        case '=':
          t = Tok::Assign;
          break;
        case ':':
          t = Tok::Colon;
          break;
        case '@':
          t = Tok::At;
          break;
        case '+':
          t = Tok::Add;
          break;
        case '-':
          t = Tok::Sub;
          break;
        case '*':
          t = Tok::Mul;
          break;
        case '/':
          t = Tok::Div;
          break;
        case '%':
          t = Tok::Mod;
          break;
        case '^':
          t = Tok::Pow;
          break;
        case '<':
          t = Tok::Lss;
          break;
        case '>':
          t = Tok::Gtr;
          break;
        default: {
          // The whole rune, U+FFFD for an invalid byte (as Go prints it).
          bool bad = false;
          size_t n = decode_rune(q, i, bad);
          std::string ch = bad ? "\xef\xbf\xbd" : std::string(q.substr(i, n));
          return fail(i, "unexpected character: '" + ch + "'");
        }
      }
    }
    i += len;
    push(t, start, i, std::string(q.substr(start, len)));
  }
  push(Tok::End, q.size(), q.size(), "");
  return out;
}

}  // namespace moni::promql
