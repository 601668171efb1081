// The host's TOML config: [host], plugin instance tables ([collectors.X],
// [processors.X], [storage.X], [outputs.X]) and [pipelines.X] wiring them.
// Parsing checks everything that does not need the plugins; check_plugins()
// adds what does (unknown plugin, kind mismatch).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <moni/result.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace moni::host {

class PluginRegistry;
class TlsServerContext;

/// The name of the built-in collector of moni's own metrics.
inline constexpr std::string_view kSelfInstance = "self";

/// One plugin instance. Thread-safety: immutable after parsing.
struct InstanceConfig {
  std::string name;
  uint32_t kind = 0;  // moni_plugin_kind of the section it is declared in
  std::string plugin;
  int64_t interval_ms = 15000;
  int64_t timeout_ms = 15000;
  int64_t jitter_ms = 0;
  const toml::table* table = nullptr;  // owned by HostConfig::doc; null for implicit "self"
  std::string where;                   // "file:line:column" of the table
  std::string plugin_where;            // of the "plugin" key, or of the table
  std::string fingerprint;             // plugin + options: equal means "unchanged" on reload
  bool builtin_self = false;
};

/// One pipeline. Thread-safety: immutable after parsing.
struct PipelineConfig {
  std::string name;
  std::string where;
  std::vector<std::string> collectors, processors, sinks, forward;
};

/// A whole parsed config. Thread-safety: immutable after parsing.
struct HostConfig {
  std::string file;
  std::shared_ptr<toml::table> doc;
  std::string listen = "127.0.0.1:9095";
  std::string data_dir = "/var/lib/moni";
  std::string log_level = "info";
  std::vector<std::string> plugin_dirs;                 // absolute, or relative to the config file
  std::map<std::string, std::string> basic_auth_users;  // [host.web]: user -> password hash
  std::shared_ptr<const TlsServerContext> tls;          // [host.web.tls], files loaded; null: plain HTTP
  std::vector<InstanceConfig> instances;
  std::vector<PipelineConfig> pipelines;

  const InstanceConfig* instance(std::string_view name) const;
};

/// Reads and checks `path`. The error lists every problem, one
/// "file:line:column: message" per line.
Result<HostConfig> parse_config_file(const std::string& path);
Result<HostConfig> parse_config_text(std::string_view text, const std::string& path);

/// Problems only the plugins can reveal: unknown plugin, an instance declared
/// in the wrong section for its plugin's kind. Empty when fine. Loads the
/// plugins the instances name (and only those).
std::vector<std::string> check_plugins(const HostConfig& cfg, PluginRegistry& plugins);

/// "host:port" / "[v6]:port" split; false when malformed.
bool split_listen(std::string_view listen, std::string& host, uint16_t& port);

}  // namespace moni::host
