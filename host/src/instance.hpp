// One plugin instance as the host holds it: the host API it was given, its
// lifecycle calls with errors as values, and its counters for moni_* metrics.
#pragma once

#include <moni/plugin_abi.h>

#include <atomic>
#include <memory>
#include <moni/result.hpp>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "host_config.hpp"
#include "plugin_loader.hpp"
#include "sample_check.hpp"

namespace moni::host {

class Instance;

/// What instances need from whoever runs them (routes, other instances).
/// Thread-safety: implementations are called from any thread.
class HostServices {
 public:
  virtual ~HostServices() = default;
  virtual Result<void> add_route(Instance& owner, std::string path, moni_http_handler_fn fn,
                                 void* user, bool fallback) = 0;
  virtual const moni_storage_reader* storage(Instance& caller, std::string_view name) = 0;
  /// One collection cycle of every pipeline `caller` is a sink of, written to
  /// it before this returns (ABI 1.1 collect_now).
  virtual Result<void> collect_now(Instance& caller, int64_t timeout_ms) = 0;
  /// The HTTP listeners as "scheme://host:port" (ABI 1.2 listen_urls).
  virtual std::vector<std::string> listen_urls() { return {}; }
};

/// Counters of one instance (kept across reloads while the instance is).
struct InstanceStats {
  std::atomic<uint64_t> runs{0}, errors{0}, skipped{0}, timeouts{0}, write_errors{0};
  /// The last collect call, and the delivery of what it emitted.
  std::atomic<double> last_duration_s{0}, last_delivery_s{0};
  /// Samples it emitted that the host dropped, by DropReason (index 0 unused).
  std::atomic<uint64_t> dropped[kDropReasons] = {};
  /// When drops were last logged (steady clock, ms; 0: never).
  std::atomic<int64_t> drop_warned_ms{0};
};

/// Thread-safety: collect/process/write/flush/start/stop are serialized by
/// the instance itself (the ABI's promise to plugins), except that write()
/// of a plugin flagged MONI_PLUGIN_CONCURRENT_WRITE (process() with
/// MONI_PLUGIN_CONCURRENT_PROCESS) runs concurrently with itself, yet never
/// with the others: those wait for the calls in flight. start/stop are
/// called by the runtime from one thread at a time; HTTP handlers enter
/// through run_handler().
class Instance : public std::enable_shared_from_this<Instance> {
 public:
  /// `config` is the instance's table; `doc` keeps the tree it belongs to alive.
  Instance(InstanceConfig config, std::shared_ptr<const toml::table> doc,
           std::shared_ptr<LoadedPlugin> plugin, std::string data_dir, HostServices* services);
  ~Instance();
  Instance(const Instance&) = delete;
  Instance& operator=(const Instance&) = delete;

  /// Runs the plugin's create() (config validation, no side effects).
  Result<void> create();
  Result<void> start();
  Result<void> collect(int64_t now_ms, moni_emit_fn emit, void* emit_ctx);
  Result<void> process(const moni_batch& in, moni_emit_fn emit, void* emit_ctx);
  Result<void> write(const moni_batch& batch);
  Result<void> flush();
  /// Flushes nothing; waits for running HTTP handlers, then stops.
  void stop();
  void self_metrics(moni_emit_fn emit, void* emit_ctx);
  /// The storage read side, or null (not a started storage instance).
  const moni_storage_reader* reader();
  /// Runs offline command `name`; its error message starts with "label: name: "
  /// unless `with_context` is false.
  Result<void> command(std::string_view name, const std::vector<std::string>& args,
                       bool with_context = true);

  /// Runs an HTTP handler of this instance unless it is stopped (then 503).
  void run_handler(moni_http_handler_fn fn, void* user, const moni_http_request& req,
                   moni_http_response* resp, unsigned& status);

  const InstanceConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }
  const std::string& plugin_name() const { return config_.plugin; }
  const LoadedPlugin* plugin() const { return plugin_.get(); }
  uint32_t kind() const { return config_.kind; }
  /// The plugin's MONI_PLUGIN_CONCURRENT_* flags (0: built-in, or ABI < 1.2).
  uint64_t flags() const { return plugin_ ? plugin_->desc.flags : 0; }
  bool started() const { return started_; }
  bool uses_storage() const { return uses_storage_; }
  /// Whether it holds a storage reader (its HTTP handlers may then block on queries).
  bool reads_storage() const { return reads_storage_; }
  InstanceStats& stats() { return stats_; }
  /// "name (plugin)" for log lines.
  std::string label() const;

 private:
  static Instance* of(void* ctx) { return static_cast<Instance*>(ctx); }
  static void api_log(void* ctx, uint32_t level, moni_str message);
  static int api_route(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                       moni_error* err);
  static int api_route_fallback(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                                moni_error* err);
  static int add_route(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                       bool fallback, moni_error* err);
  static int api_collect_now(void* ctx, int64_t timeout_ms, moni_error* err);
  static int api_listen_urls(void* ctx, moni_str_fn fn, void* user);
  static void api_status(moni_http_response* r, uint32_t status);
  static void api_header(moni_http_response* r, moni_str name, moni_str value);
  static void api_body(moni_http_response* r, moni_str chunk);
  static const moni_storage_reader* api_storage(void* ctx, moni_str name);
  static int64_t api_now(void* ctx);

  InstanceConfig config_;
  std::shared_ptr<const toml::table> doc_;
  std::shared_ptr<LoadedPlugin> plugin_;  // outlives inst_
  std::string data_dir_;
  HostServices* services_;
  moni_host_api api_{};
  moni_instance* inst_ = nullptr;
  std::atomic<bool> started_{false};
  std::atomic<bool> uses_storage_{false};  // asked for storage, even if none was there
  std::atomic<bool> reads_storage_{false};
  // Exclusive for every call, shared for write()/process() of a flagged plugin.
  std::shared_mutex call_mu_;
  bool concurrent_write_ = false, concurrent_process_ = false;
  std::shared_mutex handler_mu_;
  InstanceStats stats_;
};

}  // namespace moni::host
