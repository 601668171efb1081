#include "runtime.hpp"

#include <malloc.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <csignal>
#include <filesystem>
#include <moni/duration.hpp>
#include <random>
#include <thread>

#include "graph.hpp"
#include "host_config.hpp"
#include "http_server.hpp"
#include "log.hpp"
#include "plugin_loader.hpp"
#include "route_table.hpp"
#include "sd_notify.hpp"
#include "self_metrics.hpp"

namespace moni::host {
namespace net = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

class Runtime final : public HostServices {
 public:
  explicit Runtime(RunOptions opts) : opts_(std::move(opts)) {}

  int run() {
    // Registered first: a signal during start-up is queued, not fatal.
    net::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
    std::signal(SIGPIPE, SIG_IGN);
    auto cfg = load_config();
    if (!cfg) {
      log_error("config", "invalid configuration:\n" + cfg.error().message);
      return 1;
    }
    Level lvl;
    if (parse_level(cfg->log_level, lvl)) set_log_level(lvl);
    listen_ = cfg->listen;
    data_dir_ = cfg->data_dir;
    registry_ = scan_plugins(*cfg, nullptr);
    std::error_code ec;
    std::filesystem::create_directories(data_dir_, ec);
    if (ec) {
      log_error("host", "cannot create data_dir " + data_dir_ + ": " + ec.message());
      return 1;
    }
    size_t collectors = 0;
    for (const auto& i : cfg->instances) collectors += i.kind == MONI_KIND_COLLECTOR;
    pool_ = std::make_unique<net::thread_pool>(std::clamp<size_t>(collectors + 3, 4, 32));
    http_ = std::make_unique<HttpServer>(
        routes_, [this](std::function<void()> f) { net::post(*pool_, std::move(f)); });

    http_->set_auth(auth_of(*cfg));
    http_->set_tls(cfg->tls);
    tls_on_ = cfg->tls != nullptr;
    auto g = build_graph(std::move(*cfg), *registry_, data_dir_, this, nullptr, counters_);
    note_plugin_failures(*registry_);
    if (!g) {
      log_error("config", "invalid configuration:\n" + g.error().message);
      return shutdown_pool(1);
    }
    if (auto r = http_->listen(listen_); !r) {
      log_error("http", r.error().message);
      return shutdown_pool(1);
    }
    log_info("http", "listening on " + listen_.substr(0, listen_.rfind(':') + 1) +
                         std::to_string(http_->port()));
    std::shared_ptr<Graph> graph(std::move(g.value()));
    if (auto r = start_graph(graph); !r) {
      log_error("host", r.error().message);
      return shutdown_pool(1);
    }
    routes_.replace(std::move(staged_));
    {
      std::lock_guard lock(mu_);
      graph_ = graph;
    }
    schedule(graph);
    ready_ = true;
    malloc_trim(0);  // what config parsing and plugin loading freed goes back now

    std::function<void(const boost::system::error_code&, int)> on_signal =
        [&](const boost::system::error_code& e, int sig) {
          if (e) return;
          if (sig == SIGHUP)
            reload();
          else
            shutdown(sig);
          signals.async_wait(on_signal);
        };
    signals.async_wait(on_signal);
    log_info("host", "moni started: " + std::to_string(graph->pipelines.size()) + " pipeline(s), " +
                         std::to_string(graph->instances.size()) + " instance(s)");
    sd_notify_state("READY=1");
    io_.run();
    http_->stop();  // no handler runs on a network thread from here on
    pool_->join();
    routes_.replace({});
    std::lock_guard lock(mu_);
    graph_.reset();
    log_info("host", "stopped");
    return 0;
  }

  // ---- HostServices
  Result<void> add_route(Instance& owner, std::string path, moni_http_handler_fn fn, void* user,
                         bool fallback) override {
    Route r;
    r.path = path;
    r.fallback = fallback;
    r.owner = "instance '" + owner.name() + "'";
    r.owner_id = &owner;
    std::shared_ptr<Instance> inst = owner.shared_from_this();
    r.handler = [inst, fn, user](const moni_http_request& req, HttpResponseData& data) {
      unsigned status = 0;
      inst->run_handler(fn, user, req, reinterpret_cast<moni_http_response*>(&data), status);
      if (status) data = HttpResponseData{status, {}, "instance is stopped\n"};
    };
    r.may_block = [i = inst.get()] { return i->reads_storage(); };
    std::lock_guard lock(mu_);
    std::string err;
    if (staging_ ? !RouteTable::add_to(staged_, std::move(r), err)
                 : !routes_.add(std::move(r), err))
      return make_error(err);
    return {};
  }

  // One cycle of every collector feeding `caller`, on the pool; a collector
  // already collecting (its tick, or another scrape's collect_now) is waited
  // for instead of run twice. Its batches go to all of its pipelines' sinks,
  // like a timer cycle's: storage and every output see the same samples.
  Result<void> collect_now(Instance& caller, int64_t timeout_ms) override {
    note_blocking_in_handler();
    if (stopping_) return make_error("collect_now: moni is stopping");
    std::shared_ptr<Graph> g;
    {
      std::lock_guard lock(mu_);
      g = graph_;
    }
    if (!g) return make_error("collect_now: no running configuration");
    std::vector<CollectorJob*> jobs = g->jobs_feeding(caller);
    if (jobs.empty())
      return make_error("collect_now: instance '" + caller.name() +
                        "' is a sink of no pipeline with collectors");
    if (timeout_ms <= 0)
      for (const CollectorJob* j : jobs)
        timeout_ms = std::max(timeout_ms, j->instance->config().timeout_ms);
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::vector<uint64_t> targets(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      CollectorJob* job = jobs[i];
      if (!job->claim(targets[i], true)) continue;  // in flight: share it
      g->enter();
      net::post(*pool_, [g, job] {
        run_job(*g, *job);
        g->leave();
      });
    }
    std::string errors;
    for (size_t i = 0; i < jobs.size(); ++i) {
      std::string e;
      if (!jobs[i]->wait(targets[i], deadline, e))
        e = "no result within " + format_duration_ms(timeout_ms);
      if (!e.empty())
        errors += (errors.empty() ? "" : "; ") + jobs[i]->instance->label() + ": " + e;
    }
    if (!errors.empty()) return make_error("collect_now: " + errors);
    return {};
  }

  std::vector<std::string> listen_urls() override {
    uint16_t port = http_ ? http_->port() : 0;
    std::string host;
    uint16_t configured = 0;
    if (port == 0 || !split_listen(listen_, host, configured)) return {};
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return {std::string(tls_on_ ? "https" : "http") + "://" + host + ":" + std::to_string(port)};
  }

  const moni_storage_reader* storage(Instance& caller, std::string_view name) override {
    std::shared_ptr<Graph> g;
    {
      std::lock_guard lock(mu_);
      g = graph_;
      if (building_) {
        auto it = building_->instances.find(caller.name());
        if (it != building_->instances.end() && it->second.get() == &caller) g = building_;
      }
    }
    return g ? g->storage(name) : nullptr;
  }

 private:
  Result<HostConfig> load_config() {
    auto cfg = parse_config_file(opts_.config_path);
    if (!cfg) return cfg;
    if (opts_.listen) cfg->listen = *opts_.listen;
    if (opts_.data_dir) cfg->data_dir = *opts_.data_dir;
    return cfg;
  }

  static std::shared_ptr<const BasicAuth> auth_of(const HostConfig& cfg) {
    if (cfg.basic_auth_users.empty()) return nullptr;
    return std::make_shared<const BasicAuth>(cfg.basic_auth_users);
  }

  // Lists the plugin files; build_graph() loads the ones the config names.
  static std::shared_ptr<PluginRegistry> scan_plugins(const HostConfig& cfg,
                                                      const PluginRegistry* prev) {
    std::vector<std::string> dirs{builtin_plugin_dir()};
    dirs.insert(dirs.end(), cfg.plugin_dirs.begin(), cfg.plugin_dirs.end());
    auto reg = std::make_shared<PluginRegistry>();
    reg->scan(dirs, prev);
    log_debug("plugins", std::to_string(reg->files()) + " plugin file(s) found");
    return reg;
  }

  // After a build: the files it tried to load and refused. A registry tries
  // each file once; a reload that needs a refused file again tries again.
  void note_plugin_failures(const PluginRegistry& reg) {
    auto failures = reg.failures();
    for (const auto& f : failures) log_warn("plugins", f);
    stats_.plugin_load_failures += failures.size();
  }

  // Starts the graph's new instances with their routes staged apart from
  // the live ones, so a reload can fail without touching what is served.
  Result<void> start_graph(const std::shared_ptr<Graph>& g) {
    {
      std::lock_guard lock(mu_);
      staged_.clear();
      for (const auto& [p, r] : routes_.snapshot()) {
        if (!r->owner_id) continue;
        for (const auto& [n, i] : g->instances)
          if (i.get() == r->owner_id) staged_.emplace(p, r);
      }
      staging_ = true;
      building_ = g;
    }
    Graph* raw = g.get();
    g->builtin_collect = [this, raw](int64_t now, moni_emit_fn emit, void* ctx) {
      Batch b;
      b.set_default_timestamp(now);
      collect_self_metrics(*raw, counters_, stats_, b);
      emit(ctx, &b.view());
    };
    auto r = g->start_new();
    std::lock_guard lock(mu_);
    staging_ = false;
    building_.reset();
    if (!r) return r;
    add_host_routes();
    return {};
  }

  void add_host_routes() {
    auto text = [](unsigned status, std::string body) {
      return [status, body](const moni_http_request&, HttpResponseData& d) {
        d.status = status;
        d.body = body;
      };
    };
    staged_[std::string("/-/healthy")] = std::make_shared<const Route>(
        Route{"/-/healthy", "host", nullptr, text(200, "moni is Healthy.\n")});
    staged_[std::string("/-/ready")] = std::make_shared<const Route>(
        Route{"/-/ready", "host", nullptr, [this](const moni_http_request&, HttpResponseData& d) {
                if (ready_) {
                  d.body = "moni is Ready.\n";
                } else {
                  d.status = 503;
                  d.body = "Service Unavailable\n";
                }
              }});
    if (!staged_.count("/metrics"))
      staged_[std::string("/metrics")] = std::make_shared<const Route>(
          Route{"/metrics", "host", nullptr, [this](const moni_http_request&, HttpResponseData& d) {
                  std::shared_ptr<Graph> g;
                  {
                    std::lock_guard lock(mu_);
                    g = graph_;
                  }
                  if (g) render_self_metrics(*g, counters_, stats_, d.body);
                  d.headers.emplace_back("Content-Type", kSelfMetricsContentType);
                }});
  }

  // ---- scheduling (io thread)
  void schedule(const std::shared_ptr<Graph>& g) {
    timers_.clear();
    scheduled_ = nullptr;
    if (stopping_) return;
    scheduled_ = g.get();
    for (auto& job : g->jobs) {
      const auto& ic = job->instance->config();
      auto timer = std::make_shared<net::steady_timer>(io_);
      timers_.push_back(timer);
      arm(g, job.get(), timer, Clock::now(), jitter(ic.jitter_ms));
    }
  }

  int64_t jitter(int64_t max_ms) {
    if (max_ms <= 0) return 0;
    return std::uniform_int_distribution<int64_t>(0, max_ms)(rng_);
  }

  // `nominal` keeps the instance's phase; jitter is added per tick, not accumulated.
  void arm(std::shared_ptr<Graph> g, CollectorJob* job, std::shared_ptr<net::steady_timer> timer,
           Clock::time_point nominal, int64_t jitter_ms) {
    timer->expires_at(nominal + std::chrono::milliseconds(jitter_ms));
    timer->async_wait([this, g, job, timer, nominal](const boost::system::error_code& ec) {
      // A handler already queued when its timer was cancelled still runs
      // with success: only the scheduled graph may tick.
      if (ec || stopping_ || g.get() != scheduled_) return;
      bool ran_here = tick(g, *job);
      const auto& ic = job->instance->config();
      auto interval = std::chrono::milliseconds(ic.interval_ms);
      // The next tick keeps the original phase; ticks missed while the
      // io thread was busy are not replayed.
      auto next = nominal + interval;
      auto now = Clock::now();
      uint64_t missed = 0;
      for (; next <= now; next += interval) ++missed;
      // Slots passed while this thread collected were slots during a
      // running collection: skipped, as on the pool.
      if (ran_here && missed > 0) {
        job->instance->stats().skipped += missed;
        log_warn(job->instance->label(), "previous collection still running; skipping " +
                                             std::to_string(missed) + " collection(s)");
      }
      arm(g, job, timer, next, jitter(ic.jitter_ms));
    });
  }

  // True when the collection ran here, on the io thread.
  bool tick(const std::shared_ptr<Graph>& g, CollectorJob& job) {
    Instance& inst = *job.instance;
    uint64_t target;
    if (!job.claim(target, false)) {
      // A scrape's collect_now is collecting right now: nothing to skip.
      if (job.on_demand) return false;
      inst.stats().skipped++;
      log_warn(inst.label(), "previous collection still running; skipping this one");
      return false;
    }
    g->enter();
    if (g->jobs.size() == 1 && runs_inline(job)) {
      // The only collector, fast lately: collected and delivered here on
      // the io thread, which its timer woke anyway (a hop to a worker costs
      // a futex wake and a second thread's wake-up per cycle). With one
      // collector there is no other timer for it to delay; a collection
      // that turns slow sends the next cycle to the pool.
      run_job(*g, job);
      g->leave();
      return true;
    }
    net::post(*pool_, [g, &job] {
      run_job(*g, job);
      g->leave();
    });
    return false;
  }

  // A collection (with its delivery) that took under this runs on the io
  // thread the next time.
  static constexpr double kInlineCollectS = 0.010;
  static bool runs_inline(const CollectorJob& job) {
    const auto& st = job.instance->stats();
    return st.runs.load(std::memory_order_relaxed) > 0 &&
           st.last_duration_s.load(std::memory_order_relaxed) +
                   st.last_delivery_s.load(std::memory_order_relaxed) <
               kInlineCollectS;
  }

  // Worker thread: one claimed collection of `job`, with its counters.
  static void run_job(Graph& g, CollectorJob& job) {
    Instance& in = *job.instance;
    auto t0 = Clock::now();
    double deliver_s = 0;
    auto r = g.run_collector(job, wall_ms(), &deliver_s);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    auto& st = in.stats();
    st.runs++;
    st.last_duration_s = std::max(0.0, secs - deliver_s);
    st.last_delivery_s = deliver_s;
    std::string error;
    if (!r) {
      st.errors++;
      error = r.error().message;
      log_warn(in.label(), "collect failed: " + error);
    } else if (secs * 1000 > static_cast<double>(in.config().timeout_ms)) {
      st.errors++;
      st.timeouts++;
      error = "collection took " + std::to_string(secs) + "s, more than its timeout " +
              format_duration_ms(in.config().timeout_ms);
      log_warn(in.label(), error);
    }
    job.finish(std::move(error));
  }

  // ---- reload (SIGHUP)
  void reload() {
    if (stopping_) return;
    if (reloading_.exchange(true)) {
      log_warn("host", "a reload is already in progress; ignoring SIGHUP");
      return;
    }
    sd_notify_state("RELOADING=1");
    log_info("host", "reloading " + opts_.config_path);
    net::post(*pool_, [this] { prepare_reload(); });
  }

  void reload_failed(const std::string& why) {
    stats_.reloads_failure++;
    log_error("config", "reload failed, keeping the running configuration:\n" + why);
    reloading_ = false;
    sd_notify_state("READY=1");
  }

  // Worker thread: everything that may block or fail, before the swap.
  void prepare_reload() {
    auto cfg = load_config();
    if (!cfg) return reload_failed(cfg.error().message);
    if (cfg->listen != listen_)
      log_warn("host", "host.listen changed to " + cfg->listen +
                           "; the listen address changes only on restart (still " + listen_ + ")");
    if (cfg->data_dir != data_dir_)
      log_warn("host",
               "host.data_dir changed; it changes only on restart (still " + data_dir_ + ")");
    Level lvl;
    if (parse_level(cfg->log_level, lvl)) set_log_level(lvl);
    std::shared_ptr<Graph> old;
    {
      std::lock_guard lock(mu_);
      old = graph_;
    }
    auto reg = scan_plugins(*cfg, registry_.get());
    auto auth = auth_of(*cfg);
    auto tls = cfg->tls;
    auto g = build_graph(std::move(*cfg), *reg, data_dir_, this, old.get(), counters_);
    note_plugin_failures(*reg);
    if (!g) return reload_failed(g.error().message);
    std::shared_ptr<Graph> graph(std::move(g.value()));
    if (auto r = start_graph(graph); !r) return reload_failed(r.error().message);
    net::post(io_, [this, graph, old, reg, auth, tls] {
      http_->set_auth(auth);
      http_->set_tls(tls);
      tls_on_ = tls != nullptr;
      swap(graph, old, reg);
    });
  }

  // io thread: the new pipelines take over; the old ones drain on a worker.
  void swap(std::shared_ptr<Graph> graph, std::shared_ptr<Graph> old,
            std::shared_ptr<PluginRegistry> reg) {
    {
      std::lock_guard lock(mu_);
      routes_.replace(std::move(staged_));
      staged_.clear();
      graph_ = graph;
      registry_ = reg;
    }
    for (auto& t : timers_) t->cancel();
    schedule(graph);
    net::post(*pool_, [this, graph, old] {
      old->wait_idle();
      old->stop_except(graph.get());
      stats_.reloads_success++;
      log_info("host", "configuration reloaded: " + std::to_string(graph->pipelines.size()) +
                           " pipeline(s), " + std::to_string(graph->reused.size()) + " of " +
                           std::to_string(graph->instances.size()) + " instance(s) kept running");
      reloading_ = false;
      sd_notify_state("READY=1");
    });
  }

  // ---- shutdown (SIGTERM/SIGINT)
  void shutdown(int sig) {
    if (stopping_.exchange(true)) {
      log_warn("host", "already stopping");
      return;
    }
    log_info("host", std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                         ": draining and flushing");
    sd_notify_state("STOPPING=1");
    ready_ = false;
    for (auto& t : timers_) t->cancel();
    timers_.clear();
    scheduled_ = nullptr;
    net::post(*pool_, [this] {
      while (reloading_) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      std::shared_ptr<Graph> g;
      {
        std::lock_guard lock(mu_);
        g = graph_;
      }
      g->wait_idle();
      g->stop_except(nullptr);
      net::post(io_, [this] {
        http_->close();
        io_.stop();
      });
    });
  }

  int shutdown_pool(int code) {
    http_->stop();
    pool_->join();
    return code;
  }

  RunOptions opts_;
  std::string listen_, data_dir_;
  net::io_context io_;
  std::unique_ptr<net::thread_pool> pool_;
  RouteTable routes_;
  std::unique_ptr<HttpServer> http_;
  std::shared_ptr<PluginRegistry> registry_;
  PipelineCounters counters_;
  HostStats stats_;
  std::mutex mu_;  // graph_, building_, staged_, staging_, registry_
  std::shared_ptr<Graph> graph_, building_;
  RouteTable::Map staged_;
  bool staging_ = false;
  std::vector<std::shared_ptr<net::steady_timer>> timers_;  // io thread only
  const Graph* scheduled_ = nullptr;                        // io thread only
  std::mt19937_64 rng_{std::random_device{}()};
  std::atomic<bool> ready_{false}, stopping_{false}, reloading_{false};
  std::atomic<bool> tls_on_{false};  // the listener serves HTTPS (for listen_urls)
};

}  // namespace

int run_host(const RunOptions& options) {
  Runtime rt(options);
  return rt.run();
}

}  // namespace moni::host
