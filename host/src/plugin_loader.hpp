// Finding and loading plugin shared objects (moni-*.so) with Boost.DLL, and
// refusing the ones the host must not run, each with a one-line reason.
#pragma once

#include <moni/plugin_abi.h>

#include <map>
#include <memory>
#include <moni/result.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace boost::dll {
class shared_library;
}

namespace moni::host {

std::string_view kind_name(uint32_t kind);

/// One loaded plugin. The library handle is shared by every instance made
/// from it, so the code stays mapped until the last instance is destroyed.
/// Thread-safety: immutable after load.
struct LoadedPlugin {
  std::string path;  // as found in the plugin directory
  std::shared_ptr<boost::dll::shared_library> library;
  /// The descriptor's fields this host knows, zero beyond the plugin's struct_size.
  moni_plugin_descriptor desc{};
  std::string name, version, description, sample_config;
  uint32_t kind = 0;
};

/// Loads and checks one file. Errors are "<path>: <reason>".
Result<std::shared_ptr<LoadedPlugin>> load_plugin(const std::string& path);

/// The built-in plugin directory, found relative to the running executable.
std::string builtin_plugin_dir();

/// The plugins found in an ordered list of directories. Thread-safety: none;
/// built on one thread, then read-only.
class PluginRegistry {
 public:
  /// Loads every moni-*.so of `dirs` in order (files sorted by name). A
  /// file already loaded by `previous` (same path) is reused, not reopened.
  void scan(const std::vector<std::string>& dirs, const PluginRegistry* previous = nullptr);
  std::shared_ptr<LoadedPlugin> find(std::string_view name) const;
  const std::vector<std::shared_ptr<LoadedPlugin>>& plugins() const { return plugins_; }
  /// One line per refused file.
  const std::vector<std::string>& failures() const { return failures_; }
  /// Why `name` is not available (for "unknown plugin" messages).
  std::string explain_missing(std::string_view name) const;
  const std::vector<std::string>& dirs() const { return dirs_; }

 private:
  std::vector<std::string> dirs_;
  std::vector<std::shared_ptr<LoadedPlugin>> plugins_;
  std::map<std::string, std::shared_ptr<LoadedPlugin>, std::less<>> by_name_;
  std::vector<std::string> failures_;
};

}  // namespace moni::host
