// What an HTTP connection needs from the host, in plain C++ types only, so
// that the TLS module (a separate shared object with its own copy of Asio
// and Beast) can serve connections without sharing any Asio object.
#pragma once

#include <moni/plugin_abi.h>

#include <functional>
#include <string>
#include <string_view>

#include "route_table.hpp"

namespace moni::host {

/// Thread-safety: every member may be called from any thread at any time.
struct HttpHandler {
  /// Authorization, route lookup and the route's handler. May block.
  std::function<void(const moni_http_request&, HttpResponseData&)> handle;
  /// Whether the route for `path` answers fast enough (from what its
  /// handler took so far) to run on the network thread without a hop.
  std::function<bool(std::string_view path)> runs_inline;
  /// Runs a job on the host's worker pool.
  std::function<void(std::function<void()>)> workers;
  /// Debug-level log line of component "http".
  std::function<void(const std::string&)> log_debug;
};

}  // namespace moni::host
