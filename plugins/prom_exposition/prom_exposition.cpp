// prom_exposition: serves the latest samples of its pipelines at /metrics
// (text 0.0.4 or OpenMetrics by Accept, gzip when asked) and, when a
// storage instance exists, Prometheus-style federation at /federate.
#include "gzip.hpp"
#include "selector.hpp"
#include "series_store.hpp"

#include <moni/sdk.hpp>
#include <moni/text_format.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <vector>

namespace {

using moni::expo::SeriesStore;
namespace text = moni::text;

/// Thread-safety: write() runs on pipeline workers; the HTTP handlers on
/// host workers concurrently. The store synchronizes itself; counters are
/// atomics; configuration is immutable after construction.
class PromExposition : public moni::Output {
 public:
  static constexpr std::string_view plugin_name = "prom_exposition";
  static constexpr std::string_view plugin_version = MONI_VERSION_STRING;
  static constexpr std::string_view plugin_description =
      "Prometheus /metrics exposition (text 0.0.4, OpenMetrics) and /federate";
  static constexpr std::string_view sample_config = R"TOML(# path = "/metrics"          # where the latest samples are served
# stale_after = "5m"         # series not written for this long disappear
# timestamps = false         # write sample timestamps on /metrics
# openmetrics = true         # answer Accept: application/openmetrics-text
# gzip = true                # compress when the scraper accepts gzip
# federate = true            # serve /federate from storage when one exists
# federate_path = "/federate"
# federate_lookback = "5m"   # newest sample at most this old per series
# storage = ""               # storage instance for /federate ("" = the only one)
# collect_on_scrape = false  # run the pipelines' collectors on each /metrics request
# collect_timeout = "10s"    # at most this long (or the scraper's timeout) per collection)TOML";

  PromExposition(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "prom_exposition[" + std::string(ctx.instance_name()) + "]");
    path_ = r.string("path", "/metrics");
    stale_after_ms_ = r.duration_ms("stale_after", 5 * 60 * 1000);
    timestamps_ = r.boolean("timestamps", false);
    openmetrics_ = r.boolean("openmetrics", true);
    gzip_ = r.boolean("gzip", true);
    federate_ = r.boolean("federate", true);
    federate_path_ = r.string("federate_path", "/federate");
    lookback_ms_ = r.duration_ms("federate_lookback", 5 * 60 * 1000);
    storage_name_ = r.string("storage", "");
    collect_on_scrape_ = r.boolean("collect_on_scrape", false);
    collect_timeout_ms_ = r.duration_ms("collect_timeout", 10 * 1000);
    if (path_.empty() || path_[0] != '/')
      r.error(r.raw("path"), "path must start with '/' (got \"" + path_ + "\")");
    if (federate_path_.empty() || federate_path_[0] != '/')
      r.error(r.raw("federate_path"), "federate_path must start with '/'");
    if (stale_after_ms_ <= 0) r.error(r.raw("stale_after"), "stale_after must be > 0");
    if (lookback_ms_ <= 0) r.error(r.raw("federate_lookback"), "federate_lookback must be > 0");
    if (collect_timeout_ms_ <= 0) r.error(r.raw("collect_timeout"), "collect_timeout must be > 0");
    r.finish();
    store_.emplace(stale_after_ms_);
  }

  moni::Result<void> start() override {
    auto r = ctx_.route(path_, [this](const moni::HttpRequest& q, moni::HttpResponse& a) {
      serve_metrics(q, a);
    });
    if (!r) return moni::make_error("prom_exposition: cannot serve " + path_ + ": " + r.error().message);
    if (federate_) {
      storage_ = ctx_.storage(storage_name_);
      if (storage_) {
        auto f = ctx_.route(federate_path_, [this](const moni::HttpRequest& q, moni::HttpResponse& a) {
          serve_federate(q, a);
        });
        if (!f)
          return moni::make_error("prom_exposition: cannot serve " + federate_path_ + ": " +
                                  f.error().message);
      } else {
        ctx_.info("prom_exposition: no storage instance, " + federate_path_ + " is not served");
      }
    }
    return {};
  }

  moni::Result<void> write(const moni::BatchView& batch) override {
    store_->write(batch, ctx_.now_ms());
    return {};
  }

  void self_metrics(moni::Batch& out) override {
    std::string_view inst = ctx_.instance_name();
    out.describe("moni_prom_exposition_series", moni::MetricType::Gauge,
                 "Series currently held for exposition.");
    out.add("moni_prom_exposition_series", {{"instance_name", inst}},
            static_cast<double>(store_->size()));
    out.describe("moni_prom_exposition_requests_total", moni::MetricType::Counter,
                 "HTTP requests served, by route.");
    out.add("moni_prom_exposition_requests_total", {{"instance_name", inst}, {"route", "metrics"}},
            static_cast<double>(metrics_requests_.load()));
    out.add("moni_prom_exposition_requests_total", {{"instance_name", inst}, {"route", "federate"}},
            static_cast<double>(federate_requests_.load()));
    out.describe("moni_prom_exposition_cached_responses_total", moni::MetricType::Counter,
                 "/metrics requests answered with the last response because no sample was "
                 "written since.");
    out.add("moni_prom_exposition_cached_responses_total", {{"instance_name", inst}},
            static_cast<double>(cached_responses_.load()));
    out.describe("moni_prom_exposition_collect_errors_total", moni::MetricType::Counter,
                 "Scrapes whose collection (collect_on_scrape) failed or timed out; they were "
                 "answered with the samples held.");
    out.add("moni_prom_exposition_collect_errors_total", {{"instance_name", inst}},
            static_cast<double>(collect_errors_.load()));
    out.describe("moni_prom_exposition_render_seconds", moni::MetricType::Gauge,
                 "Time the last /metrics response took to render.");
    out.add("moni_prom_exposition_render_seconds", {{"instance_name", inst}},
            static_cast<double>(last_render_ns_.load()) / 1e9);
  }

 private:
  // One per concurrent scrape, kept between scrapes so that a warm scrape
  // allocates nothing: the renderer's tables, the sample views, the body,
  // its gzip form and the deflate state.
  struct Scratch {
    text::Renderer renderer;
    std::vector<moni_sample> samples;
    text::RenderBuffer body;  // not zero-filled to the renderer's bound
    std::string gz;
    moni::expo::GzipEncoder gzip{1};
  };
  text::Format format_for(const moni::HttpRequest& req) const {
    return openmetrics_ ? text::negotiate(req.header("accept")) : text::Format::Text;
  }

  void respond(const moni::HttpRequest& req, moni::HttpResponse& resp, text::Format f,
               std::string& body) {
    resp.status(200);
    resp.header("Content-Type", text::content_type(f));
    if (gzip_ && accepts_gzip_header(req) && !body.empty()) {
      std::string z = moni::expo::gzip(body);
      if (!z.empty()) {
        resp.header("Content-Encoding", "gzip");
        resp.header("Vary", "Accept-Encoding");
        resp.body(z);
        return;
      }
    }
    resp.body(body);
  }

  static void respond_metrics(moni::HttpResponse& resp, text::Format f, std::string_view body,
                              bool gzipped) {
    resp.status(200);
    resp.header("Content-Type", text::content_type(f));
    if (gzipped) {
      resp.header("Content-Encoding", "gzip");
      resp.header("Vary", "Accept-Encoding");
    }
    resp.body(body);
  }

  static bool accepts_gzip_header(const moni::HttpRequest& req) {
    return moni::expo::accepts_gzip(req.header("accept-encoding"));
  }

  void serve_metrics(const moni::HttpRequest& req, moni::HttpResponse& resp) {
    ++metrics_requests_;
    if (req.method() != "GET" && req.method() != "HEAD") {
      resp.status(405);
      resp.header("Allow", "GET, HEAD");
      resp.body("prom_exposition: only GET is allowed on " + path_ + "\n");
      return;
    }
    if (collect_on_scrape_) collect(req);
    const text::Format f = format_for(req);
    const bool head = req.method() == "HEAD";
    const bool want_gz = gzip_ && !head && accepts_gzip_header(req);
    const int64_t now = ctx_.now_ms();
    if (!head && serve_cached(resp, f, want_gz, now)) {
      ++cached_responses_;
      return;
    }
    auto t0 = std::chrono::steady_clock::now();
    auto s = take_scratch();
    s->body.clear();
    SeriesStore::SnapshotInfo info = store_->snapshot(
        now, s->samples,
        [&](std::span<const moni_sample> smp, std::span<const moni_metadata> m, uint64_t layout) {
          moni_batch b{smp.data(), smp.size(), m.data(), m.size()};
          text::RenderOptions o;
          o.format = f;
          o.timestamps = timestamps_;
          o.layout_key = layout;  // the family grouping is reused while series stay put
          s->renderer.render(b, s->body, o);
        });
    last_render_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - t0)
                          .count();
    if (head) {
      respond_metrics(resp, f, {}, false);
    } else {
      bool gz = want_gz && !s->body.empty() && s->gzip.compress(s->body.view(), s->gz);
      respond_metrics(resp, f, gz ? std::string_view(s->gz) : s->body.view(), gz);
      remember(*s, f, gz, info);
    }
    give_back(std::move(s));
  }

  // The last /metrics body (and its gzip form once asked for) is answered
  // again while the store has not been written and none of its series has
  // gone stale: scrapers faster than the collectors, or several scrapers,
  // then cost a copy instead of a render and a compression.
  bool serve_cached(moni::HttpResponse& resp, text::Format f, bool want_gz, int64_t now) {
    std::lock_guard lock(cache_mu_);
    const Cached& c = cache_;
    if (!c.valid || c.format != f || c.generation != store_->generation() ||
        now > c.valid_until_ms || (want_gz && !c.has_gz))
      return false;
    respond_metrics(resp, f, want_gz ? std::string_view(c.gz) : c.body.view(), want_gz);
    return true;
  }

  // Keeps the scratch's body (and gzip form) by swapping buffers with the
  // cache, not copying: the scratch gets the old buffers' capacity back.
  void remember(Scratch& s, text::Format f, bool gz, const SeriesStore::SnapshotInfo& info) {
    std::lock_guard lock(cache_mu_);
    Cached& c = cache_;
    bool same = c.valid && c.generation == info.generation && c.format == f;
    if (c.valid && info.generation < c.generation) return;  // a newer one is held
    if (same && (!gz || c.has_gz)) return;
    if (!same) {
      c.body.swap(s.body);
      c.has_gz = false;
    }
    if (gz) {
      c.gz.swap(s.gz);
      c.has_gz = true;
    }
    c.valid = true;
    c.generation = info.generation;
    c.valid_until_ms = info.valid_until_ms;
    c.format = f;
  }

  // collect_on_scrape: one fresh cycle of our pipelines before rendering,
  // bounded by collect_timeout and the scraper's own timeout (Prometheus
  // sends it); on failure the samples held are served.
  void collect(const moni::HttpRequest& req) {
    int64_t timeout = collect_timeout_ms_;
    std::string_view hs = req.header("x-prometheus-scrape-timeout-seconds");
    double secs = 0;
    if (!hs.empty() && std::from_chars(hs.data(), hs.data() + hs.size(), secs).ec == std::errc() &&
        secs > 0)
      timeout = std::min<int64_t>(timeout, std::max<int64_t>(1, static_cast<int64_t>(secs * 900)));
    if (auto r = ctx_.collect_now(timeout); !r) {
      ++collect_errors_;
      ctx_.warn("prom_exposition: collect on scrape: " + r.error().message);
    }
  }

  std::unique_ptr<Scratch> take_scratch() {
    std::lock_guard lock(scratch_mu_);
    if (scratch_.empty()) return std::make_unique<Scratch>();
    auto r = std::move(scratch_.back());
    scratch_.pop_back();
    return r;
  }
  void give_back(std::unique_ptr<Scratch> r) {
    std::lock_guard lock(scratch_mu_);
    scratch_.push_back(std::move(r));
  }

  void serve_federate(const moni::HttpRequest& req, moni::HttpResponse& resp) {
    ++federate_requests_;
    auto params = req.params();
    auto selectors = moni::params_all(params, "match[]");
    if (selectors.empty()) {
      resp.status(400);
      resp.body("federate: at least one match[] parameter is required, e.g. "
                "match[]={job=\"node\"}\n");
      return;
    }
    std::vector<std::vector<moni::Matcher>> sets;
    for (const auto& s : selectors) {
      auto m = moni::expo::parse_selector(s);
      if (!m) {
        resp.status(400);
        resp.body("federate: " + m.error().message + "\n");
        return;
      }
      sets.push_back(std::move(*m));
    }
    const int64_t now = ctx_.now_ms();
    moni::Batch out;
    std::unordered_set<std::string> seen;
    std::string key;
    for (const auto& ms : sets) {
      auto r = storage_->select(ms, now - lookback_ms_, now, true, [&](const moni::SeriesView& v) {
        // Newest non-stale sample not after now.
        for (size_t i = v.values.size(); i-- > 0;) {
          if (v.timestamps_ms[i] > now) continue;
          if (moni::is_stale_nan(v.values[i])) break;  // the series ended
          key.clear();
          for (const auto& l : v.labels) {
            key.append(moni::sv(l.name));
            key += '\0';
            key.append(moni::sv(l.value));
            key += '\0';
          }
          if (seen.insert(key).second)
            out.add_sorted(v.labels.data(), static_cast<uint32_t>(v.labels.size()), v.values[i],
                           v.timestamps_ms[i]);
          break;
        }
        return true;
      });
      if (!r) {
        resp.status(500);
        resp.body("federate: storage select failed: " + r.error().message + "\n");
        return;
      }
    }
    std::vector<moni_metadata> meta;
    auto md = storage_->metadata();
    if (md) {
      meta.reserve(md->size());
      for (const auto& m : *md)
        meta.push_back({moni::ms(m.family), static_cast<uint32_t>(m.type), moni::ms(m.help),
                        moni::ms(m.unit)});
    }
    text::Format f = format_for(req);
    text::RenderOptions o;
    o.format = f;
    o.timestamps = true;
    std::string body;
    text::Renderer rn;
    rn.render(out.view(), body, o, meta);
    respond(req, resp, f, body);
  }

  moni::Context& ctx_;
  std::string path_, federate_path_, storage_name_;
  int64_t stale_after_ms_ = 0, lookback_ms_ = 0;
  bool timestamps_ = false, openmetrics_ = true, gzip_ = true, federate_ = true;
  bool collect_on_scrape_ = false;
  int64_t collect_timeout_ms_ = 0;
  std::mutex scratch_mu_;
  std::vector<std::unique_ptr<Scratch>> scratch_;
  struct Cached {
    bool valid = false;
    text::Format format = text::Format::Text;
    uint64_t generation = 0;
    int64_t valid_until_ms = 0;
    text::RenderBuffer body;
    bool has_gz = false;
    std::string gz;
  };
  std::mutex cache_mu_;
  Cached cache_;
  std::optional<SeriesStore> store_;
  std::optional<moni::StorageClient> storage_;
  std::atomic<uint64_t> metrics_requests_{0}, federate_requests_{0}, collect_errors_{0},
      cached_responses_{0};
  std::atomic<int64_t> last_render_ns_{0};
};

}  // namespace

MONI_EXPORT_PLUGIN(PromExposition)
