#include "json_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "promql/functions.hpp"

namespace moni::prom_api {

namespace {
// Bytes copied as they are: ASCII from 0x20 (DEL included) except '"' and
// '\\' and, with `html` (Go's encoding/json default, which Prometheus'
// jsoniter config keeps), '<', '>' and '&'.
struct PlainTable {
  bool plain[256] = {};
  constexpr explicit PlainTable(bool html) {
    for (int c = 0x20; c < 0x80; ++c) plain[c] = true;
    plain[static_cast<unsigned char>('"')] = false;
    plain[static_cast<unsigned char>('\\')] = false;
    if (html) {
      plain[static_cast<unsigned char>('<')] = false;
      plain[static_cast<unsigned char>('>')] = false;
      plain[static_cast<unsigned char>('&')] = false;
    }
  }
};
constexpr PlainTable kPlain(false), kPlainHtml(true);

// Length of the valid UTF-8 sequence at s[i] (a byte >= 0x80), 0 if
// invalid (Go's rules: no overlong forms, no surrogates, at most U+10FFFF).
size_t utf8_len(std::string_view s, size_t i, uint32_t& cp) {
  auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF) {
    if (!cont(1)) return 0;
    cp = ((c & 0x1Fu) << 6) | (b(1) & 0x3Fu);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    cp = ((c & 0x0Fu) << 12) | ((b(1) & 0x3Fu) << 6) | (b(2) & 0x3Fu);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return 3;
  }
  if (c >= 0xF0 && c <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    cp = ((c & 0x07u) << 18) | ((b(1) & 0x3Fu) << 12) | ((b(2) & 0x3Fu) << 6) | (b(3) & 0x3Fu);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}
}  // namespace

void append_json_string(std::string& out, std::string_view s, bool html) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool* plain = (html ? kPlainHtml : kPlain).plain;
  out.push_back('"');
  size_t i = 0, n = s.size();
  while (i < n) {
    size_t run = i;
    while (run < n && plain[static_cast<unsigned char>(s[run])]) ++run;
    out.append(s.data() + i, run - i);
    i = run;
    if (i == n) break;
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      uint32_t cp = 0;
      size_t len = utf8_len(s, i, cp);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else if (cp == 0x2028 || cp == 0x2029) {
        out += cp == 0x2028 ? "\\u2028" : "\\u2029";
        i += len;
      } else {
        out.append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    ++i;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default: {  // other control characters, '<', '>', '&'
        char buf[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
        out.append(buf, sizeof buf);
      }
    }
  }
  out.push_back('"');
}

void append_labels(std::string& out, const Labels& ls) {
  out.push_back('{');
  for (size_t i = 0; i < ls.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, ls[i].name, true);
    out.push_back(':');
    append_json_string(out, ls[i].value, true);
  }
  out.push_back('}');
}

// Range results hold millions of points: no allocation per point (a
// stack buffer and to_chars instead of std::to_string / format_float).
void append_timestamp(std::string& out, int64_t t) {
  char buf[32];
  char* p = buf;
  if (t < 0) {
    *p++ = '-';
    t = -t;
  }
  p = std::to_chars(p, buf + sizeof buf, t / 1000).ptr;
  if (int64_t frac = t % 1000; frac != 0) {
    *p++ = '.';
    *p++ = static_cast<char>('0' + frac / 100);
    *p++ = static_cast<char>('0' + frac / 10 % 10);
    *p++ = static_cast<char>('0' + frac % 10);
  }
  out.append(buf, p);
}

namespace {
// A scalar result's value: Go's FormatFloat(v, 'f', -1, 64) (promql.Scalar's
// MarshalJSON), shortest round-trip digits, never an exponent.
void append_scalar_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[promql::fn::kFixedMax];
    out.append(buf, promql::fn::format_fixed(buf, v));
  }
}

// A vector's or matrix's sample value, as Prometheus' API (jsoniter's float
// encoder): 'f' formatting, but 'e' (1e+21, 1e-07, shortest digits, two
// exponent digits at least) when 0 < |v| < 1e-6 or |v| >= 1e21.
void append_sample_value(std::string& out, double v) {
  double a = std::fabs(v);
  if (a != 0 && (a < 1e-6 || a >= 1e21) && std::isfinite(v)) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    out.append(buf, r.ptr);
  } else {
    append_scalar_value(out, v);
  }
}

void append_point(std::string& out, int64_t t, double v, bool scalar = false) {
  out.push_back('[');
  append_timestamp(out, t);
  out += ",\"";
  if (scalar)
    append_scalar_value(out, v);
  else
    append_sample_value(out, v);
  out += "\"]";
}

// A close upper estimate of a matrix's JSON size: growing a string of tens
// of MB by doubling copies it repeatedly into freshly faulted pages (a third
// of a large range query's time before this).
size_t matrix_size_estimate(const promql::Matrix& m) {
  size_t n = 64;
  for (const auto& s : m) {
    n += 32 + s.points.size() * 40;
    for (const auto& l : *s.labels) n += l.name.size() + l.value.size() + 6;
  }
  return n;
}
}  // namespace

void write_query_success(promql::QueryResult& r, const std::function<void(std::string_view)>& sink,
                         size_t chunk) {
  using promql::ValueType;
  std::string out = R"({"status":"success","data":{"resultType":)";
  auto& v = r.value;
  switch (v.type) {
    case ValueType::Scalar:
      out += R"("scalar","result":)";
      append_point(out, r.time_ms, v.scalar, true);
      break;
    case ValueType::String:
      out += R"("string","result":[)";
      append_timestamp(out, r.time_ms);
      out.push_back(',');
      append_json_string(out, v.str, true);
      out.push_back(']');
      break;
    case ValueType::Vector:
      out += R"("vector","result":[)";
      for (size_t i = 0; i < v.vec.size(); ++i) {
        if (i) out.push_back(',');
        out += R"({"metric":)";
        append_labels(out, *v.vec[i].labels);
        out += R"(,"value":)";
        append_point(out, r.time_ms, v.vec[i].v);
        out.push_back('}');
      }
      out.push_back(']');
      break;
    default:
      // Large matrices go out in pieces, each series released once written:
      // the whole JSON never exists twice, nor next to the whole matrix.
      out.reserve(std::min(matrix_size_estimate(v.mat),
                           chunk < (SIZE_MAX >> 1) ? chunk + (chunk >> 2) : chunk));
      out += R"("matrix","result":[)";
      std::vector<int64_t> stamp_t;
      std::vector<uint32_t> stamp_at;  // [begin, end) of each prefix in `stamps`
      std::string stamps;
      for (size_t i = 0; i < v.mat.size(); ++i) {
        if (i) out.push_back(',');
        out += R"({"metric":)";
        append_labels(out, *v.mat[i].labels);
        out += R"(,"values":[)";
        const auto& pts = v.mat[i].points;
        for (size_t k = 0; k < pts.size(); ++k) {
          if (k) out.push_back(',');
          // Every series of a range result has the same step timestamps:
          // each `[t,"` prefix is formatted once (by position).
          if (k >= stamp_t.size() || stamp_t[k] != pts[k].t) {
            if (k == stamp_t.size()) {
              stamp_t.push_back(pts[k].t);
              size_t at = stamps.size();
              stamps.push_back('[');
              append_timestamp(stamps, pts[k].t);
              stamps += ",\"";
              stamp_at.push_back(static_cast<uint32_t>(at));
              stamp_at.push_back(static_cast<uint32_t>(stamps.size()));
            } else {
              out.push_back('[');
              append_timestamp(out, pts[k].t);
              out += ",\"";
              append_sample_value(out, pts[k].v);
              out += "\"]";
              continue;
            }
          }
          out.append(stamps, stamp_at[2 * k], stamp_at[2 * k + 1] - stamp_at[2 * k]);
          append_sample_value(out, pts[k].v);
          out += "\"]";
        }
        out += "]}";
        v.mat[i] = {};
        if (out.size() >= chunk) {
          sink(out);
          out.clear();
        }
      }
      out.push_back(']');
  }
  out += "}}";
  sink(out);
}

std::string query_success(const promql::QueryResult& r) {
  promql::QueryResult copy = r;
  std::string out;
  write_query_success(
      copy, [&](std::string_view s) { out += s; }, SIZE_MAX);
  return out;
}

std::string success(std::string_view data_json) {
  std::string out = R"({"status":"success","data":)";
  out += data_json;
  out.push_back('}');
  return out;
}

std::string error_body(std::string_view error_type, std::string_view message) {
  std::string out = R"({"status":"error","errorType":)";
  append_json_string(out, error_type, true);
  out += R"(,"error":)";
  append_json_string(out, message, true);
  out.push_back('}');
  return out;
}

unsigned http_status(std::string_view t) {
  if (t == "bad_data") return 400;
  if (t == "execution") return 422;
  if (t == "canceled" || t == "timeout" || t == "unavailable") return 503;
  if (t == "not_found") return 404;
  return 500;
}

}  // namespace moni::prom_api
