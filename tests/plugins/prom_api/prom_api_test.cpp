// The prom_api plugin through the harness: JSON envelope, parameters, error
// types and HTTP codes, metadata endpoints, float formatting.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "memory_store.hpp"
#include "plugin_harness.hpp"

namespace {

using moni::promql::test_support::MemoryStore;
using moni::testing::PluginHarness;
using nlohmann::json;

class PromApi : public ::testing::Test {
 protected:
  void SetUp() override {
    auto lbl = [](std::initializer_list<moni::Label> l) { return moni::Labels(l); };
    for (int64_t t = 0; t <= 600; t += 15) {
      store.add(lbl({{"__name__", "up"}, {"instance", "a"}, {"job", "node"}}), t * 1000, 1);
      store.add(lbl({{"__name__", "up"}, {"instance", "b"}, {"job", "node"}}), t * 1000, 0);
      store.add(lbl({{"__name__", "req_total"}, {"job", "api"}}), t * 1000, static_cast<double>(t));
    }
    auto h = PluginHarness::load(moni::testing::plugin_path("prom_api"), "query_timeout = \"10s\"");
    ASSERT_TRUE(h.ok()) << h.error().message;
    harness = std::move(h.value());
    harness->set_storage(store.reader());
    harness->set_now_ms(300000);
    ASSERT_TRUE(harness->start().ok());
  }
  json get(const std::string& target, unsigned want_status = 200) {
    auto r = harness->http("GET", target);
    EXPECT_EQ(r.status, want_status) << target << ": " << r.body;
    EXPECT_EQ(r.header("content-type"), "application/json");
    return json::parse(r.body);
  }
  MemoryStore store;
  std::unique_ptr<PluginHarness> harness;
};

TEST_F(PromApi, GrafanaSaveAndTest) {
  auto r = harness->http("GET", "/api/v1/query?query=1%2B1&time=1700000000.5");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body,
            R"({"status":"success","data":{"resultType":"scalar","result":[1700000000.500,"2"]}})");
}

TEST_F(PromApi, InstantVectorAndDefaultTime) {
  auto j = get("/api/v1/query?query=up");
  ASSERT_EQ(j["data"]["resultType"], "vector");
  ASSERT_EQ(j["data"]["result"].size(), 2u);
  EXPECT_EQ(j["data"]["result"][0]["metric"],
            json({{"__name__", "up"}, {"instance", "a"}, {"job", "node"}}));
  EXPECT_EQ(j["data"]["result"][0]["value"], json::array({300, "1"}));  // the harness clock
}

TEST_F(PromApi, RangeQueryGetAndFormPost) {
  auto j = get("/api/v1/query_range?query=rate(req_total%5B1m%5D)&start=120&end=240&step=1m");
  ASSERT_EQ(j["data"]["resultType"], "matrix");
  ASSERT_EQ(j["data"]["result"].size(), 1u);
  EXPECT_EQ(j["data"]["result"][0]["metric"], json({{"job", "api"}}));
  EXPECT_EQ(j["data"]["result"][0]["values"], json::parse(R"([[120,"1"],[180,"1"],[240,"1"]])"));
  auto r =
      harness->http("POST", "/api/v1/query_range",
                    "query=sum(up)&start=1970-01-01T00:01:00Z&end=1970-01-01T00:02:00.000Z&step=30",
                    {{"content-type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(r.status, 200u) << r.body;
  auto p = json::parse(r.body);
  EXPECT_EQ(p["data"]["result"][0]["values"], json::parse(R"([[60,"1"],[90,"1"],[120,"1"]])"));
}

TEST_F(PromApi, FloatsAndSpecialValuesAsPrometheusWritesThem) {
  auto val = [&](const std::string& q) {
    return get("/api/v1/query?time=0&query=" + q)["data"]["result"][1].get<std::string>();
  };
  EXPECT_EQ(val("1e21"), "1000000000000000000000");
  EXPECT_EQ(val("0.1%2B0.2"), "0.30000000000000004");
  EXPECT_EQ(val("1e-7"), "0.0000001");
  EXPECT_EQ(val("NaN"), "NaN");
  EXPECT_EQ(val("1/0"), "+Inf");
  EXPECT_EQ(val("-1/0"), "-Inf");
  EXPECT_EQ(get("/api/v1/query?time=0&query=%22s%22")["data"],
            json::parse(R"({"resultType":"string","result":[0,"s"]})"));
}

TEST_F(PromApi, ErrorsHavePrometheusTypesAndCodes) {
  auto j = get("/api/v1/query?query=sum(", 400);
  EXPECT_EQ(j["status"], "error");
  EXPECT_EQ(j["errorType"], "bad_data");
  EXPECT_EQ(j["error"], "invalid parameter \"query\": 1:5: parse error: unclosed left parenthesis");
  EXPECT_EQ(get("/api/v1/query?query=up&time=yesterday", 400)["error"],
            "invalid parameter \"time\": Invalid time value for 'time': cannot parse "
            "\"yesterday\" to a valid timestamp");
  EXPECT_EQ(get("/api/v1/query_range?query=up&start=10&end=5&step=1", 400)["error"],
            "end timestamp must not be before start time");
  EXPECT_EQ(
      get("/api/v1/query_range?query=up&start=0&end=5&step=0", 400)["error"],
      "zero or negative query resolution step widths are not accepted. Try a positive integer");
  EXPECT_EQ(get("/api/v1/query_range?query=up&start=0&end=100000&step=1", 400)["error"],
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
            "resolution (?step=XX)");
  EXPECT_EQ(get("/api/v1/query_range?query=up&end=5&step=1", 400)["errorType"], "bad_data");
  auto e = get("/api/v1/query?time=0&query=up%2Bon(job)up", 422);
  EXPECT_EQ(e["errorType"], "execution");
  EXPECT_EQ(get("/api/v1/query?query=up&timeout=abc", 400)["errorType"], "bad_data");
  EXPECT_EQ(get("/api/v1/nope", 404)["errorType"], "not_found");
  harness->set_storage(nullptr);
  EXPECT_EQ(get("/api/v1/query?query=up", 503)["errorType"], "unavailable");
}

TEST_F(PromApi, SeriesLabelsAndValues) {
  auto s = get("/api/v1/series?match[]=up&match[]=%7Bjob%3D%22api%22%7D&start=0&end=600");
  EXPECT_EQ(s["data"], json::parse(R"([{"__name__":"req_total","job":"api"},
      {"__name__":"up","instance":"a","job":"node"},{"__name__":"up","instance":"b","job":"node"}])"));
  EXPECT_EQ(get("/api/v1/series", 400)["error"], "no match[] parameter provided");
  EXPECT_EQ(get("/api/v1/series?match[]=sum(up)", 400)["errorType"], "bad_data");
  EXPECT_EQ(get("/api/v1/labels")["data"], json::parse(R"(["__name__","instance","job"])"));
  EXPECT_EQ(get("/api/v1/labels?match[]=req_total")["data"], json::parse(R"(["__name__","job"])"));
  EXPECT_EQ(get("/api/v1/label/job/values")["data"], json::parse(R"(["api","node"])"));
  EXPECT_EQ(get("/api/v1/label/__name__/values?limit=1")["data"], json::parse(R"(["req_total"])"));
  EXPECT_EQ(get("/api/v1/label/instance/values?match[]=up%7Binstance%3D%22b%22%7D")["data"],
            json::parse(R"(["b"])"));
  EXPECT_EQ(get("/api/v1/label/1bad/values", 400)["error"], "invalid label name: \"1bad\"");
}

TEST_F(PromApi, StatusEndpoints) {
  EXPECT_EQ(get("/api/v1/status/buildinfo")["data"]["version"], "2.42.0");
  EXPECT_EQ(get("/api/v1/status/runtimeinfo")["status"], "success");
  EXPECT_EQ(get("/api/v1/query_exemplars?query=up")["data"], json::array());
  EXPECT_EQ(get("/api/v1/metadata")["data"], json::object());
}

TEST(PromApiConfig, RejectsUnknownKeys) {
  auto h = PluginHarness::load(moni::testing::plugin_path("prom_api"), "bogus = 1");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("bogus"), std::string::npos) << h.error().message;
}

// Hostile parameters, answered as Prometheus 2.42 answers them (checked
// against a running 2.42), or with a clean error where it misbehaves.
TEST_F(PromApi, HostileParametersGetPrometheusErrors) {
  auto err = [&](const std::string& target) {
    return get(target, 400)["error"].get<std::string>();
  };
  // Bad times: wrapped as parseTimeParam wraps them, except in query_range.
  EXPECT_EQ(err("/api/v1/series?match[]=up&start=abc"),
            "invalid parameter \"start\": Invalid time value for 'start': cannot parse \"abc\" "
            "to a valid timestamp");
  EXPECT_EQ(err("/api/v1/labels?end=abc"),
            "invalid parameter \"end\": Invalid time value for 'end': cannot parse \"abc\" to a "
            "valid timestamp");
  EXPECT_EQ(err("/api/v1/query_range?query=1&start=abc&end=1&step=1"),
            "invalid parameter \"start\": cannot parse \"abc\" to a valid timestamp");
  // Times whose milliseconds would overflow the engine's arithmetic
  // (Prometheus wraps them around and answers nonsense).
  EXPECT_EQ(err("/api/v1/query?query=up&time=1e16"),
            "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"1e16\" to "
            "a valid timestamp");
  EXPECT_EQ(err("/api/v1/query_range?query=up&start=-2e15&end=2e15&step=1e9"),
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query "
            "resolution (?step=XX)");
  EXPECT_EQ(err("/api/v1/query_range?query=1&start=0&end=100&step=1e20"),
            "invalid parameter \"step\": cannot parse \"1e20\" to a valid duration. It overflows "
            "int64");
  EXPECT_EQ(err("/api/v1/query?query=up%5B293y%5D"),
            "invalid parameter \"query\": 1:4: parse error: duration out of range");
  EXPECT_EQ(err("/api/v1/query?query=up%20%40%201e20"),
            "invalid parameter \"query\": 1:1: parse error: timestamp out of bounds for @ "
            "modifier: 100000000000000000000.000000");
  // The largest accepted times with the largest offsets evaluate (UBSan
  // watches the arithmetic).
  EXPECT_EQ(get("/api/v1/query?query=up%20offset%20-292y&time=2.3e15")["status"], "success");
  EXPECT_EQ(get("/api/v1/query?query=rate(up%5B292y%5D%20%40%20-9e15%20offset%20292y)&time=-2.3e15")
                ["status"],
            "success");
  EXPECT_EQ(get("/api/v1/query_range?query=up%20offset%20292y&start=-2.3e15&end=-2.299999999e15&"
                "step=1000")["status"],
            "success");
  // match[] as ParseMetricSelector words it.
  EXPECT_EQ(err("/api/v1/series?match[]=%7B%7D"),
            "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher");
  EXPECT_EQ(err("/api/v1/series?match[]=rate(up%5B1m%5D)"),
            "invalid parameter \"match[]\": 1:5: parse error: unexpected \"(\"");
  EXPECT_EQ(err("/api/v1/series?match[]="),
            "invalid parameter \"match[]\": 1:1: parse error: unexpected end of input");
  // metadata's limit as 2.42: a number, 0 for nothing, negative for all.
  EXPECT_EQ(err("/api/v1/metadata?limit=abc"), "limit must be a number");
  EXPECT_EQ(get("/api/v1/metadata?limit=0")["data"], json::object());
  EXPECT_EQ(get("/api/v1/metadata?limit=-5")["status"], "success");
}

// Megabytes of "(" in a form body: a parse error, not a stack overflow;
// 32 MB of tokens: refused before they take gigabytes.
TEST_F(PromApi, DeeplyNestedOrHugeQueryInAFormBodyIsAParseError) {
  auto post = [&](const std::string& q) {
    return harness->http("POST", "/api/v1/query", "query=" + q,
                         {{"content-type", "application/x-www-form-urlencoded"}});
  };
  auto r = post(std::string(500000, '(') + "1");
  ASSERT_EQ(r.status, 400u) << r.body.substr(0, 200);
  EXPECT_NE(r.body.find("expression nested too deeply"), std::string::npos)
      << r.body.substr(0, 200);
  std::string wide;
  for (int i = 0; i < 4'000'000; ++i) wide += "1,";
  r = post("vector(" + wide + "1)");
  ASSERT_EQ(r.status, 400u) << r.body.substr(0, 200);
  EXPECT_NE(r.body.find("query too long: more than 1000000 tokens"), std::string::npos)
      << r.body.substr(0, 200);
}

}  // namespace
