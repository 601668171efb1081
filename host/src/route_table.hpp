// The HTTP routes of the host's server: plugin routes (exact paths, or
// prefixes ending in '/') and the host's own. The server looks a request up
// here and runs the handler on a worker thread.
#pragma once

#include <moni/plugin_abi.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace moni::host {

/// What a handler fills; the ABI's opaque moni_http_response points to one.
struct HttpResponseData {
  unsigned status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
};

using RouteHandler = std::function<void(const moni_http_request&, HttpResponseData&)>;

/// A route and its owner (an instance name, or "host").
struct Route {
  std::string path;
  std::string owner;
  const void* owner_id = nullptr;  // the owning Instance, null for the host's own routes
  RouteHandler handler;
  bool fallback = false;  // served only while no ordinary route has this path
};

/// Thread-safety: every method may be called from any thread.
class RouteTable {
 public:
  using Map = std::map<std::string, std::shared_ptr<const Route>>;
  /// Adds a route; false (with the owner in `err`) when the path is taken.
  /// An ordinary route replaces a fallback route of the same path; a
  /// fallback route gives way silently to an ordinary one.
  bool add(Route r, std::string& err);
  /// The same rule for a map that is being staged.
  static bool add_to(Map& map, Route r, std::string& err);
  /// The route for `path`: an exact match, else the longest prefix route.
  std::shared_ptr<const Route> find(const std::string& path) const;
  /// Replaces all routes at once (config reload).
  void replace(Map routes);
  Map snapshot() const;

 private:
  mutable std::mutex mu_;
  Map routes_;
};

}  // namespace moni::host
