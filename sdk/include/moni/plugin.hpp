// The C++ plugin SDK: base classes for the four plugin kinds, the Context an
// instance gets from the host, and MONI_EXPORT_PLUGIN, which generates the
// noexcept C trampolines of the ABI (exceptions become error values there).
#pragma once

#include <moni/batch.hpp>
#include <moni/config.hpp>
#include <moni/http.hpp>
#include <moni/plugin_abi.h>
#include <moni/result.hpp>
#include <moni/storage.hpp>

#include <cstdio>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace moni {

enum class LogLevel : uint32_t {
  Debug = MONI_LOG_DEBUG,
  Info = MONI_LOG_INFO,
  Warn = MONI_LOG_WARN,
  Error = MONI_LOG_ERROR
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

/// What the host offers one plugin instance: identity, logging, HTTP routes,
/// storage access, the clock. Thread-safety: every method may be called from
/// any thread.
class Context {
 public:
  explicit Context(const moni_host_api* host) : host_(host) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  std::string_view instance_name() const { return sv(host_->instance_name); }
  std::string_view data_dir() const { return sv(host_->data_dir); }
  int64_t now_ms() const { return host_->now_ms(host_->ctx); }

  void log(LogLevel level, std::string_view message) const {
    host_->log(host_->ctx, static_cast<uint32_t>(level), ms(message));
  }
  void debug(std::string_view m) const { log(LogLevel::Debug, m); }
  void info(std::string_view m) const { log(LogLevel::Info, m); }
  void warn(std::string_view m) const { log(LogLevel::Warn, m); }
  void error(std::string_view m) const { log(LogLevel::Error, m); }

  /// Serves `path` (a prefix when it ends in '/') on the host's HTTP server.
  /// The handler runs on host worker threads, concurrently with collect/write.
  Result<void> route(std::string_view path, HttpHandler handler) {
    handlers_.push_back(Route{std::move(handler), host_});
    moni_error err{};
    if (host_->http_route(host_->ctx, ms(path), &call_route, &handlers_.back(), &err) != MONI_OK)
      return make_error(err.message);
    return {};
  }

  /// Serves `path` only while no other instance serves it with route(): a
  /// default answer. Needs a host of ABI 1.1 or later.
  Result<void> route_fallback(std::string_view path, HttpHandler handler) {
    if (!MONI_HOST_HAS(host_, http_route_fallback))
      return make_error("the host is too old for fallback routes (needs ABI 1.1)");
    handlers_.push_back(Route{std::move(handler), host_});
    moni_error err{};
    if (host_->http_route_fallback(host_->ctx, ms(path), &call_route, &handlers_.back(), &err) !=
        MONI_OK)
      return make_error(err.message);
    return {};
  }

  /// Runs one collection cycle of the pipelines this instance is a sink of
  /// and returns once their batches were written to it (collect on scrape).
  /// Call it from an HTTP handler, never from write().
  Result<void> collect_now(int64_t timeout_ms) const {
    if (!MONI_HOST_HAS(host_, collect_now))
      return make_error("the host is too old for collect_now (needs ABI 1.1)");
    moni_error err{};
    if (host_->collect_now(host_->ctx, timeout_ms, &err) != MONI_OK) return make_error(err.message);
    return {};
  }

  /// The host's HTTP listeners as "scheme://host:port" (e.g.
  /// "http://127.0.0.1:9095"), from start() on; empty on a host older than
  /// ABI 1.2 or one that serves no HTTP.
  std::vector<std::string> listen_urls() const {
    std::vector<std::string> out;
    if (!MONI_HOST_HAS(host_, listen_urls) || !host_->listen_urls) return out;
    host_->listen_urls(
        host_->ctx,
        [](void* user, moni_str s) -> int {
          static_cast<std::vector<std::string>*>(user)->emplace_back(s.ptr, s.len);
          return MONI_OK;
        },
        &out);
    return out;
  }

  /// A client of storage instance `name` (empty: the only one configured).
  std::optional<StorageClient> storage(std::string_view name = {}) const {
    const moni_storage_reader* r = host_->storage(host_->ctx, ms(name));
    if (!r) return std::nullopt;
    return StorageClient(r);
  }

  /// The host's ABI minor version (its major equals the plugin's).
  uint16_t host_abi_minor() const { return host_->abi_minor; }
  /// Whether a collector may call Batch::emit() from several threads at once
  /// during collect() (a host of ABI 1.2 or later; see plugin_abi.h).
  bool concurrent_emit() const { return host_->abi_minor >= 2; }

  const moni_host_api* host_api() const { return host_; }

 private:
  struct Route {
    HttpHandler fn;
    const moni_host_api* host;
  };
  static void call_route(void* user, const moni_http_request* req, moni_http_response* resp) {
    auto* r = static_cast<Route*>(user);
    HttpResponse out(r->host, resp);
    try {
      r->fn(HttpRequest(*req), out);
    } catch (const std::exception& e) {
      out.status(500);
      out.body(std::string("internal error: ") + e.what() + "\n");
    } catch (...) {
      out.status(500);
      out.body("internal error\n");
    }
  }

  const moni_host_api* host_;
  std::deque<Route> handlers_;  // deque: addresses stay valid as routes are added
};

/// Common lifecycle of every plugin instance. The constructor parses the
/// config (throw ConfigError; no side effects: it also runs for
/// `moni check-config`); start() acquires resources; stop() releases them.
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual Result<void> start() { return {}; }
  virtual Result<void> flush() { return {}; }
  virtual void stop() {}
  /// Adds the instance's own metrics (moni_<plugin>_*) to `out`.
  virtual void self_metrics(Batch& out) { (void)out; }
  /// Runs an offline CLI subcommand (`moni backup ...`) on a created but not
  /// started instance.
  virtual Result<void> command(std::string_view name, std::span<const std::string_view> args) {
    (void)args;
    return make_error("subcommand '" + std::string(name) + "' is not supported by this plugin");
  }
};

/// Gathers samples. collect() is called on a worker thread, on the
/// instance's interval, never concurrently with itself.
class Collector : public Plugin {
 public:
  /// Add this cycle's samples to `out` (its default timestamp is the cycle's
  /// time); `out.emit()` may hand over partial batches. When
  /// Context::concurrent_emit() is true, other Batch objects given `out`'s
  /// emitter (Batch::share_emitter) may emit from other threads at once, as
  /// long as they all finished before collect() returns.
  virtual Result<void> collect(Batch& out) = 0;
};

/// Plugin flags: a plugin class may declare
/// `static constexpr uint64_t plugin_flags = MONI_PLUGIN_CONCURRENT_WRITE;`
/// (or MONI_PLUGIN_CONCURRENT_PROCESS) when its write() (process()) is safe to
/// call from several threads at once; the host then delivers batches to it
/// without serializing them. Without the member the flags are 0.
template <class T>
constexpr uint64_t plugin_flags_of() {
  if constexpr (requires { T::plugin_flags; })
    return static_cast<uint64_t>(T::plugin_flags);
  else
    return 0;
}

/// Transforms batches (relabel, filter). Never called concurrently with
/// itself, unless the class declares plugin_flags with
/// MONI_PLUGIN_CONCURRENT_PROCESS.
class Processor : public Plugin {
 public:
  virtual Result<void> process(const BatchView& in, Batch& out) = 0;
};

/// Consumes batches (exposition, remote_write, ...). write() is never called
/// concurrently with itself (unless the class declares plugin_flags with
/// MONI_PLUGIN_CONCURRENT_WRITE), but may be concurrently with HTTP handlers.
class Output : public Plugin {
 public:
  virtual Result<void> write(const BatchView& batch) {
    (void)batch;
    return {};
  }
};

/// Stores batches and answers selections. write() returning success means
/// the batch is durable. write() is never called concurrently with itself
/// unless the class declares plugin_flags with MONI_PLUGIN_CONCURRENT_WRITE.
/// The read side may be called from any thread, concurrently with write().
class Storage : public Plugin {
 public:
  virtual Result<void> write(const BatchView& batch) = 0;
  virtual Result<std::unique_ptr<SeriesCursor>> select(std::span<const Matcher> matchers,
                                                       int64_t mint_ms, int64_t maxt_ms,
                                                       bool with_samples) = 0;
  virtual Result<std::vector<std::string>> label_names(std::span<const Matcher> matchers,
                                                       int64_t mint_ms, int64_t maxt_ms) = 0;
  virtual Result<std::vector<std::string>> label_values(std::string_view name,
                                                        std::span<const Matcher> matchers,
                                                        int64_t mint_ms, int64_t maxt_ms) = 0;
  virtual Result<std::vector<Metadata>> metadata(std::string_view family) = 0;
};

namespace detail {

inline void set_error(moni_error* err, std::string_view msg) {
  if (!err) return;
  size_t n = std::min(msg.size(), sizeof(err->message) - 1);
  std::memcpy(err->message, msg.data(), n);
  err->message[n] = '\0';
}

template <class T>
struct Instance {
  explicit Instance(const moni_host_api* host) : ctx(host) {}
  Context ctx;
  std::unique_ptr<T> obj;
  Batch batch;
  moni_storage_reader reader{};
  // Output batches of a processor whose process() runs concurrently: one per
  // call in flight, reused (no allocation per call once warm).
  std::mutex pool_mu;
  std::vector<std::unique_ptr<Batch>> pool;

  std::unique_ptr<Batch> take_batch() {
    std::lock_guard lock(pool_mu);
    if (pool.empty()) return std::make_unique<Batch>();
    auto b = std::move(pool.back());
    pool.pop_back();
    return b;
  }
  void give_batch(std::unique_ptr<Batch> b) {
    std::lock_guard lock(pool_mu);
    pool.push_back(std::move(b));
  }
};

template <class T>
Instance<T>* self(moni_instance* i) {
  return reinterpret_cast<Instance<T>*>(i);
}

// Runs f, turning a failed Result or an exception into MONI_ERR + message.
template <class F>
int guarded(moni_error* err, F&& f) noexcept {
  try {
    Result<void> r = f();
    if (!r) {
      set_error(err, r.error().message);
      return MONI_ERR;
    }
    return MONI_OK;
  } catch (const std::exception& e) {
    set_error(err, std::string("exception: ") + e.what());
  } catch (...) {
    set_error(err, "unknown exception");
  }
  return MONI_ERR;
}

template <class T>
struct Trampolines {
  static moni_instance* create(const moni_host_api* host, const moni_config_node* cfg,
                               moni_error* err) noexcept {
    try {
      auto inst = std::make_unique<Instance<T>>(host);
      inst->obj = std::make_unique<T>(inst->ctx, ConfigView(host->config, cfg));
      return reinterpret_cast<moni_instance*>(inst.release());
    } catch (const std::exception& e) {
      set_error(err, e.what());
    } catch (...) {
      set_error(err, "unknown exception while creating the instance");
    }
    return nullptr;
  }
  static int start(moni_instance* i, moni_error* err) noexcept {
    return guarded(err, [&] { return self<T>(i)->obj->start(); });
  }
  static int flush(moni_instance* i, moni_error* err) noexcept {
    return guarded(err, [&] { return self<T>(i)->obj->flush(); });
  }
  static void stop(moni_instance* i) noexcept {
    try {
      self<T>(i)->obj->stop();
    } catch (...) {
    }
  }
  static void destroy(moni_instance* i) noexcept {
    try {
      delete self<T>(i);
    } catch (...) {
    }
  }
  static int self_metrics(moni_instance* i, moni_emit_fn emit, void* ectx) noexcept {
    moni_error err{};
    return guarded(&err, [&]() -> Result<void> {
      Batch b;
      b.set_default_timestamp(self<T>(i)->ctx.now_ms());
      self<T>(i)->obj->self_metrics(b);
      if (!b.empty() && emit(ectx, &b.view()) != MONI_OK) return make_error("emit failed");
      return {};
    });
  }
  static int collect(moni_instance* i, int64_t now_ms, moni_emit_fn emit, void* ectx,
                     moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Collector, T>) {
        Batch& b = self<T>(i)->batch;
        b.clear();
        b.set_default_timestamp(now_ms);
        b.set_emitter(emit, ectx);
        Result<void> r = self<T>(i)->obj->collect(b);
        // What was gathered before a failure is still delivered.
        if (!b.emit()) return make_error("the host refused the batch");
        return r;
      } else {
        return make_error("not a collector");
      }
    });
  }
  static int process(moni_instance* i, const moni_batch* in, moni_emit_fn emit, void* ectx,
                     moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Processor, T>) {
        auto run = [&](Batch& b) -> Result<void> {
          b.clear();
          b.set_emitter(emit, ectx);
          Result<void> r = self<T>(i)->obj->process(BatchView(*in), b);
          if (!r) return r;
          if (!b.emit()) return make_error("the host refused the batch");
          return {};
        };
        if constexpr ((plugin_flags_of<T>() & MONI_PLUGIN_CONCURRENT_PROCESS) != 0) {
          // Calls may overlap: each gets a batch of its own.
          struct Lease {
            Instance<T>* inst;
            std::unique_ptr<Batch> b;
            ~Lease() {
              b->clear();
              inst->give_batch(std::move(b));
            }
          } lease{self<T>(i), self<T>(i)->take_batch()};
          return run(*lease.b);
        } else {
          return run(self<T>(i)->batch);
        }
      } else {
        return make_error("not a processor");
      }
    });
  }
  static int write(moni_instance* i, const moni_batch* batch, moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Output, T> || std::is_base_of_v<Storage, T>) {
        return self<T>(i)->obj->write(BatchView(*batch));
      } else {
        return make_error("not a sink");
      }
    });
  }

  // ---- storage read side
  struct Cursor {
    std::unique_ptr<SeriesCursor> impl;
  };
  static int r_select(void* s, const moni_matcher* m, size_t n, int64_t mint, int64_t maxt,
                      int samples, moni_series_cursor** out, moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Storage, T>) {
        auto ms_ = from_abi(m, n);
        auto r = static_cast<T*>(s)->select(ms_, mint, maxt, samples != 0);
        if (!r) return r.error();
        *out = reinterpret_cast<moni_series_cursor*>(new Cursor{std::move(r.value())});
        return {};
      } else {
        return make_error("not a storage");
      }
    });
  }
  static int r_next(moni_series_cursor* c, moni_series_view* out, moni_error* err) noexcept {
    int more = 0;
    int rc = guarded(err, [&]() -> Result<void> {
      auto r = reinterpret_cast<Cursor*>(c)->impl->next(*out);
      if (!r) return r.error();
      more = *r ? 1 : 0;
      return {};
    });
    return rc == MONI_OK ? more : MONI_ERR;
  }
  static void r_close(moni_series_cursor* c) noexcept { delete reinterpret_cast<Cursor*>(c); }
  static int r_names(void* s, const moni_matcher* m, size_t n, int64_t mint, int64_t maxt,
                     moni_str_fn fn, void* user, moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Storage, T>) {
        auto ms_ = from_abi(m, n);
        auto r = static_cast<T*>(s)->label_names(ms_, mint, maxt);
        if (!r) return r.error();
        for (const auto& x : *r) fn(user, ms(x));
        return {};
      } else {
        return make_error("not a storage");
      }
    });
  }
  static int r_values(void* s, moni_str name, const moni_matcher* m, size_t n, int64_t mint,
                      int64_t maxt, moni_str_fn fn, void* user, moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Storage, T>) {
        auto ms_ = from_abi(m, n);
        auto r = static_cast<T*>(s)->label_values(sv(name), ms_, mint, maxt);
        if (!r) return r.error();
        for (const auto& x : *r) fn(user, ms(x));
        return {};
      } else {
        return make_error("not a storage");
      }
    });
  }
  static int r_metadata(void* s, moni_str family, moni_metadata_fn fn, void* user,
                        moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      if constexpr (std::is_base_of_v<Storage, T>) {
        auto r = static_cast<T*>(s)->metadata(sv(family));
        if (!r) return r.error();
        for (const auto& x : *r) {
          moni_metadata md{ms(x.family), static_cast<uint32_t>(x.type), ms(x.help), ms(x.unit)};
          fn(user, &md);
        }
        return {};
      } else {
        return make_error("not a storage");
      }
    });
  }
  static const moni_storage_reader* reader(moni_instance* i) noexcept {
    auto* inst = self<T>(i);
    inst->reader = moni_storage_reader{sizeof(moni_storage_reader),
                                       inst->obj.get(),
                                       &r_select,
                                       &r_next,
                                       &r_close,
                                       &r_names,
                                       &r_values,
                                       &r_metadata};
    return &inst->reader;
  }

  static int command(moni_instance* i, moni_str name, const moni_str* args, size_t n,
                     moni_error* err) noexcept {
    return guarded(err, [&]() -> Result<void> {
      std::vector<std::string_view> a;
      for (size_t k = 0; k < n; ++k) a.push_back(sv(args[k]));
      return self<T>(i)->obj->command(sv(name), a);
    });
  }

  static constexpr uint32_t kind() {
    if constexpr (std::is_base_of_v<Collector, T>) return MONI_KIND_COLLECTOR;
    else if constexpr (std::is_base_of_v<Processor, T>) return MONI_KIND_PROCESSOR;
    else if constexpr (std::is_base_of_v<Storage, T>) return MONI_KIND_STORAGE;
    else return MONI_KIND_OUTPUT;
  }
};

template <class T>
const moni_plugin_descriptor* entry(const moni_host_api* host) noexcept {
  static_assert(std::is_base_of_v<Plugin, T>, "a plugin derives from moni::Collector, "
                                              "moni::Processor, moni::Storage or moni::Output");
  // A host of another major version gets nothing; it reports the mismatch
  // from the descriptor it would otherwise read.
  (void)host;
  using Tr = Trampolines<T>;
  constexpr uint32_t k = Tr::kind();
  static const moni_plugin_descriptor d = {
      sizeof(moni_plugin_descriptor),
      MONI_ABI_MAJOR,
      MONI_ABI_MINOR,
      ms(T::plugin_name),
      ms(T::plugin_version),
      ms(T::plugin_description),
      k,
      ms(T::sample_config),
      &Tr::create,
      &Tr::start,
      k == MONI_KIND_COLLECTOR ? &Tr::collect : nullptr,
      k == MONI_KIND_PROCESSOR ? &Tr::process : nullptr,
      (k == MONI_KIND_STORAGE || k == MONI_KIND_OUTPUT) ? &Tr::write : nullptr,
      &Tr::flush,
      &Tr::stop,
      &Tr::destroy,
      &Tr::self_metrics,
      k == MONI_KIND_STORAGE ? &Tr::reader : nullptr,
      &Tr::command,
      plugin_flags_of<T>(),
  };
  return &d;
}

}  // namespace detail
}  // namespace moni

/// Exports plugin class T from this shared object. T derives from one of
/// moni::Collector/Processor/Storage/Output, has a constructor
/// T(moni::Context&, const moni::ConfigView&) and static string_view members
/// plugin_name, plugin_version, plugin_description and sample_config, and
/// optionally `static constexpr uint64_t plugin_flags` (MONI_PLUGIN_CONCURRENT_*).
#define MONI_EXPORT_PLUGIN(T)                                                            \
  extern "C" MONI_ABI_EXPORT const moni_plugin_descriptor* moni_plugin_entry(            \
      const moni_host_api* host) {                                                       \
    return ::moni::detail::entry<T>(host);                                               \
  }
