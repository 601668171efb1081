// `moni run`: loads the config and plugins, starts the pipelines, schedules
// the collectors on one Boost.Asio io_context (collections and HTTP handlers
// on a worker pool), and handles SIGTERM/SIGINT (drain, flush, exit 0) and
// SIGHUP (reload, keeping the old pipelines when the new config is invalid).
#pragma once

#include <optional>
#include <string>

namespace moni::host {

struct RunOptions {
  std::string config_path;
  std::optional<std::string> listen;    // overrides [host] listen
  std::optional<std::string> data_dir;  // overrides [host] data_dir
};

/// Runs until a stop signal; returns the process exit code.
int run_host(const RunOptions& options);

}  // namespace moni::host
