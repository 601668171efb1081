// scrape: Prometheus-style scraping of HTTP targets (static groups and
// file-based discovery), with job/instance labels, honor_labels, limits,
// gzip, synthetic series, staleness markers and metric_relabel_configs.
#include "gunzip.hpp"
#include "http_fetch.hpp"
#include "target_discovery.hpp"
#include "tls_client.hpp"

#include "../relabel/relabel_rules.hpp"

#include <moni/sdk.hpp>
#include <moni/text_format.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

namespace {

namespace text = moni::text;
using moni::relabel::LabelSet;
using moni::scrape::TargetGroup;

constexpr std::string_view kAccept =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

std::string base64(std::string_view in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                 static_cast<uint8_t>(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// A relative file name in the config is relative to the config file's
// directory, as in Prometheus.
std::string config_relative(const moni::ConfigView& at, const std::string& path) {
  if (path.empty() || path[0] == '/' || !at.present()) return path;
  moni_source_pos p = at.api()->position(at.node());
  std::filesystem::path file(std::string(moni::sv(p.file)));
  return (file.parent_path() / path).lexically_normal().string();
}

// A secret file's content without trailing whitespace (Prometheus trims it).
bool read_secret(const std::string& path, std::string& out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[8192];
  size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  out.assign(buf, n);
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return true;
}

void sort_labels(LabelSet& ls) {
  std::sort(ls.begin(), ls.end(), [](const moni::Label& a, const moni::Label& b) { return a.name < b.name; });
}

const moni::Label* find(const LabelSet& ls, std::string_view name) {
  for (const auto& l : ls)
    if (l.name == name) return &l;
  return nullptr;
}

std::string series_key(const LabelSet& ls) {
  std::string k;
  for (const auto& l : ls) {
    k += l.name;
    k += '\0';
    k += l.value;
    k += '\0';
  }
  return k;
}

/// One scrape target and what the last scrape of it saw.
/// Thread-safety: used by collect() only, by one thread at a time (the
/// worker that parses this cycle's response of it).
struct Target {
  std::string key;  // identity: url + labels
  std::string scheme, host, port, path;
  LabelSet labels;  // job, instance and group labels, sorted, no "__" labels
  int64_t interval_ms = 0, timeout_ms = 0;
  int64_t next_due_ms = 0;
  bool scraped = false;
  std::unordered_set<std::string> prev;  // series keys of the last successful scrape
  std::string last_error;
  text::Parser parser;
  std::string url() const { return scheme + "://" + host + ":" + port + path; }
};

constexpr std::string_view kSynthetic[] = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                                           "scrape_samples_post_metric_relabeling",
                                           "scrape_series_added"};

/// What one parsing thread reuses from cycle to cycle: the batch a target's
/// samples are emitted in, and scratch space.
struct Worker {
  moni::Batch out;  // one target's batch at a time
  moni::Batch tb;   // the samples of the scrape being checked against sample_limit
  LabelSet ls;
};

/// Indices of fetched targets, handed from the fetching thread to the
/// parsing workers. Thread-safety: all methods lock.
class ReadyQueue {
 public:
  void push(size_t i) {
    {
      std::lock_guard lock(mu_);
      ready_.push_back(i);
    }
    cv_.notify_one();
  }
  /// No more pushes: pop() returns nullopt once the queue is empty.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }
  std::optional<size_t> pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !ready_.empty(); });
    if (ready_.empty()) return std::nullopt;
    size_t i = ready_.front();
    ready_.pop_front();
    return i;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<size_t> ready_;
  bool closed_ = false;
};

/// Thread-safety: collect() is never concurrent with itself; on a host of
/// ABI 1.2 it parses and emits targets on several threads (each target on
/// one, with a Worker of its own; shared state is immutable during the
/// cycle or atomic). self_metrics() reads atomics.
class ScrapeCollector : public moni::Collector {
 public:
  static constexpr std::string_view plugin_name = "scrape";
  static constexpr std::string_view plugin_version = MONI_VERSION_STRING;
  static constexpr std::string_view plugin_description =
      "Prometheus-style scraping of /metrics endpoints (static targets and file_sd)";
  static constexpr std::string_view sample_config = R"TOML(# job = "<instance name>"       # the job label
# targets = ["127.0.0.1:9100"]  # a static group; more with [[...static_configs]]
# labels = { env = "prod" }     # labels of that group
# file_sd = ["/etc/moni/targets/*.json"]  # Prometheus file_sd JSON, or .toml with [[group]]
# metrics_path = "/metrics"
# scheme = "http"              # or "https" (with the tls table below)
# honor_labels = false
# honor_timestamps = true
# scrape_timeout = "10s"        # per target; at most the interval
# body_size_limit = 0           # bytes after decompression, 0 = none
# sample_limit = 0              # after metric relabeling; exceeding fails the scrape
# label_limit = 0
# label_name_length_limit = 0
# label_value_length_limit = 0
# gzip = true
# parse_workers = 0             # threads parsing responses; 0 = hardware threads (at most one per target)
# basic_auth = { username = "", password = "", password_file = "" }
# bearer_token = ""             # or bearer_token_file = "/path"; not with basic_auth
# tls = { ca_file = "", cert_file = "", key_file = "", server_name = "", insecure_skip_verify = false }
# [[collectors.<name>.static_configs]]
# targets = ["10.0.0.1:9100"]
# labels = { rack = "a" }
# scrape_interval = "30s"       # multiples of the instance interval
# scrape_timeout = "5s"
# [[collectors.<name>.metric_relabel_configs]]  # as the relabel processor)TOML";

  ScrapeCollector(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    name_ = "scrape[" + std::string(ctx.instance_name()) + "]";
    moni::ConfigReader r(cfg, name_);
    interval_ms_ = r.duration_ms("interval", 15000);
    job_ = r.string("job", std::string(ctx.instance_name()));
    metrics_path_ = r.string("metrics_path", "/metrics");
    scheme_ = r.choice("scheme", "http", {"http", "https"});
    honor_labels_ = r.boolean("honor_labels", false);
    honor_timestamps_ = r.boolean("honor_timestamps", true);
    timeout_ms_ = r.duration_ms("scrape_timeout", std::min<int64_t>(10000, interval_ms_));
    body_limit_ = r.bytes("body_size_limit", 0);
    sample_limit_ = static_cast<size_t>(r.integer("sample_limit", 0, 0));
    label_limit_ = static_cast<size_t>(r.integer("label_limit", 0, 0));
    label_name_limit_ = static_cast<size_t>(r.integer("label_name_length_limit", 0, 0));
    label_value_limit_ = static_cast<size_t>(r.integer("label_value_length_limit", 0, 0));
    gzip_ = r.boolean("gzip", true);
    parse_workers_ = static_cast<size_t>(r.integer("parse_workers", 0, 0));
    if (r.has("basic_auth")) {
      auto ba = r.table("basic_auth");
      std::string user = ba.required_string("username");
      std::string pass = ba.string("password", "");
      std::string file = ba.string("password_file", "");
      if (!pass.empty() && !file.empty())
        ba.error(ba.table_view(), "basic_auth: set password or password_file, not both");
      auth_user_ = user;
      auth_pass_ = pass;
      auth_file_ = config_relative(ba.raw("password_file"), file);
    }
    bearer_ = r.string("bearer_token", "");
    bearer_file_ = config_relative(r.raw("bearer_token_file"), r.string("bearer_token_file", ""));
    if (r.has("bearer_token") && r.has("bearer_token_file"))
      r.error(r.raw("bearer_token_file"), "set bearer_token or bearer_token_file, not both");
    if ((r.has("bearer_token") || r.has("bearer_token_file")) && r.has("basic_auth"))
      r.error(r.raw(r.has("bearer_token") ? "bearer_token" : "bearer_token_file"),
              "set basic_auth or a bearer token, not both");
    if (r.has("tls")) {
      auto t = r.table("tls");
      tls_opts_.ca_file = config_relative(t.raw("ca_file"), t.string("ca_file", ""));
      tls_opts_.cert_file = config_relative(t.raw("cert_file"), t.string("cert_file", ""));
      tls_opts_.key_file = config_relative(t.raw("key_file"), t.string("key_file", ""));
      tls_opts_.server_name = t.string("server_name", "");
      tls_opts_.insecure_skip_verify = t.boolean("insecure_skip_verify", false);
      if (tls_opts_.cert_file.empty() != tls_opts_.key_file.empty())
        t.error(t.raw(tls_opts_.cert_file.empty() ? "key_file" : "cert_file"),
                "tls.cert_file and tls.key_file must be set together");
      else {
        // Loaded now so that check-config and a reload report a bad file at its key.
        std::string key, why;
        auto ctx = moni::scrape::TlsClientContext::load(tls_opts_, key, why);
        if (ctx)
          tls_ = std::make_shared<moni::scrape::TlsClientSource>(std::move(ctx));
        else
          t.error(t.raw(key), "tls." + key + ": " + why);
      }
    }
    if (timeout_ms_ <= 0) r.error(r.raw("scrape_timeout"), "scrape_timeout must be > 0");
    if (timeout_ms_ > interval_ms_)
      r.error(r.raw("scrape_timeout"), "scrape_timeout (" + moni::format_duration_ms(timeout_ms_) +
                                           ") must not exceed the interval (" +
                                           moni::format_duration_ms(interval_ms_) + ")");
    if (metrics_path_.empty() || metrics_path_[0] != '/')
      r.error(r.raw("metrics_path"), "metrics_path must start with '/'");

    // The top-level group, then [[static_configs]].
    if (r.has("targets") || r.has("labels")) {
      StaticGroup g;
      g.group.targets = r.strings("targets", {});
      g.group.labels = read_labels(r, r.raw("labels"), "labels");
      g.group.source = "targets";
      static_.push_back(std::move(g));
    }
    auto groups = r.tables("static_configs");
    for (size_t i = 0; i < groups.size(); ++i) {
      auto& t = groups[i];
      StaticGroup g;
      g.group.targets = t.strings("targets", {});
      g.group.labels = read_labels(t, t.raw("labels"), "static_configs[" + std::to_string(i) + "].labels");
      g.group.source = "static_configs[" + std::to_string(i) + "]";
      if (t.has("scrape_interval")) {
        int64_t iv = t.duration_ms("scrape_interval", interval_ms_);
        g.group.labels["__scrape_interval__"] = moni::format_duration_ms(iv);
      }
      if (t.has("scrape_timeout")) {
        int64_t to = t.duration_ms("scrape_timeout", timeout_ms_);
        g.group.labels["__scrape_timeout__"] = moni::format_duration_ms(to);
      }
      static_.push_back(std::move(g));
    }
    file_sd_ = r.strings("file_sd", {});
    rules_ = moni::relabel::parse_rules(r, "metric_relabel_configs");
    // Static targets are checked now so that check-config reports them.
    for (const auto& g : static_) {
      for (const auto& t : g.group.targets) {
        std::string err;
        make_target(g.group, t, &err);
        if (!err.empty()) r.error(r.raw("targets"), g.group.source + ": " + err);
      }
    }
    if (static_.empty() && file_sd_.empty())
      r.error(moni::ConfigView(), "no targets: set targets, [[static_configs]] or file_sd");
    r.finish();
    discovery_ = std::make_unique<moni::scrape::FileDiscovery>(file_sd_);
  }

  moni::Result<void> start() override {
    std::vector<std::string> errors;
    rebuild_targets(errors, nullptr, 0);
    for (const auto& e : errors) ctx_.warn(name_ + ": file_sd: " + e);
    return {};
  }

  moni::Result<void> collect(moni::Batch& out) override {
    const int64_t now = out.default_timestamp();
    // Discovery: re-read changed files; stale markers for vanished targets.
    if (!file_sd_.empty()) {
      std::vector<std::string> errors;
      if (discovery_->refresh(errors)) rebuild_targets(errors, &out, now);
      for (const auto& e : errors) {
        ++discovery_errors_;
        ctx_.warn(name_ + ": file_sd: " + e);
      }
    }
    std::vector<Target*> due;
    for (auto& [k, t] : targets_)
      if (now + interval_ms_ / 2 >= t->next_due_ms) due.push_back(t.get());
    if (due.empty()) return {};

    // Secret files are read every cycle, so a rotated password or token
    // needs no reload (as Prometheus).
    std::string auth;
    if (!auth_user_.empty()) {
      std::string pass = auth_pass_;
      if (!auth_file_.empty() && !read_secret(auth_file_, pass))
        ctx_.warn(name_ + ": cannot read basic_auth.password_file " + auth_file_ + ": " +
                  std::strerror(errno));
      auth = "Basic " + base64(auth_user_ + ":" + pass);
    } else if (!bearer_.empty()) {
      auth = "Bearer " + bearer_;
    } else if (!bearer_file_.empty()) {
      std::string token;
      if (read_secret(bearer_file_, token))
        auth = "Bearer " + token;
      else
        ctx_.warn(name_ + ": cannot read bearer_token_file " + bearer_file_ + ": " +
                  std::strerror(errno));
    }
    std::shared_ptr<const moni::scrape::TlsClientContext> tls;
    for (Target* t : due)
      if (t->scheme == "https") {
        tls = tls_context();
        break;
      }
    std::vector<moni::scrape::FetchRequest> reqs;
    for (Target* t : due) {
      moni::scrape::FetchRequest q;
      q.host = t->host;
      q.port = t->port;
      q.target = t->path;
      q.timeout = std::chrono::milliseconds(t->timeout_ms);
      // Compressed bodies are capped after decoding; allow the wire size too.
      q.body_limit = body_limit_;
      q.headers = {{"Accept", std::string(kAccept)},
                   {"User-Agent", "moni/" MONI_VERSION_STRING},
                   {"X-Prometheus-Scrape-Timeout-Seconds",
                    std::to_string(static_cast<double>(t->timeout_ms) / 1000.0)}};
      if (gzip_) q.headers.emplace_back("Accept-Encoding", "gzip");
      if (!auth.empty()) q.headers.emplace_back("Authorization", auth);
      if (t->scheme == "https") {
        q.tls = tls;
        if (!tls) q.setup_error = "no usable TLS context (see the log)";
      }
      reqs.push_back(std::move(q));
      t->next_due_ms = now + t->interval_ms;
    }
    // One batch per target. On a 1.2 host they are parsed and emitted on
    // several threads as the responses arrive (the fetching thread joins in
    // once every response is in); on older hosts one after another.
    size_t threads = parse_workers_ ? parse_workers_ : std::max(1u, std::thread::hardware_concurrency());
    threads = std::min(threads, due.size());
    if (!ctx_.concurrent_emit()) threads = 1;
    while (workers_.size() < threads) workers_.push_back(std::make_unique<Worker>());
    for (size_t k = 0; k < threads; ++k) workers_[k]->out.share_emitter(out);
    std::vector<moni::scrape::FetchResult> results;
    std::atomic<bool> refused{false};
    auto run = [&](size_t i, Worker& w) {
      process(*due[i], results[i], now, w);
      if (!w.out.emit()) refused = true;
      w.out.clear();
    };
    if (threads == 1) {
      moni::scrape::fetch_each(reqs, results, {});
      for (size_t i = 0; i < due.size(); ++i) run(i, *workers_[0]);
    } else {
      ReadyQueue ready;
      std::vector<std::thread> pool;
      pool.reserve(threads - 1);
      for (size_t k = 1; k < threads; ++k)
        pool.emplace_back([&, w = workers_[k].get()] {
          while (auto i = ready.pop()) run(*i, *w);
        });
      moni::scrape::fetch_each(reqs, results, [&](size_t i) { ready.push(i); });
      ready.close();
      while (auto i = ready.pop()) run(*i, *workers_[0]);
      for (auto& t : pool) t.join();
    }
    if (refused) return moni::make_error(name_ + ": the host refused a batch");
    return {};
  }

  void self_metrics(moni::Batch& out) override {
    std::string_view inst = ctx_.instance_name();
    out.describe("moni_scrape_targets", moni::MetricType::Gauge, "Targets currently scraped.");
    out.add("moni_scrape_targets", {{"instance_name", inst}}, static_cast<double>(target_count_.load()));
    out.describe("moni_scrape_scrapes_total", moni::MetricType::Counter, "Scrapes attempted.");
    out.add("moni_scrape_scrapes_total", {{"instance_name", inst}}, static_cast<double>(scrapes_.load()));
    out.describe("moni_scrape_failures_total", moni::MetricType::Counter,
                 "Scrapes that failed (connection, HTTP status, body, parse or limit errors).");
    out.add("moni_scrape_failures_total", {{"instance_name", inst}}, static_cast<double>(failures_.load()));
    out.describe("moni_scrape_discovery_errors_total", moni::MetricType::Counter,
                 "Target files that could not be read or parsed.");
    out.add("moni_scrape_discovery_errors_total", {{"instance_name", inst}},
            static_cast<double>(discovery_errors_.load()));
  }

 private:
  struct StaticGroup {
    TargetGroup group;
  };

  // The job's TLS context; built on first use for an https target of a job
  // without a tls table (system CAs). A rotated file is picked up here.
  std::shared_ptr<const moni::scrape::TlsClientContext> tls_context() {
    if (!tls_) {
      std::string key, why;
      auto ctx = moni::scrape::TlsClientContext::load(tls_opts_, key, why);
      if (!ctx) {
        ctx_.warn(name_ + ": TLS: " + why);
        return nullptr;
      }
      tls_ = std::make_shared<moni::scrape::TlsClientSource>(std::move(ctx));
    }
    std::string warning;
    auto ctx = tls_->current(warning);
    if (!warning.empty()) ctx_.warn(name_ + ": " + warning);
    return ctx;
  }

  std::map<std::string, std::string> read_labels(moni::ConfigReader& r, const moni::ConfigView& v,
                                                 const std::string& key) {
    std::map<std::string, std::string> out;
    if (!v.present()) return out;
    if (v.type() != MONI_CFG_TABLE) {
      r.error(v, key + " must be a table of strings");
      return out;
    }
    for (size_t i = 0; i < v.size(); ++i) {
      std::string_view k;
      moni::ConfigView e = v.at(i, &k);
      if (e.type() != MONI_CFG_STRING) {
        r.error(e, key + "." + std::string(k) + " must be a string");
        continue;
      }
      if (!text::valid_label_name(k)) {
        r.error(e, key + ": \"" + std::string(k) + "\" is not a valid label name");
        continue;
      }
      out[std::string(k)] = std::string(e.as_string());
    }
    return out;
  }

  // Builds a target from a group and an address; nullptr and *err on error.
  std::unique_ptr<Target> make_target(const TargetGroup& g, const std::string& addr,
                                      std::string* err) const {
    auto t = std::make_unique<Target>();
    auto label = [&](const std::string& k, const std::string& def) {
      auto it = g.labels.find(k);
      return it == g.labels.end() ? def : it->second;
    };
    t->scheme = label("__scheme__", scheme_);
    if (t->scheme != "http" && t->scheme != "https") {
      *err = "target " + addr + ": scheme \"" + t->scheme + "\" is not supported (http or https)";
      return nullptr;
    }
    t->path = label("__metrics_path__", metrics_path_);
    if (addr.empty() || addr.find('/') != std::string::npos || addr.find(' ') != std::string::npos) {
      *err = "target \"" + addr + "\" is not host:port";
      return nullptr;
    }
    size_t colon = addr.rfind(':');
    bool bracket = addr.front() == '[';
    if (colon == std::string::npos || (bracket && addr[colon - 1] != ']')) {
      t->host = addr;
      t->port = t->scheme == "https" ? "443" : "80";
    } else {
      t->host = addr.substr(0, colon);
      t->port = addr.substr(colon + 1);
      if (t->port.empty() || t->port.find_first_not_of("0123456789") != std::string::npos ||
          std::stoul(t->port.substr(0, 6)) > 65535) {
        *err = "target \"" + addr + "\" has an invalid port";
        return nullptr;
      }
    }
    if (bracket && t->host.size() > 2 && t->host.back() == ']') t->host = t->host.substr(1, t->host.size() - 2);
    t->interval_ms = interval_ms_;
    t->timeout_ms = timeout_ms_;
    if (auto it = g.labels.find("__scrape_interval__"); it != g.labels.end()) {
      auto d = moni::parse_duration_ms(it->second);
      if (!d || *d <= 0) {
        *err = "target " + addr + ": invalid __scrape_interval__ \"" + it->second + "\"";
        return nullptr;
      }
      t->interval_ms = *d;
    }
    if (auto it = g.labels.find("__scrape_timeout__"); it != g.labels.end()) {
      auto d = moni::parse_duration_ms(it->second);
      if (!d || *d <= 0) {
        *err = "target " + addr + ": invalid __scrape_timeout__ \"" + it->second + "\"";
        return nullptr;
      }
      t->timeout_ms = *d;
    }
    t->timeout_ms = std::min(t->timeout_ms, t->interval_ms);
    t->labels.push_back({"job", job_});
    t->labels.push_back({"instance", addr});
    for (const auto& [k, v] : g.labels) {
      if (k.starts_with("__")) continue;
      if (!text::valid_label_name(k)) {
        *err = "target " + addr + ": invalid label name \"" + k + "\"";
        return nullptr;
      }
      auto it = std::find_if(t->labels.begin(), t->labels.end(), [&](const moni::Label& l) { return l.name == k; });
      if (it != t->labels.end()) it->value = v;
      else if (!v.empty()) t->labels.push_back({k, v});
    }
    t->labels.erase(std::remove_if(t->labels.begin(), t->labels.end(),
                                   [](const moni::Label& l) { return l.value.empty(); }),
                    t->labels.end());
    sort_labels(t->labels);
    t->key = t->url() + "\n" + series_key(t->labels) + std::to_string(t->interval_ms) + "/" +
             std::to_string(t->timeout_ms);
    return t;
  }

  // Recomputes the target set; vanished targets get staleness markers in
  // `out` (when given).
  void rebuild_targets(std::vector<std::string>& errors, moni::Batch* out, int64_t now) {
    std::vector<TargetGroup> groups;
    for (const auto& g : static_) groups.push_back(g.group);
    auto files = discovery_->groups();
    groups.insert(groups.end(), files.begin(), files.end());
    std::map<std::string, std::unique_ptr<Target>> next;
    for (const auto& g : groups)
      for (const auto& a : g.targets) {
        std::string err;
        auto t = make_target(g, a, &err);
        if (!t) {
          errors.push_back(g.source + ": " + err);
          continue;
        }
        auto old = targets_.find(t->key);
        if (old != targets_.end()) next[t->key] = std::move(old->second);
        else if (!next.count(t->key)) next[t->key] = std::move(t);
      }
    for (auto& [k, t] : targets_) {
      if (!t) continue;  // moved to next
      if (out && t->scraped) {
        for (const auto& key : t->prev) add_stale_key(*out, key, now);
        for (auto name : kSynthetic) {
          LabelSet ls = t->labels;
          ls.push_back({"__name__", std::string(name)});
          sort_labels(ls);
          add_labels(*out, ls, moni::stale_nan(), now);
        }
        out->emit();
      }
    }
    targets_ = std::move(next);
    std::lock_guard lock(mu_);
    target_count_ = targets_.size();
  }

  static void add_labels(moni::Batch& out, const LabelSet& ls, double v, int64_t ts) {
    thread_local std::vector<moni::LabelRef> refs;
    refs.clear();
    for (const auto& l : ls) refs.push_back({l.name, l.value});
    out.add_sorted(refs, v, ts);
  }
  static void add_stale_key(moni::Batch& out, const std::string& key, int64_t ts) {
    thread_local std::vector<moni::LabelRef> refs;
    refs.clear();
    size_t i = 0;
    while (i < key.size()) {
      size_t a = key.find('\0', i);
      size_t b = key.find('\0', a + 1);
      refs.push_back({std::string_view(key).substr(i, a - i), std::string_view(key).substr(a + 1, b - a - 1)});
      i = b + 1;
    }
    out.add_sorted(refs, moni::stale_nan(), ts);
  }

  // Merges target labels into a scraped label set (Prometheus's
  // mutateSampleLabels) and sorts it.
  void merge_target_labels(LabelSet& ls, const Target& t) const {
    if (honor_labels_) {
      for (const auto& l : t.labels)
        if (!find(ls, l.name)) ls.push_back(l);
    } else {
      for (const auto& l : t.labels) {
        auto it = std::find_if(ls.begin(), ls.end(), [&](const moni::Label& x) { return x.name == l.name; });
        if (it != ls.end()) {
          std::string name = "exported_" + l.name;
          while (find(ls, name) || find(t.labels, name)) name = "exported_" + name;
          std::string value = std::move(it->value);
          it->value = l.value;
          ls.push_back({name, value});
        } else {
          ls.push_back(l);
        }
      }
    }
    sort_labels(ls);
  }

  // Parses one response of `t` into w.out (not emitted). Runs on any
  // worker thread; touches only `t`, `w` and atomics.
  void process(Target& t, const moni::scrape::FetchResult& res, int64_t now, Worker& w) {
    moni::Batch& out = w.out;
    moni::Batch& tb = w.tb;
    LabelSet& ls = w.ls;
    ++scrapes_;
    std::string error;
    const std::string* body = &res.body;
    std::string decoded;
    if (!res.ok) {
      error = res.error;
    } else if (res.status != 200) {
      error = "server returned HTTP status " + std::to_string(res.status);
    } else if (res.content_encoding == "gzip") {
      auto g = moni::scrape::gunzip(res.body, decoded, body_limit_);
      if (!g) error = g.error().message;
      body = &decoded;
    }
    size_t scraped = 0, post = 0, added = 0;
    std::unordered_set<std::string> current;
    tb.clear();
    if (error.empty()) {
      text::ParseOptions o;
      o.format = text::format_from_content_type(res.content_type);
      o.default_timestamp_ms = now;
      o.max_body_bytes = body_limit_;
      o.max_labels = label_limit_;
      o.max_label_name_length = label_name_limit_;
      o.max_label_value_length = label_value_limit_;
      o.duplicates = text::Duplicates::DropLater;
      auto pr = t.parser.parse(*body, o);
      if (!pr) {
        error = "invalid " +
                std::string(o.format == text::Format::OpenMetrics ? "OpenMetrics" : "text format") +
                " body: " + pr.error().message;  // the parser escapes what is not UTF-8
      } else {
        scraped = pr->samples + pr->duplicates_dropped;
        for (const auto& m : t.parser.metadata()) tb.describe(m.family, m.type, m.help, m.unit);
        for (size_t i = 0; i < t.parser.size(); ++i) {
          auto s = t.parser.sample(i);
          ls.resize(s.labels.size());
          for (size_t k = 0; k < s.labels.size(); ++k) {
            ls[k].name.assign(s.labels[k].name);
            ls[k].value.assign(s.labels[k].value);
          }
          merge_target_labels(ls, t);
          if (!rules_.empty() && (!moni::relabel::apply(rules_, ls) || !find(ls, "__name__")))
            continue;
          ++post;
          int64_t ts = honor_timestamps_ ? s.timestamp_ms : now;
          std::string key = series_key(ls);
          if (!t.prev.count(key)) ++added;
          current.insert(std::move(key));
          add_labels(tb, ls, s.value, ts);
        }
        if (sample_limit_ && post > sample_limit_)
          error = "sample_limit exceeded (" + std::to_string(post) + " samples > " +
                  std::to_string(sample_limit_) + ")";
      }
    }
    const bool up = error.empty();
    if (!up) {
      ++failures_;
      tb.clear();
      if (error != t.last_error) ctx_.warn(name_ + ": scrape of " + t.url() + " failed: " + error);
      else ctx_.debug(name_ + ": scrape of " + t.url() + " failed: " + error);
      t.last_error = error;
      // As Prometheus: a failed scrape ends every series of the last one.
      for (const auto& key : t.prev) add_stale_key(out, key, now);
      t.prev.clear();
      scraped = post = added = 0;
    } else {
      if (!t.last_error.empty()) ctx_.info(name_ + ": scrape of " + t.url() + " recovered");
      t.last_error.clear();
      for (const auto& key : t.prev)
        if (!current.count(key)) add_stale_key(out, key, now);
      t.prev = std::move(current);
      const moni_batch& v = tb.view();
      for (size_t i = 0; i < v.metadata_count; ++i) {
        const auto& m = v.metadata[i];
        out.describe(moni::sv(m.family), static_cast<moni::MetricType>(m.type), moni::sv(m.help),
                     moni::sv(m.unit));
      }
      for (size_t i = 0; i < v.sample_count; ++i)
        out.add_sorted(v.samples[i].labels, v.samples[i].label_count, v.samples[i].value,
                       v.samples[i].timestamp_ms);
    }
    t.scraped = true;
    const double vals[] = {up ? 1.0 : 0.0, res.seconds, static_cast<double>(scraped),
                           static_cast<double>(post), static_cast<double>(added)};
    for (size_t i = 0; i < 5; ++i) {
      LabelSet ls = t.labels;
      ls.push_back({"__name__", std::string(kSynthetic[i])});
      sort_labels(ls);
      add_labels(out, ls, vals[i], now);
    }
  }

  moni::Context& ctx_;
  std::string name_;
  int64_t interval_ms_ = 15000, timeout_ms_ = 10000;
  std::string job_, metrics_path_, scheme_;
  bool honor_labels_ = false, honor_timestamps_ = true, gzip_ = true;
  uint64_t body_limit_ = 0;
  size_t sample_limit_ = 0, label_limit_ = 0, label_name_limit_ = 0, label_value_limit_ = 0;
  std::string auth_user_, auth_pass_, auth_file_;
  std::string bearer_, bearer_file_;
  moni::scrape::TlsClientOptions tls_opts_;
  std::shared_ptr<moni::scrape::TlsClientSource> tls_;
  std::vector<StaticGroup> static_;
  std::vector<std::string> file_sd_;
  std::vector<moni::relabel::Rule> rules_;
  std::unique_ptr<moni::scrape::FileDiscovery> discovery_;
  std::map<std::string, std::unique_ptr<Target>> targets_;
  size_t parse_workers_ = 0;  // 0: hardware threads
  std::vector<std::unique_ptr<Worker>> workers_;  // grown by collect() only
  std::mutex mu_;
  std::atomic<size_t> target_count_{0};
  std::atomic<uint64_t> scrapes_{0}, failures_{0}, discovery_errors_{0};
};

}  // namespace

MONI_EXPORT_PLUGIN(ScrapeCollector)
