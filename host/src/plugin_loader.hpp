// Finding plugin shared objects (moni-*.so), loading the ones asked for with
// Boost.DLL, and refusing the ones the host must not run, each with a
// one-line reason.
#pragma once

#include <moni/plugin_abi.h>

#include <map>
#include <memory>
#include <moni/result.hpp>
#include <mutex>
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

/// The plugin files of an ordered list of directories, loaded on demand: a
/// scan only lists the moni-*.so files, and a plugin is loaded when
/// something asks for it by name (an instance of the config, a CLI command)
/// or when load_all() is called (`moni plugins`). So a host maps only the
/// plugins (and their libraries: OpenSSL, LMDB, ...) its config uses, and an
/// unrelated broken file costs nothing.
///
/// Name to file: plugin `N` is looked for in `moni-N.so` of each directory in
/// order; the first such file that loads and declares `N` provides it. Only
/// when no file of that name does (and none was refused: its refusal is the
/// answer), the other files are loaded in scan order
/// (directories in order, files sorted) until one declares `N`; the ones that
/// declare another name are unloaded again, remembering their name. A name
/// two files declare goes to the first one loaded; the other is refused.
///
/// Thread-safety: all methods lock; build on one thread, read on any.
class PluginRegistry {
 public:
  /// Lists every moni-*.so of `dirs`, without loading any. Plugins
  /// `previous` loaded stay loaded in this registry (a reload neither
  /// reopens nor unloads a plugin) and are reused for their file.
  void scan(const std::vector<std::string>& dirs, const PluginRegistry* previous = nullptr);
  /// The plugin named `name`, loaded on first use; null when no file
  /// provides it (explain_missing() says why).
  std::shared_ptr<LoadedPlugin> find(std::string_view name);
  /// Loads every listed file (`moni plugins`).
  void load_all();
  /// The plugins loaded so far, in scan order.
  std::vector<std::shared_ptr<LoadedPlugin>> plugins() const;
  /// One line per file this registry tried to load and refused.
  std::vector<std::string> failures() const;
  /// Why `name` is not available (for "unknown plugin" messages): the
  /// refusal of its file, or what the directories hold instead.
  std::string explain_missing(std::string_view name) const;
  /// The plugin names the listed files provide: the name a loaded file
  /// declared, else the one its file name says. Sorted, unique.
  std::vector<std::string> available() const;
  const std::vector<std::string>& dirs() const { return dirs_; }
  /// How many plugin files the scan listed.
  size_t files() const;

 private:
  struct File {
    std::string path;
    std::string stem;  // N of moni-N.so
    enum State { kListed, kLoaded, kProbed, kRefused } state = kListed;
    std::string declared;                  // the name the plugin declares, once loaded
    std::shared_ptr<LoadedPlugin> plugin;  // kLoaded
  };
  // Loads `f` (or reuses a previous registry's plugin of its path) and
  // registers it under its name, or records why not; true when loaded.
  bool load(File& f);
  std::shared_ptr<LoadedPlugin> find_locked(std::string_view name);

  mutable std::mutex mu_;
  std::vector<std::string> dirs_;
  std::vector<File> files_;  // scan order
  std::map<std::string, std::shared_ptr<LoadedPlugin>, std::less<>> by_name_;
  std::map<std::string, std::shared_ptr<LoadedPlugin>> kept_;  // previous registry's, by path
  std::vector<std::string> failures_;
};

}  // namespace moni::host
