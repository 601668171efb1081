// CLI subcommands that do not run pipelines: check-config, plugins, and the
// storage instance's offline commands (backup, restore, import).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace moni::host {

/// Parses the config, loads the plugins, creates and destroys every
/// instance. Prints errors to stderr; returns the exit code.
int check_config(const std::string& path, const std::optional<std::string>& data_dir);

/// Lists the plugins found (built-in dir plus the config's plugin_dirs).
int list_plugins(const std::optional<std::string>& config_path);

/// Creates (does not start) a storage instance and runs `name` on it.
int storage_command(const std::string& name, const std::string& config_path,
                    const std::optional<std::string>& data_dir,
                    const std::optional<std::string>& storage,
                    const std::vector<std::string>& args);

/// Runs subcommand `name` of plugin `plugin` (`moni rules import ...`) on an
/// instance created with the config's table of that plugin when `config_path`
/// declares one, else with an empty table. Returns the exit code.
int plugin_command(const std::string& plugin, const std::string& name,
                   const std::optional<std::string>& config_path,
                   const std::vector<std::string>& args);

}  // namespace moni::host
