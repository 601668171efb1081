// rules: Prometheus's recording and alerting rules as a collector. Each
// collect() evaluates the groups that are due over a storage instance; what
// rules produce (recorded series, ALERTS, ALERTS_FOR_STATE, staleness
// markers) leaves as the batch, so a pipeline `rules -> tsdb` stores it.
// /api/v1/rules and /api/v1/alerts serve the state as Prometheus does.
#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <moni/sdk.hpp>
#include <mutex>

#include "alert_template.hpp"
#include "json_format.hpp"
#include "rule_config.hpp"
#include "rule_engine.hpp"
#include "storage_queryable.hpp"
#if defined(MONI_RULES_HAVE_YAML)
#include <unistd.h>

#include <iostream>

#include "rule_test_runner.hpp"
#include "yaml_rules.hpp"
#endif
#include "notifier.hpp"
#include "notifier_config.hpp"

namespace {

using moni::rules::GroupSpec;
using moni::rules::OutgoingAlert;

// Hands a rule's samples to the host one rule at a time: emit() delivers them
// through the pipeline before the next rule runs.
class BatchSink : public moni::rules::SampleSink {
 public:
  explicit BatchSink(moni::Batch& b) : b_(b) {}
  void add(const moni::Labels& labels, double value, int64_t t_ms) override {
    refs_.clear();
    for (const auto& l : labels) refs_.push_back({l.name, l.value});
    b_.add_sorted(refs_, value, t_ms);
  }
  void flush() override { ok_ = b_.emit() && ok_; }
  bool ok() const { return ok_; }

 private:
  moni::Batch& b_;
  std::vector<moni::LabelRef> refs_;
  bool ok_ = true;
};

std::string dir_of(const std::string& where) {
  auto pos = moni::rules::parse_where(where);
  auto slash = pos.file.rfind('/');
  return slash == std::string::npos ? std::string(".") : pos.file.substr(0, slash);
}

void split_lines(const std::string& all, std::vector<std::string>& out) {
  size_t s = 0;
  while (s < all.size()) {
    size_t n = all.find('\n', s);
    if (n == std::string::npos) n = all.size();
    if (n > s) out.push_back(all.substr(s, n - s));
    s = n + 1;
  }
}

// A reload builds a new instance beside the running one: the host creates and
// starts it, swaps the pipelines, then stops and destroys the old one. The new
// instance finds its predecessor (same data dir and instance name) when it
// starts, keeps it reachable, and takes its alert state at its first
// collect, when the old one evaluates no more. A reload that fails never
// collects, so the running instance is left as it was.
// Thread-safety: `mu` is held while the instance evaluates and while a
// successor takes over; `retired` is set by the successor.
struct LiveEngine {
  std::mutex mu;
  std::shared_ptr<moni::rules::RuleEngine> engine;
  bool retired = false;
};

std::mutex& live_registry_mu() {
  static std::mutex mu;
  return mu;
}

std::map<std::string, std::weak_ptr<LiveEngine>>& live_registry() {
  static std::map<std::string, std::weak_ptr<LiveEngine>> m;
  return m;
}

class RulesPlugin : public moni::Collector {
 public:
  static constexpr std::string_view plugin_name = "rules";
  static constexpr std::string_view plugin_version = "0.1.0";
  static constexpr std::string_view plugin_description =
      "Prometheus recording and alerting rules: evaluates rule groups over a storage instance, "
      "emits recorded series and ALERTS, serves /api/v1/rules and /api/v1/alerts";
  static constexpr std::string_view sample_config =
      R"cfg(# storage = ""                 # storage instance the rules read (default: the only one)
# evaluation_interval = "1m"    # interval of groups that set none
# rule_files = []               # globs of rule files: TOML [[group]] files (and .yml when supported)
# external_url = ""             # base of alerts' generatorURL and $externalURL
# external_labels = {}          # $externalLabels in templates
# resend_delay = "1m"           # firing alerts are re-sent this often
# for_outage_tolerance = "1h"   # ALERTS_FOR_STATE older than this is not restored
# for_grace_period = "10m"      # minimum wait before a restored alert fires
# lookback_delta = "5m"         # PromQL lookback
# query_timeout = "2m"          # upper bound of one rule's query
# [[collectors.rules.group]]
# name = "example"
# interval = "1m"
# [[collectors.rules.group.rule]]
# record = "job:up:sum"
# expr = "sum by (job) (up)")cfg";

  RulesPlugin(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "rules");
    storage_ = r.string("storage", "");
    moni::rules::EngineOptions o;
    // Groups without an interval use evaluation_interval, else the
    // instance's own interval when written, else Prometheus's 1m.
    int64_t tick_ms = 15'000;
    if (auto iv = cfg.get("interval"); iv.present() && iv.type() == MONI_CFG_STRING) {
      if (auto d = moni::parse_duration_ms(iv.as_string()); d && *d > 0) tick_ms = *d;
    }
    o.default_interval_ms =
        r.duration_ms("evaluation_interval", cfg.get("interval").present() ? tick_ms : 60'000);
    o.resend_delay_ms = r.duration_ms("resend_delay", 60'000);
    o.outage_tolerance_ms = r.duration_ms("for_outage_tolerance", 3'600'000);
    o.for_grace_period_ms = r.duration_ms("for_grace_period", 600'000);
    if (auto el = r.raw("external_labels"); el.present()) {
      if (el.type() != MONI_CFG_TABLE) {
        r.error(el, "external_labels must be a table of strings");
      } else {
        for (size_t i = 0; i < el.size(); ++i) {
          std::string_view k;
          auto v = el.at(i, &k);
          if (v.type() != MONI_CFG_STRING) {
            r.error(v, "external_labels." + std::string(k) + " must be a string");
            continue;
          }
          o.external_labels.push_back({std::string(k), std::string(v.as_string())});
        }
        std::sort(o.external_labels.begin(), o.external_labels.end());
      }
    }
    o.query.lookback_ms = r.duration_ms("lookback_delta", 5 * 60'000);
    o.query.timeout = std::chrono::milliseconds(r.duration_ms("query_timeout", 2 * 60'000));
    o.query.max_samples = r.integer("max_samples", 50'000'000, 1);
    notifier_opts_ = moni::rules::parse_notifier_options(r);
    o.external_url = notifier_opts_.external_url;  // also $externalURL in templates
    files_ = r.strings("rule_files", {});
    // Each entry's position, for errors about the entry (a missing file).
    if (auto rf = cfg.get("rule_files"); rf.present())
      for (size_t i = 0; i < rf.size(); ++i) files_where_.push_back(rf.at(i).where());
    base_dir_ = dir_of(cfg.where());
    inline_groups_ = moni::rules::read_groups(r, "group");
    tick_ms_ = tick_ms;
    opts_ = std::move(o);

    std::vector<std::string> errors;
    try {
      r.finish();
    } catch (const moni::ConfigError& e) {
      split_lines(e.what(), errors);
    }
    files_stamp_ = moni::rules::rule_files_stamp(files_, base_dir_);
    auto groups = assemble_groups(errors);
    if (!errors.empty()) throw moni::ConfigError(join_lines(errors));
    engine_ = std::make_shared<moni::rules::RuleEngine>(std::move(groups), opts_);
    live_->engine = engine_;
    live_key_ = std::string(ctx_.data_dir()) + "\n" + std::string(ctx_.instance_name());
  }

  moni::Result<void> start() override {
    {
      std::lock_guard reg(live_registry_mu());
      auto& slot = live_registry()[live_key_];
      predecessor_ = slot.lock();
    }
    if (predecessor_) {
      // Until the first collect takes its state over, the API shows the
      // predecessor's rules and alerts rather than none.
      std::scoped_lock lock(predecessor_->mu, engine_mu_);
      if (!predecessor_->retired) shown_before_takeover_ = predecessor_->engine;
    }
    if (!ctx_.storage(storage_))
      return moni::make_error(storage_.empty()
                                  ? "rules: no storage instance is configured"
                                  : "rules: storage instance '" + storage_ + "' not found");
    if (!notifier_opts_.alertmanagers.empty()) {
      auto n = moni::rules::Notifier::create(notifier_opts_,
                                             [this](std::string_view m) { ctx_.warn(m); });
      if (!n) return moni::make_error("rules: " + n.error().message);
      notifier_ = std::move(*n);
    }
    auto r =
        ctx_.route("/api/v1/rules", [this](const moni::HttpRequest& req, moni::HttpResponse& resp) {
          // Case-blind and worded as Prometheus 2.42 (strings.ToLower, %q);
          // the value was pasted into the JSON unescaped (?type=a"b made a
          // body no client could parse).
          std::string type(moni::param(req.params(), "type").value_or(""));
          for (char& c : type)
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          if (!type.empty() && type != "alert" && type != "record") {
            std::string body = R"({"status":"error","errorType":"bad_data","error":)";
            moni::prom_api::append_json_string(
                body,
                "invalid parameter \"type\": not supported value " + moni::rules::go_quoted(type));
            reply(resp, 400, body + "}");
            return;
          }
          reply(resp, 200, R"({"status":"success","data":)" + engine()->rules_json(type) + "}");
        });
    if (!r) return r;
    return ctx_.route("/api/v1/alerts", [this](const moni::HttpRequest&, moni::HttpResponse& resp) {
      reply(resp, 200, R"({"status":"success","data":)" + engine()->alerts_json() + "}");
    });
  }

  moni::Result<void> collect(moni::Batch& out) override {
    if (!took_over_) take_over();
    std::lock_guard live(live_->mu);
    if (live_->retired) return {};  // a reload's instance has taken over
    reload_rule_files_if_changed();
    auto client = ctx_.storage(storage_);
    if (!client) return moni::make_error("rules: storage instance is gone");
    moni::promql::StorageQueryable q(*client);
    BatchSink sink(out);
    auto alerts = engine_->run_due(q, out.default_timestamp(), sink);
    if (!alerts.empty()) deliver(std::move(alerts));
    if (!sink.ok()) return moni::make_error("rules: the host refused a batch of rule results");
    return {};
  }

  void self_metrics(moni::Batch& out) override {
    engine()->self_metrics(out);
    out.describe("moni_rules_rule_files_last_reload_successful", moni::MetricType::Gauge,
                 "Whether the last change of the rule files was loaded (0: it had errors and "
                 "the rules in use were kept).");
    out.add("moni_rules_rule_files_last_reload_successful", {}, files_ok_ ? 1.0 : 0.0);
    if (notifier_) notifier_->self_metrics(out);
    std::lock_guard lock(queue_mu_);
    out.describe("moni_rules_notifications_pending", moni::MetricType::Gauge,
                 "Alerts decided to be sent and not yet handed to a notifier.");
    out.add("moni_rules_notifications_pending", {}, static_cast<double>(queue_.size()));
  }

  // `moni rules import FILE [--out FILE]` and `moni rules test FILE...`
  // (the host passes name "rules").
  moni::Result<void> command(std::string_view name,
                             std::span<const std::string_view> args) override {
    if (name != "rules" || args.empty())
      return moni::make_error(
          "usage: moni rules import FILE [--out FILE] | moni rules test FILE...");
#if defined(MONI_RULES_HAVE_YAML)
    if (args[0] == "import") return moni::rules::run_rules_import(args.subspan(1), std::cout);
    if (args[0] == "test") {
      if (args.size() < 2) return moni::make_error("usage: moni rules test FILE...");
      // As promtool: every file is tested, an unreadable or invalid one
      // prints "  FAILED:" and its errors on stderr, and the exit status
      // says whether any failed.
      for (auto f : args.subspan(1))
        if (::access(std::string(f).c_str(), F_OK) != 0)
          return moni::make_error("path '" + std::string(f) + "' does not exist");
      size_t failed = 0;
      for (auto f : args.subspan(1)) {
        auto r = moni::rules::run_rule_tests(std::string(f), std::cout, std::cerr);
        if (!r) {
          std::cout.flush();
          std::cerr << "  FAILED:\n" << r.error().message << "\n\n";
          ++failed;
          continue;
        }
        failed += *r ? 0 : 1;
      }
      if (failed) return moni::make_error(std::to_string(failed) + " test file(s) failed");
      return {};
    }
#endif
    return moni::make_error("unknown subcommand '" + std::string(args[0]) + "' (import, test)");
  }

  void stop() override {
    if (notifier_) notifier_->stop();
  }

 private:
  static void reply(moni::HttpResponse& resp, unsigned status, const std::string& body) {
    resp.status(status);
    resp.header("content-type", "application/json");
    resp.body(body);
  }

  // First collect: if the instance this one replaces on a reload still
  // lives, take its alert state and retire it.
  void take_over() {
    took_over_ = true;
    struct Unshow {
      RulesPlugin& p;
      ~Unshow() {
        std::lock_guard lock(p.engine_mu_);
        p.shown_before_takeover_.reset();
      }
    } unshow{*this};
    std::lock_guard reg(live_registry_mu());
    auto& slot = live_registry()[live_key_];
    // The latest instance that collected (another reload's, made after this
    // one started) or else the one running when this one started.
    auto prev = slot.lock();
    if (!prev) prev = predecessor_;
    predecessor_.reset();
    if (prev && prev != live_) {
      std::lock_guard old(prev->mu);
      if (!prev->retired && prev->engine) {
        engine_->adopt_state(*prev->engine);
        ctx_.info("rules: reload: took over the alert state of the previous configuration");
      }
      prev->retired = true;
      prev->engine.reset();
    }
    slot = live_;
  }

  std::shared_ptr<moni::rules::RuleEngine> engine() const {
    std::lock_guard lock(engine_mu_);
    return shown_before_takeover_ ? shown_before_takeover_ : engine_;
  }

  // The instance's groups and those of its rule files, validated; errors
  // (file:line:col) are appended to `errors`.
  std::vector<GroupSpec> assemble_groups(std::vector<std::string>& errors) const {
    std::vector<GroupSpec> groups = inline_groups_;
    auto from_files = moni::rules::load_rule_files(files_, base_dir_, errors, &files_where_);
    for (auto& g : from_files) groups.push_back(std::move(g));
    auto v = moni::rules::validate_groups(groups);
    errors.insert(errors.end(), v.begin(), v.end());
    for (const auto& g : groups) {
      int64_t iv = g.interval_ms > 0 ? g.interval_ms : opts_.default_interval_ms;
      if (iv < tick_ms_)
        errors.push_back(g.pos.str() + ": rules: group \"" + g.name + "\": interval " +
                         moni::format_duration_ms(iv) +
                         " is shorter than the instance's interval " +
                         moni::format_duration_ms(tick_ms_) +
                         ", the tick on which groups are evaluated; lower the instance's interval");
    }
    return groups;
  }

  // The host keeps an instance whose options did not change across a reload,
  // so an edited rule file is noticed here (path, inode, size, mtime of what
  // the patterns match) and loaded as Prometheus reloads it: the state of
  // unchanged rules is kept; a file with errors leaves the rules in use and
  // is reported once. Collect thread, with live_->mu held.
  void reload_rule_files_if_changed() {
    if (files_.empty()) return;
    std::string stamp = moni::rules::rule_files_stamp(files_, base_dir_);
    if (stamp == files_stamp_ || stamp == failed_stamp_) return;
    std::vector<std::string> errors;
    auto groups = assemble_groups(errors);
    std::shared_ptr<moni::rules::RuleEngine> next;
    if (errors.empty()) {
      try {
        next = std::make_shared<moni::rules::RuleEngine>(std::move(groups), opts_);
      } catch (const std::exception& e) {
        errors.push_back(e.what());
      }
    }
    if (!errors.empty()) {
      failed_stamp_ = stamp;
      files_ok_ = false;
      ctx_.warn("rules: rule files changed but have errors; the rules in use are kept:\n" +
                join_lines(errors));
      return;
    }
    next->adopt_state(*engine_);
    {
      std::lock_guard lock(engine_mu_);
      engine_ = next;
    }
    live_->engine = next;
    files_stamp_ = std::move(stamp);
    failed_stamp_.clear();
    files_ok_ = true;
    ctx_.info("rules: rule files changed: loaded " + std::to_string(next->group_count()) +
              " group(s)");
  }

  static std::string join_lines(const std::vector<std::string>& lines) {
    std::string all;
    for (const auto& e : lines) all += (all.empty() ? "" : "\n") + e;
    return all;
  }

  void deliver(std::vector<OutgoingAlert> alerts) {
    if (notifier_) {
      notifier_->send(std::move(alerts));
      return;
    }
    // No Alertmanager configured: keep the latest alerts for inspection.
    std::lock_guard lock(queue_mu_);
    for (auto& a : alerts) queue_.push_back(std::move(a));
    while (queue_.size() > 10'000) queue_.pop_front();
  }

  moni::Context& ctx_;
  std::string storage_;
  mutable std::mutex engine_mu_;  // engine_ is replaced when rule files change
  std::shared_ptr<moni::rules::RuleEngine> engine_;
  std::shared_ptr<moni::rules::RuleEngine> shown_before_takeover_;  // guarded by engine_mu_
  std::vector<std::string> files_;
  std::vector<std::string> files_where_;  // "file:line:col" of each rule_files entry
  std::string base_dir_;
  std::vector<GroupSpec> inline_groups_;
  moni::rules::EngineOptions opts_;
  int64_t tick_ms_ = 15'000;
  std::string files_stamp_, failed_stamp_;  // collect thread
  std::atomic<bool> files_ok_{true};
  std::shared_ptr<LiveEngine> live_ = std::make_shared<LiveEngine>();
  std::shared_ptr<LiveEngine> predecessor_;  // kept reachable until the first collect
  std::string live_key_;
  bool took_over_ = false;  // collect thread only
  std::mutex queue_mu_;
  std::deque<OutgoingAlert> queue_;
  moni::rules::NotifierOptions notifier_opts_;
  std::unique_ptr<moni::rules::Notifier> notifier_;
};

}  // namespace

MONI_EXPORT_PLUGIN(RulesPlugin)
