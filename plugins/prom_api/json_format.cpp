#include "json_format.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "promql/functions.hpp"

namespace moni::prom_api {

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char c : s) {
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
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

void append_labels(std::string& out, const Labels& ls) {
  out.push_back('{');
  for (size_t i = 0; i < ls.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, ls[i].name);
    out.push_back(':');
    append_json_string(out, ls[i].value);
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
// As promql::fn::format_float (Go's FormatFloat(v, 'f', -1, 64)).
void append_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[512];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
    out.append(buf, r.ptr);
  }
}

void append_point(std::string& out, int64_t t, double v) {
  out.push_back('[');
  append_timestamp(out, t);
  out += ",\"";
  append_float(out, v);
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
      append_point(out, r.time_ms, v.scalar);
      break;
    case ValueType::String:
      out += R"("string","result":[)";
      append_timestamp(out, r.time_ms);
      out.push_back(',');
      append_json_string(out, v.str);
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
              append_float(out, pts[k].v);
              out += "\"]";
              continue;
            }
          }
          out.append(stamps, stamp_at[2 * k], stamp_at[2 * k + 1] - stamp_at[2 * k]);
          append_float(out, pts[k].v);
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
  append_json_string(out, error_type);
  out += R"(,"error":)";
  append_json_string(out, message);
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
