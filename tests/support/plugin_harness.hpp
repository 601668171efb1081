// PluginHarness: a fake host for plugin tests. It dlopens a real plugin .so,
// hands it a config parsed from TOML text, and drives its lifecycle, HTTP
// routes and storage reader the way the host does, capturing what it emits.
#pragma once

#include <moni/sdk.hpp>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace moni::testing {

/// An owning copy of one emitted sample.
struct OwnedSample {
  Labels labels;  // sorted, including __name__
  double value = 0;
  int64_t timestamp_ms = 0;
  std::string name() const { return label("__name__"); }
  std::string label(std::string_view n) const {
    for (const auto& l : labels)
      if (l.name == n) return l.value;
    return {};
  }
};

/// An owning copy of emitted batches.
struct OwnedBatch {
  std::vector<OwnedSample> samples;
  std::vector<Metadata> metadata;
  /// Samples of metric `name` (optionally with label k=v).
  std::vector<OwnedSample> find(std::string_view name, std::string_view k = {},
                                std::string_view v = {}) const;
  /// The only sample matching, or nullptr when none or several.
  const OwnedSample* one(std::string_view name, std::string_view k = {},
                         std::string_view v = {}) const;
  const Metadata* meta(std::string_view family) const;
  void append(const moni_batch& b);
};

/// Full path of a built-in plugin in the build tree ("node" -> .../moni-node.so).
std::string plugin_path(std::string_view name);

/// Thread-safety: like the host, serializes nothing itself; tests call it
/// from one thread except for http(), which may run concurrently.
class PluginHarness {
 public:
  /// Loads `so_path` and creates an instance from `toml_body` (the body of
  /// the instance's table, e.g. "interval = \"5s\"\nprocfs = \"/x\"").
  static Result<std::unique_ptr<PluginHarness>> load(const std::string& so_path,
                                                     const std::string& toml_body,
                                                     const std::string& instance = "test",
                                                     const std::string& data_dir = "");
  ~PluginHarness();

  const moni_plugin_descriptor& descriptor() const { return *desc_; }
  Result<void> start();
  /// One collection; everything emitted, in emit order. The plugin may emit
  /// from several threads at once (ABI 1.2), as the host allows.
  Result<OwnedBatch> collect(int64_t now_ms);
  /// One collection; one OwnedBatch per emit call, in the order the calls
  /// arrived.
  Result<std::vector<OwnedBatch>> collect_batches(int64_t now_ms);
  /// How many distinct threads called emit during the last collection.
  size_t last_emit_threads() const { return last_emit_threads_; }
  Result<OwnedBatch> process(Batch& in);
  Result<void> write(Batch& in);
  Result<void> flush();
  void stop();
  OwnedBatch self_metrics();

  struct HttpResult {
    unsigned status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::string header(std::string_view name) const;
  };
  /// Calls the route registered for the target's path; 404 when none.
  HttpResult http(const std::string& method, const std::string& target,
                  const std::string& body = "",
                  std::vector<std::pair<std::string, std::string>> headers = {});
  std::vector<std::string> routes() const;

  /// The instance's storage reader (storage plugins), or nullptr.
  const moni_storage_reader* reader();
  /// What host->storage() returns to this instance.
  void set_storage(const moni_storage_reader* r) { storage_ = r; }
  /// The ABI minor the fake host announces (default: MONI_ABI_MINOR), e.g.
  /// 1 to see what a plugin does on a 1.1 host.
  void set_host_abi_minor(uint16_t minor);
  /// What the plugin's Context::listen_urls() returns (default: none).
  void set_listen_urls(std::vector<std::string> urls) { listen_urls_ = std::move(urls); }
  /// Overrides the clock the plugin sees (0: real time).
  void set_now_ms(int64_t ms) { now_ms_ = ms; }
  /// What the plugin's Context::collect_now() runs (default: an error).
  void set_collect_now(std::function<Result<void>(int64_t timeout_ms)> fn) {
    collect_now_ = std::move(fn);
  }

  std::vector<std::string> logs() const;

 private:
  PluginHarness() = default;
  struct Impl;
  friend struct Impl;
  std::unique_ptr<Impl> impl_;
  const moni_plugin_descriptor* desc_ = nullptr;
  moni_instance* inst_ = nullptr;
  const moni_storage_reader* storage_ = nullptr;
  int64_t now_ms_ = 0;
  std::function<Result<void>(int64_t)> collect_now_;
  bool started_ = false;
  size_t last_emit_threads_ = 0;
  std::vector<std::string> listen_urls_;
};

}  // namespace moni::testing
