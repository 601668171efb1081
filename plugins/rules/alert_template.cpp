#include "alert_template.hpp"

#include <re2/re2.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <variant>
#include <vector>

#include "url_query.hpp"

namespace moni::rules {

namespace {

// ---- values

struct Val {
  enum Kind { Nil, Str, Float, Int, Bool, Map, Root } k = Nil;
  std::string s;
  double f = 0;
  int64_t i = 0;
  bool b = false;
  const Labels* m = nullptr;
  static Val str(std::string v) {
    Val x;
    x.k = Str;
    x.s = std::move(v);
    return x;
  }
  static Val flt(double v) {
    Val x;
    x.k = Float;
    x.f = v;
    return x;
  }
  static Val integer(int64_t v) {
    Val x;
    x.k = Int;
    x.i = v;
    return x;
  }
  static Val boolean(bool v) {
    Val x;
    x.k = Bool;
    x.b = v;
    return x;
  }
};

using VR = Result<Val>;

std::string format_c(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

// Go's %.4g: C's, except for how NaN and the infinities are written.
std::string go_4g(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return format_c("%.4g", v);
}

// Shortest round-trip digits of |v| (as "d.ddd" mantissa digits) and the
// decimal exponent, like strconv's shortest formatting.
void shortest_digits(double v, std::string& digits, int& exp10) {
  char buf[64];
  for (int prec = 1; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec - 1, std::fabs(v));
    if (std::strtod(buf, nullptr) == std::fabs(v)) break;
  }
  std::string s = buf;
  auto e = s.find('e');
  exp10 = std::atoi(s.c_str() + e + 1);
  digits.clear();
  for (size_t i = 0; i < e; ++i)
    if (std::isdigit(static_cast<unsigned char>(s[i]))) digits.push_back(s[i]);
  while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
}

std::string go_value_string(const Val& v);

std::string label_map_string(const Labels& m) {
  std::string out = "map[";
  bool first = true;
  for (const auto& l : m) {
    if (!first) out.push_back(' ');
    first = false;
    out += l.name + ":" + l.value;
  }
  return out + "]";
}

std::string go_value_string(const Val& v) {
  switch (v.k) {
    case Val::Nil:
      return "<no value>";
    case Val::Str:
      return v.s;
    case Val::Float:
      return go_float_v(v.f);
    case Val::Int:
      return std::to_string(v.i);
    case Val::Bool:
      return v.b ? "true" : "false";
    case Val::Map:
      return label_map_string(*v.m);
    case Val::Root:
      return "{...}";
  }
  return {};
}

const char* kind_name(const Val& v) {
  switch (v.k) {
    case Val::Str:
      return "string";
    case Val::Float:
      return "float64";
    case Val::Int:
      return "int";
    case Val::Bool:
      return "bool";
    case Val::Map:
      return "map[string]string";
    case Val::Root:
      return "*template.tmplData";
    default:
      return "nil";
  }
}

Result<double> to_float(const Val& v) {
  switch (v.k) {
    case Val::Float:
      return v.f;
    case Val::Int:
      return static_cast<double>(v.i);
    case Val::Str: {
      // strconv.ParseFloat: the whole string must be a number.
      const std::string& s = v.s;
      if (s == "NaN") return std::nan("");
      if (s == "+Inf" || s == "Inf") return INFINITY;
      if (s == "-Inf") return -INFINITY;
      char* end = nullptr;
      double d = std::strtod(s.c_str(), &end);
      if (s.empty() || end != s.c_str() + s.size())
        return make_error("strconv.ParseFloat: parsing \"" + s + "\": invalid syntax");
      return d;
    }
    default:
      return make_error(std::string("can't convert ") + kind_name(v) + " to float");
  }
}

bool truth(const Val& v) {
  switch (v.k) {
    case Val::Nil:
      return false;
    case Val::Str:
      return !v.s.empty();
    case Val::Float:
      return v.f != 0;
    case Val::Int:
      return v.i != 0;
    case Val::Bool:
      return v.b;
    case Val::Map:
      return !v.m->empty();
    case Val::Root:
      return true;
  }
  return false;
}

// ---- printf with Go's verbs

// Go's strconv.Quote (%q) for ASCII: letter escapes where Go has one, \xNN
// for the other control bytes; other bytes as they are.
std::string go_quote(std::string_view s) {
  static constexpr std::string_view kControl = "\a\b\f\n\r\t\v", kLetter = "abfnrtv";
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += {'\\', static_cast<char>(c)};
    } else if (auto k = kControl.find(static_cast<char>(c)); k != std::string_view::npos) {
      out += {'\\', kLetter[k]};
    } else if (c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string go_printf(std::string_view fmt, const std::vector<Val>& args) {
  std::string out;
  size_t ai = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 1 < fmt.size() && fmt[i + 1] == '%') {
      out.push_back('%');
      ++i;
      continue;
    }
    // %[flags][width][.prec]verb
    size_t j = i + 1;
    std::string spec = "%";
    while (j < fmt.size() && std::strchr("+-# 0", fmt[j])) spec.push_back(fmt[j++]);
    while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j])))
      spec.push_back(fmt[j++]);
    if (j < fmt.size() && fmt[j] == '.') {
      spec.push_back(fmt[j++]);
      while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j])))
        spec.push_back(fmt[j++]);
    }
    if (j >= fmt.size()) {
      out += "%!(NOVERB)";
      break;
    }
    char verb = fmt[j];
    i = j;
    if (ai >= args.size()) {
      out += std::string("%!") + verb + "(MISSING)";
      continue;
    }
    const Val& a = args[ai++];
    char buf[512];
    auto bad = [&] {
      out += std::string("%!") + verb + "(" + kind_name(a) + "=" + go_value_string(a) + ")";
    };
    switch (verb) {
      case 'd':
        if (a.k == Val::Int) {
          std::snprintf(buf, sizeof buf, (spec + "lld").c_str(), static_cast<long long>(a.i));
          out += buf;
        } else {
          bad();
        }
        break;
      case 'f':
      case 'F':
      case 'e':
      case 'E':
      case 'g':
      case 'G':
        if (a.k == Val::Float) {
          if (std::isnan(a.f)) {
            out += "NaN";
          } else if (std::isinf(a.f)) {
            out += a.f > 0 ? "+Inf" : "-Inf";
          } else {
            std::snprintf(buf, sizeof buf, (spec + verb).c_str(), a.f);
            out += buf;
          }
        } else {
          bad();
        }
        break;
      case 's':
      case 'v':
        if (a.k == Val::Str || verb == 'v') {
          std::string s = go_value_string(a);
          std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
          out += buf;
        } else {
          bad();
        }
        break;
      case 'q':
        if (a.k == Val::Str)
          out += go_quote(a.s);
        else
          bad();
        break;
      case 'x':
      case 'X':
        if (a.k == Val::Int) {
          std::snprintf(buf, sizeof buf, (spec + "ll" + verb).c_str(), static_cast<long long>(a.i));
          out += buf;
        } else {
          bad();
        }
        break;
      case 't':
        if (a.k == Val::Bool)
          out += a.b ? "true" : "false";
        else
          bad();
        break;
      default:
        out += std::string("%!") + verb + "(" + kind_name(a) + "=" + go_value_string(a) + ")";
    }
  }
  if (ai < args.size()) {
    out += "%!(EXTRA ";
    for (size_t k = ai; k < args.size(); ++k)
      out += std::string(k > ai ? ", " : "") + kind_name(args[k]) + "=" + go_value_string(args[k]);
    out += ")";
  }
  return out;
}

// ---- the tree

struct Pipeline;
struct Arg {
  enum Kind { Field, Var, Str, Num, Bool, Ident, Sub, Dot, NilLit } k = Str;
  std::string name;                 // Var name (without $), Ident name
  std::vector<std::string> fields;  // .a.b
  std::string s;
  double num = 0;
  bool is_int = false;
  bool b = false;
  std::shared_ptr<Pipeline> sub;
};
struct Command {
  std::vector<Arg> args;
};
struct Pipeline {
  std::vector<Command> cmds;
};

}  // namespace

std::string go_quoted(std::string_view s) { return go_quote(s); }

struct AlertTemplate::Node {
  enum Kind { List, Text, Action, If } k = List;
  std::string text;
  Pipeline pipe;
  std::vector<std::shared_ptr<Node>> children;  // List
  std::shared_ptr<Node> then_list, else_list;   // If
};

namespace {

using Node = AlertTemplate::Node;
using NodePtr = std::shared_ptr<Node>;

class Parser {
 public:
  explicit Parser(std::string_view t) : t_(t) {}

  Result<NodePtr> parse() {
    auto root = std::make_shared<Node>();
    std::string stop;
    auto r = parse_list(*root, stop);
    if (!r) return r.error();
    if (!stop.empty()) return err(stop_pos_, "unexpected {{" + stop + "}}");
    return root;
  }

 private:
  Error err(size_t pos, const std::string& msg) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < pos && i < t_.size(); ++i) {
      if (t_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return Error{std::to_string(line) + ":" + std::to_string(col) + ": " + msg};
  }

  // Parses text and actions into `list` until {{end}}/{{else}} (returned in
  // `stop`) or the end of the text.
  Result<void> parse_list(Node& list, std::string& stop) {
    stop.clear();
    while (p_ < t_.size()) {
      size_t open = t_.find("{{", p_);
      std::string text(
          t_.substr(p_, open == std::string_view::npos ? std::string_view::npos : open - p_));
      if (open == std::string_view::npos) {
        add_text(list, std::move(text));
        p_ = t_.size();
        break;
      }
      size_t q = open + 2;
      bool trim_left =
          q + 1 < t_.size() && t_[q] == '-' && std::isspace(static_cast<unsigned char>(t_[q + 1]));
      if (trim_left) {
        while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
          text.pop_back();
        q += 1;
      }
      add_text(list, std::move(text));
      size_t close = find_close(q);
      if (close == std::string_view::npos) return err(open, "unclosed action");
      size_t end = close;
      bool trim_right = end >= q + 2 && t_[end - 1] == '-' &&
                        std::isspace(static_cast<unsigned char>(t_[end - 2]));
      if (trim_right) end -= 1;
      std::string_view body = t_.substr(q, end - q);
      size_t body_pos = q;
      p_ = close + 2;
      if (trim_right)
        while (p_ < t_.size() && std::isspace(static_cast<unsigned char>(t_[p_]))) ++p_;
      // comments
      std::string_view trimmed = strip(body);
      if (trimmed.starts_with("/*")) {
        if (!trimmed.ends_with("*/")) return err(open, "unclosed comment");
        continue;
      }
      pos_ = body_pos;
      body_ = body;
      bp_ = 0;
      std::string kw = peek_keyword();
      if (kw == "end" || kw == "else") {
        bp_ += kw.size();
        skip_ws();
        if (kw == "else" && peek_keyword() == "if") {
          // {{else if x}}: an If node nested in the else branch.
          bp_ += 2;
          stop = "else if";
        } else {
          stop = kw;
          if (bp_ != body_.size()) return err(pos_ + bp_, "unexpected text after " + kw);
        }
        stop_pos_ = open;
        return {};
      }
      if (kw == "if") {
        bp_ += 2;
        auto r = parse_if(list, open);
        if (!r) return r;
        continue;
      }
      if (kw == "range" || kw == "with" || kw == "define" || kw == "template" || kw == "block")
        return err(open, "{{" + kw + "}} is not supported in moni's alert templates");
      auto pipe = parse_pipeline(false);
      if (!pipe) return pipe.error();
      skip_ws();
      if (bp_ != body_.size())
        return err(pos_ + bp_,
                   "unexpected \"" + std::string(body_.substr(bp_, 1)) + "\" in command");
      auto n = std::make_shared<Node>();
      n->k = Node::Action;
      n->pipe = std::move(*pipe);
      list.children.push_back(n);
    }
    return {};
  }

  // After "if": the condition in body_, then the branches.
  Result<void> parse_if(Node& list, size_t open) {
    auto cond = parse_pipeline(false);
    if (!cond) return cond.error();
    skip_ws();
    if (bp_ != body_.size()) return err(pos_ + bp_, "unexpected text in if");
    if (cond->cmds.empty()) return err(open, "missing value for if");
    auto n = std::make_shared<Node>();
    n->k = Node::If;
    n->pipe = std::move(*cond);
    n->then_list = std::make_shared<Node>();
    std::string stop;
    auto r = parse_list(*n->then_list, stop);
    if (!r) return r;
    if (stop.empty()) return err(open, "unexpected EOF: if without end");
    if (stop == "else" || stop == "else if") {
      n->else_list = std::make_shared<Node>();
      if (stop == "else if") {
        auto r2 = parse_if(*n->else_list, stop_pos_);
        if (!r2) return r2;
        // the nested if consumed the {{end}}
      } else {
        auto r3 = parse_list(*n->else_list, stop);
        if (!r3) return r3;
        if (stop != "end") return err(open, "unexpected EOF: if without end");
      }
    }
    list.children.push_back(n);
    return {};
  }

  static std::string_view strip(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
  }

  // The "}}" that closes the action starting at q, skipping quoted strings.
  size_t find_close(size_t q) const {
    for (size_t i = q; i + 1 < t_.size(); ++i) {
      char c = t_[i];
      if (c == '"') {
        for (++i; i < t_.size() && t_[i] != '"'; ++i)
          if (t_[i] == '\\') ++i;
      } else if (c == '`') {
        for (++i; i < t_.size() && t_[i] != '`'; ++i) {
        }
      } else if (c == '}' && t_[i + 1] == '}') {
        return i;
      }
    }
    return std::string_view::npos;
  }

  static void add_text(Node& list, std::string text) {
    if (text.empty()) return;
    auto n = std::make_shared<Node>();
    n->k = Node::Text;
    n->text = std::move(text);
    list.children.push_back(n);
  }

  void skip_ws() {
    while (bp_ < body_.size() && std::isspace(static_cast<unsigned char>(body_[bp_]))) ++bp_;
  }
  std::string peek_keyword() {
    skip_ws();
    size_t e = bp_;
    while (e < body_.size() &&
           (std::isalnum(static_cast<unsigned char>(body_[e])) || body_[e] == '_'))
      ++e;
    return std::string(body_.substr(bp_, e - bp_));
  }

  Result<Pipeline> parse_pipeline(bool in_paren) {
    Pipeline p;
    for (;;) {
      Command c;
      for (;;) {
        skip_ws();
        if (bp_ >= body_.size()) break;
        char ch = body_[bp_];
        if (ch == '|' || (ch == ')' && in_paren)) break;
        auto a = parse_arg();
        if (!a) return a.error();
        c.args.push_back(std::move(*a));
      }
      if (c.args.empty()) {
        if (p.cmds.empty() && !in_paren && bp_ >= body_.size())
          return Error{err(pos_, "missing value for command").message};
        return Error{err(pos_ + bp_, "missing command").message};
      }
      p.cmds.push_back(std::move(c));
      skip_ws();
      if (bp_ < body_.size() && body_[bp_] == '|') {
        ++bp_;
        continue;
      }
      break;
    }
    return p;
  }

  static bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

  std::vector<std::string> parse_fields() {
    std::vector<std::string> f;
    while (bp_ < body_.size() && body_[bp_] == '.' && bp_ + 1 < body_.size() &&
           ident_char(body_[bp_ + 1])) {
      ++bp_;
      size_t s = bp_;
      while (bp_ < body_.size() && ident_char(body_[bp_])) ++bp_;
      f.emplace_back(body_.substr(s, bp_ - s));
    }
    return f;
  }

  Result<Arg> parse_arg() {
    Arg a;
    size_t start = bp_;
    char c = body_[bp_];
    if (c == '$') {
      ++bp_;
      size_t s = bp_;
      while (bp_ < body_.size() && ident_char(body_[bp_])) ++bp_;
      a.k = Arg::Var;
      a.name = std::string(body_.substr(s, bp_ - s));
      if (bp_ + 1 < body_.size() && body_[bp_] == ':' && body_[bp_ + 1] == '=')
        return Error{
            err(pos_ + start, "variable declarations are not supported in moni's alert templates")
                .message};
      if (a.name != "" && a.name != "labels" && a.name != "value" && a.name != "externalLabels" &&
          a.name != "externalURL")
        return Error{err(pos_ + start, "undefined variable \"$" + a.name + "\"").message};
      a.fields = parse_fields();
      return a;
    }
    if (c == '.') {
      if (bp_ + 1 < body_.size() && ident_char(body_[bp_ + 1]) &&
          !std::isdigit(static_cast<unsigned char>(body_[bp_ + 1]))) {
        a.k = Arg::Field;
        a.fields = parse_fields();
        return a;
      }
      if (bp_ + 1 >= body_.size() || !std::isdigit(static_cast<unsigned char>(body_[bp_ + 1]))) {
        ++bp_;
        a.k = Arg::Dot;
        return a;
      }
    }
    if (c == '"') {
      std::string s;
      ++bp_;
      while (bp_ < body_.size() && body_[bp_] != '"') {
        char ch = body_[bp_++];
        if (ch == '\\' && bp_ < body_.size()) {
          char e = body_[bp_++];
          switch (e) {
            case 'n':
              s.push_back('\n');
              break;
            case 't':
              s.push_back('\t');
              break;
            case 'r':
              s.push_back('\r');
              break;
            case '\\':
              s.push_back('\\');
              break;
            case '"':
              s.push_back('"');
              break;
            case '\'':
              s.push_back('\'');
              break;
            case 'a':
              s.push_back('\a');
              break;
            case 'b':
              s.push_back('\b');
              break;
            case 'f':
              s.push_back('\f');
              break;
            case 'v':
              s.push_back('\v');
              break;
            case 'x':
            case 'u':
            case 'U':
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7': {
              // Go's strconv.Unquote: \xHH and \NNN are one byte (any byte),
              // \uXXXX and \UXXXXXXXX a code point written as UTF-8.
              const bool octal = e >= '0' && e <= '7';
              const int digits = e == 'x' ? 2 : e == 'u' ? 4 : e == 'U' ? 8 : 3;
              size_t from = octal ? bp_ - 1 : bp_;
              uint32_t v = 0;
              for (int i = 0; i < digits; ++i) {
                char d = from + i < body_.size() ? body_[from + i] : '\0';
                int x = octal ? (d >= '0' && d <= '7' ? d - '0' : -1)
                              : (d >= '0' && d <= '9'   ? d - '0'
                                 : d >= 'a' && d <= 'f' ? d - 'a' + 10
                                 : d >= 'A' && d <= 'F' ? d - 'A' + 10
                                                        : -1);
                if (x < 0)
                  return Error{
                      err(pos_ + bp_ - 2, std::string("invalid syntax in escape \\") + e).message};
                v = v * (octal ? 8 : 16) + static_cast<uint32_t>(x);
              }
              bp_ = from + static_cast<size_t>(digits);
              if (octal && v > 255)
                return Error{err(pos_ + from - 1, "octal escape value > 255").message};
              if (e == 'x' || octal) {
                s.push_back(static_cast<char>(v));
              } else if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
                return Error{
                    err(pos_ + from - 2, "escape sequence is invalid Unicode code point").message};
              } else if (v < 0x80) {
                s.push_back(static_cast<char>(v));
              } else if (v < 0x800) {
                s.push_back(static_cast<char>(0xC0 | (v >> 6)));
                s.push_back(static_cast<char>(0x80 | (v & 0x3F)));
              } else if (v < 0x10000) {
                s.push_back(static_cast<char>(0xE0 | (v >> 12)));
                s.push_back(static_cast<char>(0x80 | ((v >> 6) & 0x3F)));
                s.push_back(static_cast<char>(0x80 | (v & 0x3F)));
              } else {
                s.push_back(static_cast<char>(0xF0 | (v >> 18)));
                s.push_back(static_cast<char>(0x80 | ((v >> 12) & 0x3F)));
                s.push_back(static_cast<char>(0x80 | ((v >> 6) & 0x3F)));
                s.push_back(static_cast<char>(0x80 | (v & 0x3F)));
              }
              break;
            }
            default:
              return Error{
                  err(pos_ + bp_ - 2, std::string("unknown escape sequence \\") + e).message};
          }
        } else {
          s.push_back(ch);
        }
      }
      if (bp_ >= body_.size())
        return Error{err(pos_ + start, "unterminated quoted string").message};
      ++bp_;
      a.k = Arg::Str;
      a.s = std::move(s);
      return a;
    }
    if (c == '`') {
      size_t e = body_.find('`', bp_ + 1);
      if (e == std::string_view::npos)
        return Error{err(pos_ + start, "unterminated raw quoted string").message};
      a.k = Arg::Str;
      a.s = std::string(body_.substr(bp_ + 1, e - bp_ - 1));
      bp_ = e + 1;
      return a;
    }
    if (c == '(') {
      ++bp_;
      auto p = parse_pipeline(true);
      if (!p) return p.error();
      skip_ws();
      if (bp_ >= body_.size() || body_[bp_] != ')')
        return Error{err(pos_ + start, "unclosed left paren").message};
      ++bp_;
      a.k = Arg::Sub;
      a.sub = std::make_shared<Pipeline>(std::move(*p));
      a.fields = parse_fields();
      return a;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '+' || c == '.') {
      size_t e = bp_ + 1;
      while (
          e < body_.size() &&
          (std::isalnum(static_cast<unsigned char>(body_[e])) || body_[e] == '.' ||
           ((body_[e] == '-' || body_[e] == '+') && (body_[e - 1] == 'e' || body_[e - 1] == 'E'))))
        ++e;
      std::string num(body_.substr(bp_, e - bp_));
      int64_t iv = 0;
      auto [ptr, ec] = std::from_chars(num.data() + (num[0] == '+'), num.data() + num.size(), iv);
      if (ec == std::errc() && ptr == num.data() + num.size()) {
        a.is_int = true;
        a.num = static_cast<double>(iv);
      } else {
        char* end = nullptr;
        a.num = std::strtod(num.c_str(), &end);
        if (end != num.c_str() + num.size())
          return Error{err(pos_ + start, "bad number syntax: \"" + num + "\"").message};
      }
      a.k = Arg::Num;
      bp_ = e;
      return a;
    }
    if (ident_char(c)) {
      size_t s = bp_;
      while (bp_ < body_.size() && ident_char(body_[bp_])) ++bp_;
      std::string id(body_.substr(s, bp_ - s));
      if (id == "true" || id == "false") {
        a.k = Arg::Bool;
        a.b = id == "true";
        return a;
      }
      if (id == "nil") {
        a.k = Arg::NilLit;
        return a;
      }
      if (!known_function(id))
        return Error{err(pos_ + start, "function \"" + id + "\" not defined").message};
      a.k = Arg::Ident;
      a.name = std::move(id);
      return a;
    }
    return Error{err(pos_ + start, std::string("unexpected \"") + c + "\" in command").message};
  }

 public:
  static bool known_function(std::string_view id) {
    static const char* const names[] = {"humanize",
                                        "humanize1024",
                                        "humanizeDuration",
                                        "humanizePercentage",
                                        "humanizeTimestamp",
                                        "printf",
                                        "print",
                                        "toUpper",
                                        "toLower",
                                        "title",
                                        "match",
                                        "reReplaceAll",
                                        "stripPort",
                                        "eq",
                                        "ne",
                                        "lt",
                                        "le",
                                        "gt",
                                        "ge",
                                        "and",
                                        "or",
                                        "not",
                                        "len",
                                        "index",
                                        "safeHtml",
                                        "urlquery",
                                        "pathPrefix",
                                        "externalURL"};
    for (const char* n : names)
      if (id == n) return true;
    return false;
  }

 private:
  std::string_view t_;
  size_t p_ = 0;
  size_t stop_pos_ = 0;
  // the action being parsed
  std::string_view body_;
  size_t pos_ = 0;  // offset of body_ in t_
  size_t bp_ = 0;
};

// ---- execution

class Exec {
 public:
  explicit Exec(const TemplateData& d) : d_(d) {}

  Result<void> run(const Node& n, std::string& out) {
    switch (n.k) {
      case Node::List:
        for (const auto& c : n.children) {
          auto r = run(*c, out);
          if (!r) return r;
        }
        return {};
      case Node::Text:
        out += n.text;
        return {};
      case Node::Action: {
        auto v = pipeline(n.pipe);
        if (!v) return v.error();
        out += go_value_string(*v);
        return {};
      }
      case Node::If: {
        auto v = pipeline(n.pipe);
        if (!v) return v.error();
        if (truth(*v)) return run(*n.then_list, out);
        if (n.else_list) return run(*n.else_list, out);
        return {};
      }
    }
    return {};
  }

 private:
  Val root() const {
    Val v;
    v.k = Val::Root;
    return v;
  }

  VR field(const Val& base, const std::string& name) const {
    if (base.k == Val::Root) {
      if (name == "Labels") {
        Val v;
        v.k = Val::Map;
        v.m = d_.labels ? d_.labels : &empty_;
        return v;
      }
      if (name == "ExternalLabels") {
        Val v;
        v.k = Val::Map;
        v.m = d_.external_labels ? d_.external_labels : &empty_;
        return v;
      }
      if (name == "ExternalURL") return Val::str(std::string(d_.external_url));
      if (name == "Value") return Val::flt(d_.value);
      return make_error("can't evaluate field " + name + " in type *template.tmplData");
    }
    if (base.k == Val::Map) {
      for (const auto& l : *base.m)
        if (l.name == name) return Val::str(l.value);
      return Val::str("");  // missingkey=zero, as Prometheus sets it
    }
    if (base.k == Val::Nil) return make_error("nil pointer evaluating ." + name);
    return make_error("can't evaluate field " + name + " in type " + kind_name(base));
  }

  VR fields(Val v, const std::vector<std::string>& fs) const {
    for (const auto& f : fs) {
      auto r = field(v, f);
      if (!r) return r;
      v = std::move(*r);
    }
    return v;
  }

  VR arg_value(const Arg& a) {
    switch (a.k) {
      case Arg::Field:
        return fields(root(), a.fields);
      case Arg::Dot:
        return root();
      case Arg::Var: {
        Val base = root();
        if (a.name == "labels")
          base = *field(root(), "Labels");
        else if (a.name == "externalLabels")
          base = *field(root(), "ExternalLabels");
        else if (a.name == "externalURL")
          base = *field(root(), "ExternalURL");
        else if (a.name == "value")
          base = *field(root(), "Value");
        return fields(base, a.fields);
      }
      case Arg::Str:
        return Val::str(a.s);
      case Arg::Num:
        return a.is_int ? Val::integer(static_cast<int64_t>(a.num)) : Val::flt(a.num);
      case Arg::Bool:
        return Val::boolean(a.b);
      case Arg::NilLit:
        return Val();
      case Arg::Sub: {
        auto v = pipeline(*a.sub);
        if (!v) return v;
        return fields(*v, a.fields);
      }
      case Arg::Ident:
        return call(a.name, {});
    }
    return Val();
  }

  VR command(const Command& c, const Val* piped) {
    const Arg& first = c.args[0];
    if (first.k == Arg::Ident) {
      std::vector<Val> args;
      for (size_t i = 1; i < c.args.size(); ++i) {
        auto v = arg_value(c.args[i]);
        if (!v) return v;
        args.push_back(std::move(*v));
      }
      if (piped) args.push_back(*piped);
      return call(first.name, args);
    }
    if (c.args.size() > 1 || piped)
      return make_error("can't give argument to non-function " + describe(first));
    return arg_value(first);
  }

  static std::string describe(const Arg& a) {
    switch (a.k) {
      case Arg::Var:
        return "$" + a.name;
      case Arg::Str:
        return go_quote(a.s);
      default:
        return "operand";
    }
  }

  VR pipeline(const Pipeline& p) {
    Val cur;
    bool have = false;
    for (const auto& c : p.cmds) {
      auto v = command(c, have ? &cur : nullptr);
      if (!v) return v;
      cur = std::move(*v);
      have = true;
    }
    return cur;
  }

  static Result<int> compare(const Val& a, const Val& b) {
    if ((a.k == Val::Str) != (b.k == Val::Str))
      return make_error(std::string("incompatible types for comparison: ") + kind_name(a) +
                        " and " + kind_name(b));
    if (a.k == Val::Str) return a.s < b.s ? -1 : (a.s > b.s ? 1 : 0);
    if (a.k == Val::Bool && b.k == Val::Bool) return int(a.b) - int(b.b);
    auto x = to_float(a), y = to_float(b);
    if (!x || !y)
      return make_error(std::string("incompatible types for comparison: ") + kind_name(a) +
                        " and " + kind_name(b));
    return *x < *y ? -1 : (*x > *y ? 1 : 0);
  }

  VR call(const std::string& fn, const std::vector<Val>& args) {
    auto want = [&](size_t n) -> Result<void> {
      if (args.size() != n)
        return make_error("wrong number of args for " + fn + ": want " + std::to_string(n) +
                          " got " + std::to_string(args.size()));
      return {};
    };
    auto num_fn = [&](std::string (*f)(double)) -> VR {
      if (auto w = want(1); !w) return w.error();
      auto v = to_float(args[0]);
      if (!v) return make_error("error calling " + fn + ": " + v.error().message);
      return Val::str(f(*v));
    };
    if (fn == "humanize") return num_fn(&humanize);
    if (fn == "humanize1024") return num_fn(&humanize1024);
    if (fn == "humanizeDuration") return num_fn(&humanize_duration);
    if (fn == "humanizePercentage") return num_fn(&humanize_percentage);
    if (fn == "humanizeTimestamp") {
      if (auto w = want(1); !w) return w.error();
      auto v = to_float(args[0]);
      if (!v) return make_error("error calling " + fn + ": " + v.error().message);
      if (std::isnan(*v) || std::isinf(*v)) return Val::str(go_4g(*v));
      // Prometheus goes through model.Time: whole milliseconds.
      double ns = *v * 1e9;
      if (ns > 9.2e18 || ns < -9.2e18)
        return make_error(
            "error calling humanizeTimestamp: " + go_float_v(*v) +
            " cannot be represented as a nanoseconds timestamp since it overflows int64");
      int64_t ms = static_cast<int64_t>(ns) / 1'000'000;
      int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
      int64_t frac_ms = ms - secs * 1000;
      auto t = static_cast<time_t>(secs);
      std::tm tm{};
      gmtime_r(&t, &tm);
      char buf[64];
      std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
      std::string s = buf;
      if (frac_ms > 0) {
        char frac[16];
        std::snprintf(frac, sizeof frac, ".%03d", static_cast<int>(frac_ms));
        std::string f = frac;
        while (f.back() == '0') f.pop_back();
        s += f;
      }
      return Val::str(s + " +0000 UTC");
    }
    if (fn == "printf") {
      if (args.empty()) return make_error("wrong number of args for printf: want at least 1 got 0");
      if (args[0].k != Val::Str) return make_error("printf: the format must be a string");
      return Val::str(go_printf(args[0].s, std::vector<Val>(args.begin() + 1, args.end())));
    }
    if (fn == "print") {
      std::string s;
      for (size_t i = 0; i < args.size(); ++i) {
        // Go's Sprint adds spaces between operands when neither is a string.
        if (i && args[i].k != Val::Str && args[i - 1].k != Val::Str) s.push_back(' ');
        s += go_value_string(args[i]);
      }
      return Val::str(s);
    }
    auto str_fn = [&](auto f) -> VR {
      if (auto w = want(1); !w) return w.error();
      if (args[0].k != Val::Str)
        return make_error(fn + ": expected a string, got " + kind_name(args[0]));
      return Val::str(f(args[0].s));
    };
    if (fn == "toUpper")
      return str_fn([](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return s;
      });
    if (fn == "toLower")
      return str_fn([](std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
      });
    if (fn == "title")
      return str_fn([](std::string s) {
        bool start = true;
        for (auto& c : s) {
          if (start && std::isalpha(static_cast<unsigned char>(c)))
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          start = !std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '\'';
        }
        return s;
      });
    if (fn == "safeHtml") return str_fn([](std::string s) { return s; });
    if (fn == "stripPort")
      return str_fn([](std::string s) {
        auto c = s.rfind(':');
        if (c == std::string::npos) return s;
        if (!s.empty() && s[0] == '[') {
          auto e = s.find(']');
          return e == std::string::npos ? s : s.substr(1, e - 1);
        }
        if (s.find(':') != c) return s;  // a bare IPv6 address
        return s.substr(0, c);
      });
    if (fn == "match" || fn == "reReplaceAll") {
      bool rep = fn == "reReplaceAll";
      if (auto w = want(rep ? 3 : 2); !w) return w.error();
      for (const auto& a : args)
        if (a.k != Val::Str) return make_error(fn + ": arguments must be strings");
      RE2 re(args[0].s);
      if (!re.ok()) return make_error(fn + ": error parsing regexp: " + re.error());
      if (!rep) return Val::boolean(RE2::PartialMatch(args[1].s, re));
      // Go's $1 / ${1} become RE2's \1.
      std::string repl;
      const std::string& g = args[1].s;
      for (size_t i = 0; i < g.size(); ++i) {
        if (g[i] == '\\') {
          repl += "\\\\";
        } else if (g[i] == '$' && i + 1 < g.size() &&
                   std::isdigit(static_cast<unsigned char>(g[i + 1]))) {
          repl += '\\';
          repl += g[++i];
        } else if (g[i] == '$' && i + 3 < g.size() && g[i + 1] == '{' &&
                   std::isdigit(static_cast<unsigned char>(g[i + 2])) && g[i + 3] == '}') {
          repl += '\\';
          repl += g[i + 2];
          i += 3;
        } else {
          repl += g[i];
        }
      }
      std::string s = args[2].s;
      RE2::GlobalReplace(&s, re, repl);
      return Val::str(s);
    }
    if (fn == "eq" || fn == "ne" || fn == "lt" || fn == "le" || fn == "gt" || fn == "ge") {
      if (fn == "eq" && args.size() > 2) {
        for (size_t i = 1; i < args.size(); ++i) {
          auto c = compare(args[0], args[i]);
          if (!c) return c.error();
          if (*c == 0) return Val::boolean(true);
        }
        return Val::boolean(false);
      }
      if (auto w = want(2); !w) return w.error();
      auto c = compare(args[0], args[1]);
      if (!c) return c.error();
      int v = *c;
      bool r = fn == "eq"   ? v == 0
               : fn == "ne" ? v != 0
               : fn == "lt" ? v < 0
               : fn == "le" ? v <= 0
               : fn == "gt" ? v > 0
                            : v >= 0;
      return Val::boolean(r);
    }
    if (fn == "not") {
      if (auto w = want(1); !w) return w.error();
      return Val::boolean(!truth(args[0]));
    }
    if (fn == "and" || fn == "or") {
      if (args.empty()) return make_error("wrong number of args for " + fn);
      for (size_t i = 0; i + 1 < args.size(); ++i)
        if (truth(args[i]) != (fn == "and")) return args[i];
      return args.back();
    }
    if (fn == "len") {
      if (auto w = want(1); !w) return w.error();
      if (args[0].k == Val::Str) return Val::integer(static_cast<int64_t>(args[0].s.size()));
      if (args[0].k == Val::Map) return Val::integer(static_cast<int64_t>(args[0].m->size()));
      return make_error(std::string("len of type ") + kind_name(args[0]));
    }
    if (fn == "index") {
      if (auto w = want(2); !w) return w.error();
      if (args[0].k != Val::Map || args[1].k != Val::Str)
        return make_error("index: expected a map and a string key");
      return field(args[0], args[1].s);
    }
    if (fn == "externalURL") return Val::str(std::string(d_.external_url));
    if (fn == "pathPrefix") {
      std::string_view u = d_.external_url;
      auto scheme = u.find("://");
      auto slash = u.find('/', scheme == std::string_view::npos ? 0 : scheme + 3);
      return Val::str(slash == std::string_view::npos ? std::string()
                                                      : std::string(u.substr(slash)));
    }
    if (fn == "urlquery") {
      std::string s;
      for (const auto& a : args) s += go_value_string(a);
      return Val::str(url_query_escape(s));
    }
    return make_error("function \"" + fn + "\" not defined");
  }

  const TemplateData& d_;
  const Labels empty_;
};

}  // namespace

std::string go_float_v(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  std::string digits;
  int exp10 = 0;
  shortest_digits(v, digits, exp10);
  std::string out = v < 0 ? "-" : "";
  if (exp10 < -4 || exp10 >= 6) {
    out += digits[0];
    if (digits.size() > 1) out += "." + digits.substr(1);
    char e[16];
    std::snprintf(e, sizeof e, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    return out + e;
  }
  if (exp10 < 0) return out + "0." + std::string(static_cast<size_t>(-exp10 - 1), '0') + digits;
  auto int_len = static_cast<size_t>(exp10 + 1);
  if (digits.size() <= int_len) return out + digits + std::string(int_len - digits.size(), '0');
  return out + digits.substr(0, int_len) + "." + digits.substr(int_len);
}

std::string humanize(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return go_4g(v);
  static const char* const big[] = {"k", "M", "G", "T", "P", "E", "Z", "Y"};
  static const char* const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  if (std::fabs(v) >= 1) {
    for (const char* p : big) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return go_4g(v) + prefix;
  }
  for (const char* p : small) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return go_4g(v) + prefix;
}

std::string humanize1024(double v) {
  if (std::fabs(v) <= 1 || std::isnan(v) || std::isinf(v)) return go_4g(v);
  static const char* const big[] = {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"};
  std::string prefix;
  for (const char* p : big) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return go_4g(v) + prefix;
}

std::string humanize_duration(double v) {
  if (std::isnan(v) || std::isinf(v)) return go_4g(v);
  if (v == 0) return go_4g(v) + "s";
  char buf[128];
  if (std::fabs(v) >= 1) {
    const char* sign = "";
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    auto d = static_cast<int64_t>(v);
    long long seconds = d % 60, minutes = (d / 60) % 60, hours = (d / 60 / 60) % 24,
              days = d / 60 / 60 / 24;
    if (days != 0) {
      std::snprintf(buf, sizeof buf, "%s%lldd %lldh %lldm %llds", sign, days, hours, minutes,
                    seconds);
      return buf;
    }
    if (hours != 0) {
      std::snprintf(buf, sizeof buf, "%s%lldh %lldm %llds", sign, hours, minutes, seconds);
      return buf;
    }
    if (minutes != 0) {
      std::snprintf(buf, sizeof buf, "%s%lldm %llds", sign, minutes, seconds);
      return buf;
    }
    return std::string(sign) + go_4g(v) + "s";
  }
  static const char* const small[] = {"m", "u", "n", "p", "f", "a", "z", "y"};
  std::string prefix;
  for (const char* p : small) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return go_4g(v) + prefix + "s";
}

std::string humanize_percentage(double v) { return go_4g(v * 100) + "%"; }

Result<AlertTemplate> AlertTemplate::parse(std::string_view text) {
  Parser p(text);
  auto r = p.parse();
  if (!r) return r.error();
  AlertTemplate t;
  t.root_ = std::move(*r);
  return t;
}

bool AlertTemplate::is_literal() const {
  if (!root_) return true;
  for (const auto& c : root_->children)
    if (c->k != Node::Text) return false;
  return true;
}

Result<std::string> AlertTemplate::expand(const TemplateData& data) const {
  std::string out;
  if (!root_) return out;
  Exec e(data);
  auto r = e.run(*root_, out);
  if (!r) return r.error();
  return out;
}

}  // namespace moni::rules
