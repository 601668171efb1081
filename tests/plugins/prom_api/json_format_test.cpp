// The API's JSON writer: strings escaped as Go's encoding/json, values
// formatted as Prometheus' API writes them (checked against Prometheus 2.42
// itself by PromqlDiff.BodiesByteForByte).
#include "json_format.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace {

using namespace moni::prom_api;

std::string js(std::string_view s) {
  std::string out;
  append_json_string(out, s, true);
  return out;
}

TEST(JsonFormat, StringsAsGoEncodingJson) {
  EXPECT_EQ(js("plain ascii ~\x7f"), "\"plain ascii ~\x7f\"");
  EXPECT_EQ(js("q\"b\\n\nr\rt\t"), R"("q\"b\\n\nr\rt\t")");
  EXPECT_EQ(js("\b\f\x01\x1f"), R"("\u0008\u000c\u0001\u001f")");
  EXPECT_EQ(js("<a&b>"), R"("\u003ca\u0026b\u003e")");
  std::string readable;  // without `html` (TOML of `rules import`)
  append_json_string(readable, "up > 0 & <\xff");
  EXPECT_EQ(readable, R"("up > 0 & <\ufffd")");
  EXPECT_EQ(js("\xe2\x80\xa8\xe2\x80\xa9"), R"("\u2028\u2029")");
  // Valid multi-byte UTF-8 as is, each invalid byte one U+FFFD.
  EXPECT_EQ(js("\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd"), "\"\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd\"");
  EXPECT_EQ(js("a\xff"
               "b"),
            R"("a\ufffdb")");
  EXPECT_EQ(js("\xe2\x82<"), R"("\ufffd\ufffd\u003c")");               // truncated sequence
  EXPECT_EQ(js("\xed\xa0\x80"), R"("\ufffd\ufffd\ufffd")");            // surrogate
  EXPECT_EQ(js("\xc0\xaf"), R"("\ufffd\ufffd")");                      // overlong
  EXPECT_EQ(js("\xf4\x90\x80\x80"), R"("\ufffd\ufffd\ufffd\ufffd")");  // > U+10FFFF
  EXPECT_EQ(js("\xc3"), R"("\ufffd")");                                // at the end
}

std::string vector_value(double v) {
  moni::promql::QueryResult r;
  r.value.type = moni::promql::ValueType::Vector;
  r.value.vec.push_back(
      moni::promql::Sample{std::make_shared<const moni::Labels>(moni::Labels{}), v, 0});
  std::string body = query_success(r);
  size_t a = body.find("[0,\"") + 4;
  return body.substr(a, body.find('"', a) - a);
}

std::string scalar_value(double v) {
  moni::promql::QueryResult r;
  r.value.type = moni::promql::ValueType::Scalar;
  r.value.scalar = v;
  std::string body = query_success(r);
  size_t a = body.find("[0,\"") + 4;
  return body.substr(a, body.find('"', a) - a);
}

TEST(JsonFormat, SampleValuesAsPrometheusApi) {
  EXPECT_EQ(vector_value(1e20), "100000000000000000000");
  EXPECT_EQ(vector_value(9.99999e20), "999999000000000000000");
  EXPECT_EQ(vector_value(1e21), "1e+21");
  EXPECT_EQ(vector_value(-1e300), "-1e+300");
  EXPECT_EQ(vector_value(1.7976931348623157e308), "1.7976931348623157e+308");
  EXPECT_EQ(vector_value(123456789012345678901.0), "123456789012345680000");
  EXPECT_EQ(vector_value(1e-6), "0.000001");
  EXPECT_EQ(vector_value(1e-7), "1e-07");
  EXPECT_EQ(vector_value(9.9999e-7), "9.9999e-07");
  EXPECT_EQ(vector_value(5e-324), "5e-324");
  EXPECT_EQ(vector_value(0.000001234), "0.000001234");
  EXPECT_EQ(vector_value(-0.0), "-0");
  EXPECT_EQ(vector_value(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(vector_value(NAN), "NaN");
  EXPECT_EQ(vector_value(INFINITY), "+Inf");
  EXPECT_EQ(vector_value(-INFINITY), "-Inf");
  // Scalars: Go's FormatFloat(v, 'f', -1, 64), never an exponent.
  EXPECT_EQ(scalar_value(1e21), "1000000000000000000000");
  EXPECT_EQ(scalar_value(1e-7), "0.0000001");
  EXPECT_EQ(scalar_value(-1e22), "-10000000000000000000000");
  EXPECT_EQ(scalar_value(5e-324).size(), 2 + 323 + 1u);
}

}  // namespace
