// grafana: keeps a Grafana instance pointed at moni. In the background it
// creates or updates a Prometheus data source for moni's query API, creates
// the dashboards' folder and uploads the shipped dashboards through
// Grafana's HTTP API, retrying with backoff while Grafana is unreachable.
// An output with no sink role: it belongs in no pipeline.
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <moni/sdk.hpp>
#include <moni/version.hpp>
#include <mutex>
#include <sstream>
#include <thread>

#include "grafana_sync.hpp"
#include "http_client/http_client.hpp"
#include "listen_address.hpp"

#ifndef MONI_GRAFANA_DASHBOARD_DIR
#define MONI_GRAFANA_DASHBOARD_DIR "/usr/share/moni/grafana/dashboards"
#endif

namespace {

using moni::grafana::HttpClient;
using moni::grafana::SyncOptions;

constexpr const char* kFallbackUrl = "http://127.0.0.1:9095";

std::string trim(std::string s) {
  const char* ws = " \t\r\n";
  s.erase(s.find_last_not_of(ws) + 1);
  s.erase(0, s.find_first_not_of(ws));
  return s;
}

class GrafanaOutput : public moni::Output {
 public:
  static constexpr std::string_view plugin_name = "grafana";
  static constexpr std::string_view plugin_version = "0.1.0";
  static constexpr std::string_view plugin_description =
      "Creates or updates moni's Prometheus data source and uploads the dashboards to a Grafana "
      "instance through its HTTP API (belongs in no pipeline)";
  static constexpr std::string_view sample_config =
      R"(url = "http://127.0.0.1:3000"          # Grafana's base URL
token_file = "/etc/moni/grafana.token"  # service account token (or token_env = "VAR")
# datasource_name = "moni"
# datasource_uid = "moni"                # used when the data source is created
# datasource_url = ""                    # moni as Grafana reaches it (default: moni's listen address)
# scrape_interval = "15s"                # the data source's scrape interval
# folder = "moni"                        # "" for Grafana's General folder
# dashboards = "/usr/share/moni/grafana/dashboards"
# retry_interval = "5m"                  # longest wait between failed attempts
# resync_interval = "1h"                 # re-check after success ("0s": only at start)
# request_timeout = "10s"
# ca_file = ""                           # for https Grafana with a private CA
# tls_insecure_skip_verify = false)";

  GrafanaOutput(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "grafana");
    url_ = r.required_string("url");
    if (r.has("token"))
      r.error(r.raw("token"),
              "'token' is not accepted (a secret in the config file): put the token in a file "
              "(token_file) or an environment variable (token_env)");
    token_file_ = r.string("token_file", "");
    token_env_ = r.string("token_env", "");
    if (!token_file_.empty() && !token_env_.empty())
      r.error(r.raw("token_env"), "set token_file or token_env, not both");
    opts_.datasource_name = r.string("datasource_name", "moni");
    opts_.datasource_uid = r.string("datasource_uid", "moni");
    datasource_url_ = r.string("datasource_url", "");
    opts_.scrape_interval = r.string("scrape_interval", "15s");
    if (!moni::parse_duration_ms(opts_.scrape_interval))
      r.error(r.raw("scrape_interval"), "scrape_interval must be a duration like \"15s\"");
    opts_.folder = r.string("folder", "moni");
    opts_.dashboards_dir = r.string("dashboards", MONI_GRAFANA_DASHBOARD_DIR);
    retry_ms_ = r.duration_ms("retry_interval", 5 * 60 * 1000);
    resync_ms_ = r.duration_ms("resync_interval", 60 * 60 * 1000);
    timeout_ms_ = r.duration_ms("request_timeout", 10 * 1000);
    tls_.ca_file = r.string("ca_file", "");
    tls_.insecure_skip_verify = r.boolean("tls_insecure_skip_verify", false);
    if (opts_.datasource_name.empty())
      r.error(r.raw("datasource_name"), "datasource_name must not be empty");
    if (opts_.datasource_uid.empty() || opts_.datasource_uid.size() > 40)
      r.error(r.raw("datasource_uid"), "datasource_uid must have 1 to 40 characters");
    if (retry_ms_ < 1000) r.error(r.raw("retry_interval"), "retry_interval must be >= 1s");
    if (resync_ms_ < 0) r.error(r.raw("resync_interval"), "resync_interval must be >= 0");
    if (timeout_ms_ <= 0) r.error(r.raw("request_timeout"), "request_timeout must be > 0");
    if (!url_.empty()) {
      auto u = moni::http_client::parse_url(url_);
      if (!u) {
        r.error(r.raw("url"), u.error().message);
      } else if (u->target.find_first_of("?#") != std::string::npos) {
        r.error(r.raw("url"), "url \"" + url_ + "\" must not have a query or fragment");
      } else {
        base_ = *u;
        // API paths are appended to Grafana's sub-path, if it has one.
        opts_.base_path = u->target;
        while (!opts_.base_path.empty() && opts_.base_path.back() == '/')
          opts_.base_path.pop_back();
      }
    }
    if (!datasource_url_.empty() && !datasource_url_.starts_with("http://") &&
        !datasource_url_.starts_with("https://"))
      r.error(r.raw("datasource_url"), "datasource_url must start with http:// or https://");
    r.finish();
    opts_.message = "moni " MONI_VERSION_STRING ": provisioned by the grafana output";
  }

  ~GrafanaOutput() override { stop(); }

  moni::Result<void> start() override {
    // A connection per request: syncs are minutes apart, a kept one would
    // have gone stale. Dashboards can be large.
    moni::http_client::ClientOptions co;
    co.timeout_ms = timeout_ms_;
    co.keep_alive = false;
    co.max_body_bytes = size_t{64} << 20;
    auto c = HttpClient::create(base_, tls_, co);
    if (!c) return moni::make_error("grafana: " + c.error().message);
    client_ = std::move(c).value();
    if (token_file_.empty() && token_env_.empty())
      ctx_.warn(
          "grafana: neither token_file nor token_env is set: requests carry no "
          "Authorization header (only an anonymous Grafana with the Admin role accepts them)");
    // Grafana may be down or slow: the host's start never waits for it.
    worker_ = std::thread([this] { run(); });
    return {};
  }

  void stop() override {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    if (client_) client_->abort();
    if (worker_.joinable()) worker_.join();
  }

  void self_metrics(moni::Batch& out) override {
    std::lock_guard lk(mu_);
    const std::string inst(ctx_.instance_name());
    std::initializer_list<moni::LabelRef> l = {{"instance_name", inst}};
    out.describe("moni_grafana_sync_success", moni::MetricType::Gauge,
                 "1 when the last sync with Grafana succeeded, 0 otherwise.");
    out.add("moni_grafana_sync_success", l, last_ok_ ? 1 : 0);
    out.describe("moni_grafana_last_sync_timestamp_seconds", moni::MetricType::Gauge,
                 "End of the last successful sync with Grafana (0: none yet).");
    out.add("moni_grafana_last_sync_timestamp_seconds", l, last_success_s_);
    out.describe("moni_grafana_errors_total", moni::MetricType::Counter,
                 "Failed sync attempts (Grafana unreachable, API errors, bad dashboards).");
    out.add("moni_grafana_errors_total", l, static_cast<double>(errors_));
    out.describe("moni_grafana_dashboards_uploaded_total", moni::MetricType::Counter,
                 "Dashboards created or updated in Grafana.");
    out.add("moni_grafana_dashboards_uploaded_total", l, static_cast<double>(uploaded_));
  }

 private:
  moni::Result<std::string> read_token() const {
    if (!token_env_.empty()) {
      const char* v = std::getenv(token_env_.c_str());
      if (!v || !*v)
        return moni::make_error("token_env: environment variable " + token_env_ + " is not set");
      return trim(v);
    }
    if (token_file_.empty()) return std::string();
    std::ifstream f(token_file_);
    if (!f) return moni::make_error("token_file \"" + token_file_ + "\" cannot be read");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string t = trim(ss.str());
    if (t.empty()) return moni::make_error("token_file \"" + token_file_ + "\" is empty");
    return t;
  }

  moni::Result<moni::grafana::SyncReport> attempt() {
    SyncOptions o = opts_;
    auto token = read_token();  // re-read each time: a rotated token is picked up
    if (!token) return token.error();
    o.token = token.value();
    o.datasource_url = datasource_url_;
    if (o.datasource_url.empty()) {
      // The host says where it listens (ABI >= 1.2, with https:// when it
      // serves TLS); an older host leaves it to a guess from the process's
      // listening sockets.
      auto own = moni::grafana::url_from_listen_urls(ctx_.listen_urls());
      if (!own) own = moni::grafana::own_listen_url();
      if (!own && !warned_listen_) {
        ctx_.warn(std::string("grafana: moni's listen address is not known here (no single "
                              "listening socket); the data source points at ") +
                  kFallbackUrl + "; set datasource_url");
        warned_listen_ = true;
      }
      o.datasource_url = own ? *own : kFallbackUrl;
    }
    return moni::grafana::sync(*client_, o,
                               [this](const std::string& m) { ctx_.info("grafana: " + m); });
  }

  void run() {
    int64_t backoff_ms = 1000;
    for (;;) {
      auto rep = attempt();
      int64_t wait_ms;
      {
        std::lock_guard lk(mu_);
        if (stopping_) return;
        if (rep) {
          last_ok_ = true;
          last_success_s_ = static_cast<double>(ctx_.now_ms()) / 1000.0;
          uploaded_ += rep->dashboards_uploaded;
          backoff_ms = 1000;
          wait_ms = resync_ms_;
        } else {
          last_ok_ = false;
          ++errors_;
          wait_ms = backoff_ms;
          backoff_ms = std::min(backoff_ms * 2, retry_ms_);
        }
      }
      if (rep)
        ctx_.info("grafana: in sync with " + url_ + " (data source '" + opts_.datasource_name +
                  "', " + std::to_string(rep->dashboards_uploaded) + " dashboards uploaded, " +
                  std::to_string(rep->dashboards_unchanged) + " unchanged)");
      else
        ctx_.warn("grafana: sync with " + url_ + " failed, retrying in " +
                  std::to_string(wait_ms / 1000) + "s: " + rep.error().message);
      std::unique_lock lk(mu_);
      if (rep && resync_ms_ == 0) {
        cv_.wait(lk, [this] { return stopping_; });
        return;
      }
      if (cv_.wait_for(lk, std::chrono::milliseconds(wait_ms), [this] { return stopping_; }))
        return;
    }
  }

  moni::Context& ctx_;
  std::string url_, token_file_, token_env_, datasource_url_;
  moni::http_client::Url base_;
  moni::http_client::TlsOptions tls_;
  SyncOptions opts_;
  int64_t retry_ms_ = 0, resync_ms_ = 0, timeout_ms_ = 0;
  std::unique_ptr<HttpClient> client_;
  std::thread worker_;
  bool warned_listen_ = false;  // worker thread only

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  bool stopping_ = false;
  bool last_ok_ = false;
  double last_success_s_ = 0;
  uint64_t errors_ = 0, uploaded_ = 0;
};

}  // namespace

MONI_EXPORT_PLUGIN(GrafanaOutput)
