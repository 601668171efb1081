#include "json_format.hpp"

#include <cstdio>

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

void append_timestamp(std::string& out, int64_t t) {
  if (t < 0) {
    out.push_back('-');
    t = -t;
  }
  out += std::to_string(t / 1000);
  int64_t frac = t % 1000;
  if (frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(frac));
    out += buf;
  }
}

namespace {
void append_point(std::string& out, int64_t t, double v) {
  out.push_back('[');
  append_timestamp(out, t);
  out += ",\"";
  out += promql::fn::format_float(v);
  out += "\"]";
}
}  // namespace

std::string query_success(const promql::QueryResult& r) {
  using promql::ValueType;
  std::string out = R"({"status":"success","data":{"resultType":)";
  const auto& v = r.value;
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
      out += R"("matrix","result":[)";
      for (size_t i = 0; i < v.mat.size(); ++i) {
        if (i) out.push_back(',');
        out += R"({"metric":)";
        append_labels(out, *v.mat[i].labels);
        out += R"(,"values":[)";
        for (size_t k = 0; k < v.mat[i].points.size(); ++k) {
          if (k) out.push_back(',');
          append_point(out, v.mat[i].points[k].t, v.mat[i].points[k].v);
        }
        out += "]}";
      }
      out.push_back(']');
  }
  out += "}}";
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
