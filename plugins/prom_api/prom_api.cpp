// prom_api: serves Prometheus's HTTP query API (/api/v1/...) over a moni
// storage instance, so Grafana and promtool read moni as they read Prometheus.
#include <algorithm>
#include <charconv>
#include <map>
#include <moni/sdk.hpp>
#include <optional>
#include <set>

#include "api_params.hpp"
#include "json_format.hpp"
#include "promql/engine.hpp"
#include "promql/lexer.hpp"
#include "promql/parser.hpp"
#include "storage_queryable.hpp"

namespace {

using moni::prom_api::error_body;
using moni::prom_api::http_status;

struct ApiError {
  std::string type;
  std::string message;
};

class PromApi : public moni::Output {
 public:
  static constexpr std::string_view plugin_name = "prom_api";
  static constexpr std::string_view plugin_version = "0.1.0";
  static constexpr std::string_view plugin_description =
      "Prometheus HTTP query API (/api/v1/query, query_range, series, labels, ...) with a PromQL "
      "engine";
  static constexpr std::string_view sample_config =
      R"(# storage = ""            # storage instance to query (default: the only one)
# lookback_delta = "5m"    # how far back an instant selector looks for a sample
# query_timeout = "2m"     # upper bound for a query (the timeout parameter may lower it)
# max_samples = 50000000   # samples one query may load
# max_series = 0           # series one selector may select (0: unlimited))";

  PromApi(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "prom_api");
    storage_ = r.string("storage", "");
    opts_.lookback_ms = r.duration_ms("lookback_delta", 5 * 60 * 1000);
    opts_.timeout = std::chrono::milliseconds(r.duration_ms("query_timeout", 2 * 60 * 1000));
    opts_.max_samples = r.integer("max_samples", 50'000'000, 1);
    opts_.max_series = static_cast<size_t>(r.integer("max_series", 0, 0));
    r.finish();
  }

  moni::Result<void> start() override {
    auto r = ctx_.route("/api/v1/", [this](const moni::HttpRequest& req, moni::HttpResponse& resp) {
      handle(req, resp);
    });
    if (!r) return r;
    // Empty rule and alert lists unless a rules instance serves these paths.
    for (const char* path : {"/api/v1/rules", "/api/v1/alerts"}) {
      auto f = ctx_.route_fallback(path, [this](const moni::HttpRequest& req,
                                                moni::HttpResponse& resp) { handle(req, resp); });
      if (!f)
        ctx_.debug(std::string("prom_api: no fallback route for ") + path + ": " +
                   f.error().message);
    }
    return {};
  }

 private:
  void handle(const moni::HttpRequest& req, moni::HttpResponse& resp) {
    std::string body;
    unsigned status = 200;
    try {
      body = dispatch(req, &resp);
      if (body.empty()) return;  // a query result, already streamed to resp
    } catch (const ApiError& e) {
      status = http_status(e.type);
      body = error_body(e.type, e.message);
    }
    resp.status(status);
    resp.header("content-type", "application/json");
    resp.body(body);
  }

  [[noreturn]] static void fail(std::string type, std::string msg) {
    throw ApiError{std::move(type), std::move(msg)};
  }

  moni::StorageClient storage() const {
    auto c = ctx_.storage(storage_);
    if (!c)
      fail("unavailable", storage_.empty()
                              ? "prom_api: no storage instance is configured"
                              : "prom_api: storage instance '" + storage_ + "' not found");
    return *c;
  }

  // Prometheus 2.42 words a bad time "Invalid time value for 'time': ..."
  // where it reads it with parseTimeParam (query's time, the start and end
  // of series, labels and label values), without it in query_range.
  static int64_t time_param(const moni::Params& p, const char* key, int64_t def,
                            bool wrapped = true) {
    auto v = moni::param(p, key);
    if (!v || v->empty()) return def;
    auto t = moni::prom_api::parse_time(*v);
    if (!t)
      fail("bad_data", std::string("invalid parameter \"") + key + "\": " +
                           (wrapped ? std::string("Invalid time value for '") + key + "': " : "") +
                           t.error().message);
    return *t;
  }

  // The response body; empty when a query result went to `stream` already.
  std::string dispatch(const moni::HttpRequest& req, moni::HttpResponse* stream) {
    if (req.method() != "GET" && req.method() != "POST") fail("bad_data", "method not allowed");
    std::string_view path = req.path();
    moni::Params p = req.params();
    if (path == "/api/v1/query") return query(p, false, stream);
    if (path == "/api/v1/query_range") return query(p, true, stream);
    if (path == "/api/v1/series") return series(p);
    if (path == "/api/v1/labels") return labels(p);
    if (path.starts_with("/api/v1/label/") && path.ends_with("/values")) {
      std::string_view name = path.substr(14, path.size() - 14 - 7);
      auto decoded = moni::url_decode(name, false);
      return label_values(decoded ? *decoded : std::string(name), p);
    }
    if (path == "/api/v1/metadata") return metadata(p);
    if (path == "/api/v1/status/buildinfo")
      return moni::prom_api::success(
          R"({"version":"2.42.0","revision":"moni-prom_api-0.1.0","branch":"moni","buildUser":"moni","buildDate":"","goVersion":"none"})");
    if (path == "/api/v1/status/runtimeinfo")
      return moni::prom_api::success(
          R"({"startTime":"","CWD":"","reloadConfigSuccess":true,"lastConfigTime":"","corruptionCount":0,"goroutineCount":0,"GOMAXPROCS":0,"GOGC":"","GODEBUG":"","storageRetention":""})");
    if (path == "/api/v1/status/flags") return moni::prom_api::success("{}");
    if (path == "/api/v1/query_exemplars") return moni::prom_api::success("[]");
    if (path == "/api/v1/rules") return moni::prom_api::success(R"({"groups":[]})");
    if (path == "/api/v1/alerts") return moni::prom_api::success(R"({"alerts":[]})");
    fail("not_found", "unknown API endpoint " + std::string(path));
  }

  std::string query(const moni::Params& p, bool is_range, moni::HttpResponse* stream) {
    auto q = moni::param(p, "query");
    std::string qs = q ? *q : "";
    moni::promql::QueryOptions o = opts_;
    if (auto to = moni::param(p, "timeout"); to && !to->empty()) {
      auto d = moni::prom_api::parse_duration(*to);
      if (!d) fail("bad_data", "invalid parameter \"timeout\": " + d.error().message);
      o.timeout = std::min(o.timeout, std::chrono::milliseconds(*d));
    }
    int64_t start, end, step = 0;
    if (is_range) {
      auto s = moni::param(p, "start"), e = moni::param(p, "end");
      start = time_param(p, "start", 0, false);
      if (!s || s->empty())
        fail("bad_data", "invalid parameter \"start\": cannot parse \"\" to a valid timestamp");
      if (!e || e->empty())
        fail("bad_data", "invalid parameter \"end\": cannot parse \"\" to a valid timestamp");
      end = time_param(p, "end", 0, false);
      if (end < start) fail("bad_data", "end timestamp must not be before start time");
      auto st = moni::param(p, "step");
      auto d = moni::prom_api::parse_duration(st ? *st : "");
      if (!d) fail("bad_data", "invalid parameter \"step\": " + d.error().message);
      step = *d;
      if (step <= 0)
        fail("bad_data",
             "zero or negative query resolution step widths are not accepted. Try a positive "
             "integer");
      if ((end - start) / step > 11000)
        fail("bad_data",
             "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the "
             "query resolution (?step=XX)");
    } else {
      start = end = time_param(p, "time", ctx_.now_ms());
    }
    // Prometheus prefixes an instant query's parse errors with the
    // parameter, not a range query's.
    std::string prefix = is_range ? "" : "invalid parameter \"query\": ";
    auto expr = moni::promql::parse(qs);
    if (!expr) fail("bad_data", prefix + expr.error().message);
    moni::promql::StorageQueryable sq(storage());
    moni::promql::Engine engine(sq, o);
    auto res = engine.exec(**expr, start, end, step, !is_range);
    if (!res.ok()) {
      std::string msg = res.message;
      if (res.error == moni::promql::ErrorType::BadData) msg = prefix + msg;
      fail(moni::promql::error_type_name(res.error), msg);
    }
    if (!stream) return moni::prom_api::query_success(res);
    // Range results can be GBs of JSON: written to the host piece by piece.
    stream->status(200);
    stream->header("content-type", "application/json");
    moni::prom_api::write_query_success(res, [&](std::string_view s) { stream->body(s); });
    return {};
  }

  static std::vector<std::vector<moni::Matcher>> matcher_sets(const moni::Params& p) {
    std::vector<std::vector<moni::Matcher>> out;
    for (const auto& m : moni::params_all(p, "match[]")) {
      auto e = moni::promql::parse(m);
      // Prometheus parses match[] with ParseMetricSelector: a selector and
      // nothing after it, in its own words.
      if (!e && e.error().message.ends_with("must contain at least one non-empty matcher"))
        fail("bad_data",
             "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher");
      if (!e || (*e)->kind != moni::promql::ExprKind::VectorSelector) {
        if (auto after = after_selector(m))
          fail("bad_data", "invalid parameter \"match[]\": " + *after);
        fail("bad_data", "invalid parameter \"match[]\": " + e.error().message);
      }
      out.push_back((*e)->matchers);
    }
    return out;
  }

  // Prometheus's error for a match[] that is a selector followed by more
  // ("rate(up[1m])": `1:5: parse error: unexpected "("`), or for an empty
  // one; nullopt when the text does not start with a selector.
  static std::optional<std::string> after_selector(std::string_view m) {
    auto toks = moni::promql::lex(m);
    if (toks.back().type == moni::promql::Tok::Error) return std::nullopt;
    size_t i = 0;
    auto at = [&](const moni::promql::Token& t, const std::string& what) {
      return "1:" + std::to_string(t.pos + 1) + ": parse error: unexpected " + what;
    };
    if (toks[0].type == moni::promql::Tok::End) return at(toks[0], "end of input");
    if (toks[i].type == moni::promql::Tok::Ident) ++i;
    if (i < toks.size() && toks[i].type == moni::promql::Tok::LBrace) {
      while (i < toks.size() && toks[i].type != moni::promql::Tok::RBrace &&
             toks[i].type != moni::promql::Tok::End)
        ++i;
      if (i < toks.size() && toks[i].type == moni::promql::Tok::RBrace) ++i;
    }
    if (i == 0 || i >= toks.size() || toks[i].type == moni::promql::Tok::End) return std::nullopt;
    return at(toks[i], moni::promql::describe(toks[i]));
  }

  std::string series(const moni::Params& p) {
    auto sets = matcher_sets(p);
    if (sets.empty()) fail("bad_data", "no match[] parameter provided");
    int64_t start = time_param(p, "start", moni::prom_api::kMinTimeMs);
    int64_t end = time_param(p, "end", moni::prom_api::kMaxTimeMs);
    auto client = storage();
    std::set<moni::Labels> all;
    for (const auto& ms : sets) {
      auto r = client.select(ms, start, end, false, [&](const moni::SeriesView& s) {
        moni::Labels ls;
        for (const auto& l : s.labels)
          ls.push_back({std::string(moni::sv(l.name)), std::string(moni::sv(l.value))});
        std::sort(ls.begin(), ls.end());
        all.insert(std::move(ls));
        return true;
      });
      if (!r) fail("internal", r.error().message);
    }
    int64_t limit = limit_param(p);
    std::string out = "[";
    int64_t n = 0;
    for (const auto& ls : all) {
      if (limit > 0 && n == limit) break;
      if (n++) out.push_back(',');
      moni::prom_api::append_labels(out, ls);
    }
    out.push_back(']');
    return moni::prom_api::success(out);
  }

  static int64_t limit_param(const moni::Params& p) {
    auto l = moni::param(p, "limit");
    if (!l || l->empty()) return 0;
    try {
      size_t used = 0;
      long long v = std::stoll(*l, &used);
      if (used != l->size() || v < 0) throw std::invalid_argument("limit");
      return v;
    } catch (const std::exception&) {
      fail("bad_data", "invalid parameter \"limit\": cannot parse \"" + *l + "\" to a valid limit");
    }
  }

  static std::string string_list(const std::set<std::string>& s, int64_t limit) {
    std::string out = "[";
    int64_t n = 0;
    for (const auto& x : s) {
      if (limit > 0 && n == limit) break;
      if (n++) out.push_back(',');
      moni::prom_api::append_json_string(out, x, true);
    }
    out.push_back(']');
    return moni::prom_api::success(out);
  }

  std::string labels(const moni::Params& p) {
    auto sets = matcher_sets(p);
    int64_t start = time_param(p, "start", moni::prom_api::kMinTimeMs);
    int64_t end = time_param(p, "end", moni::prom_api::kMaxTimeMs);
    auto client = storage();
    std::set<std::string> names;
    if (sets.empty()) sets.emplace_back();
    for (const auto& ms : sets) {
      auto r = client.label_names(ms, start, end);
      if (!r) fail("internal", r.error().message);
      names.insert(r->begin(), r->end());
    }
    return string_list(names, limit_param(p));
  }

  std::string label_values(const std::string& name, const moni::Params& p) {
    if (!moni::promql::valid_label_name(name))
      fail("bad_data", "invalid label name: \"" + name + "\"");
    auto sets = matcher_sets(p);
    int64_t start = time_param(p, "start", moni::prom_api::kMinTimeMs);
    int64_t end = time_param(p, "end", moni::prom_api::kMaxTimeMs);
    auto client = storage();
    std::set<std::string> values;
    if (sets.empty()) sets.emplace_back();
    for (const auto& ms : sets) {
      auto r = client.label_values(name, ms, start, end);
      if (!r) fail("internal", r.error().message);
      values.insert(r->begin(), r->end());
    }
    return string_list(values, limit_param(p));
  }

  std::string metadata(const moni::Params& p) {
    auto metric = moni::param(p, "metric");
    // 2.42: limit is an int ("limit must be a number"), negative for all,
    // 0 for none.
    int64_t limit = -1;
    if (auto l = moni::param(p, "limit"); l && !l->empty()) {
      const char* b = l->data();
      const char* e = b + l->size();
      if (*b == '+') ++b;
      auto [ptr, ec] = std::from_chars(b, e, limit);
      if (ec != std::errc() || ptr != e || b == e) fail("bad_data", "limit must be a number");
    }
    if (limit == 0) return moni::prom_api::success("{}");
    auto r = storage().metadata(metric ? *metric : "");
    if (!r) fail("internal", r.error().message);
    // Written by hand, not with nlohmann::json: help texts are not
    // checked UTF-8 (dump() would throw), and invalid bytes go out as
    // \ufffd like every other string of the API.
    std::map<std::string, std::vector<const moni::Metadata*>> by_family;
    for (const auto& m : *r) by_family[m.family].push_back(&m);
    std::string data = "{";
    int64_t n = 0;
    for (const auto& [family, list] : by_family) {
      if (limit > 0 && n == limit) break;
      if (n++) data.push_back(',');
      moni::prom_api::append_json_string(data, family, true);
      data += ":[";
      for (size_t i = 0; i < list.size(); ++i) {
        if (i) data.push_back(',');
        data += R"({"type":)";
        moni::prom_api::append_json_string(data, moni::type_name(list[i]->type), true);
        data += R"(,"help":)";
        moni::prom_api::append_json_string(data, list[i]->help, true);
        data += R"(,"unit":)";
        moni::prom_api::append_json_string(data, list[i]->unit, true);
        data.push_back('}');
      }
      data.push_back(']');
    }
    data.push_back('}');
    return moni::prom_api::success(data);
  }

  moni::Context& ctx_;
  std::string storage_;
  moni::promql::QueryOptions opts_;
};

}  // namespace

MONI_EXPORT_PLUGIN(PromApi)
