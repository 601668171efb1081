// The HTTP routes of the host's server: plugin routes (exact paths, or
// prefixes ending in '/') and the host's own. The server looks a request up
// here and runs the handler on a worker thread.
#pragma once

#include <moni/plugin_abi.h>

#include <atomic>
#include <cstdint>
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

/// How fast a route's handler has been, to decide whether the next request
/// may run on the network thread. Thread-safety: atomics, any thread.
struct RouteSpeed {
  /// Handlers faster than this (wall time) count as fast.
  static constexpr int64_t kFastNs = 1'000'000;
  /// Fast runs in a row (on workers first) before a route runs inline.
  static constexpr uint32_t kStreak = 8;
  std::atomic<uint32_t> fast_streak{0};
  std::atomic<bool> never_inline{false};  // it blocked (collect_now) once
  void record(int64_t ns) {
    if (ns >= kFastNs) fast_streak.store(0, std::memory_order_relaxed);
    else if (fast_streak.load(std::memory_order_relaxed) < kStreak)
      fast_streak.fetch_add(1, std::memory_order_relaxed);
  }
  bool fast() const {
    return !never_inline.load(std::memory_order_relaxed) &&
           fast_streak.load(std::memory_order_relaxed) >= kStreak;
  }
};

/// A route and its owner (an instance name, or "host").
struct Route {
  std::string path;
  std::string owner;
  const void* owner_id = nullptr;  // the owning Instance, null for the host's own routes
  RouteHandler handler;
  bool fallback = false;  // served only while no ordinary route has this path
  std::shared_ptr<RouteSpeed> speed = std::make_shared<RouteSpeed>();
  /// True when the handler may block however fast it was so far (its
  /// instance queries storage); such a route always runs on a worker.
  std::function<bool()> may_block = nullptr;
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
