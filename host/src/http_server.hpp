// The host's one HTTP server (Boost.Beast behind this small header), on
// network threads of its own: accepts there and runs route handlers on the
// worker pool, except for routes whose handler has been fast every time
// lately: those answer on a network thread, without two thread hops. At most
// one handler runs on the network threads at a time. A fast route that
// turns slow holds the main loop (and the connections it serves) for that
// one request; after 20 ms the second thread accepts and serves new
// connections until it returns, and the route goes back to the pool. With
// TLS set, connections go to the TLS module (loaded on demand) and must
// start with a TLS handshake (plain HTTP gets a 400 and is closed, as
// Prometheus's web server does).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <moni/result.hpp>
#include <string>

#include "basic_auth.hpp"
#include "route_table.hpp"
#include "tls_server_context.hpp"

namespace moni::host {

/// For host services that block (collect_now): a route whose handler calls
/// one while running on the network thread is never run there again.
void note_blocking_in_handler();

/// Thread-safety: every method from any thread; listen() once, before
/// stop(). Handlers must not outlive the server: stop() joins its threads.
class HttpServer {
 public:
  /// Network threads (named "moni-http"), each with its own io_context: the
  /// main loop, and a rescue loop that serves new connections while a fast
  /// route's handler has held the main loop for 20 ms.
  static constexpr int kNetworkThreads = 2;
  /// `to_workers` runs a job on the worker pool.
  HttpServer(RouteTable& routes, std::function<void(std::function<void()>)> to_workers);
  ~HttpServer();
  /// Binds "ADDRESS:PORT" or "[IPv6]:PORT", starts accepting and the
  /// network threads.
  Result<void> listen(const std::string& address);
  /// The bound port (useful with port 0).
  uint16_t port() const { return port_; }
  /// Requires these credentials on every route from now on (null: none).
  void set_auth(std::shared_ptr<const BasicAuth> auth);
  /// Serves HTTPS with these files for connections accepted from now on
  /// (null: plain HTTP); connections already open keep their context.
  void set_tls(std::shared_ptr<const TlsServerContext> tls);
  /// Stops accepting; open connections are still served until stop().
  void close();
  /// Closes, ends every connection and joins the network threads.
  void stop();

 private:
  struct Net;
  struct Impl;
  std::unique_ptr<Net> net_;
  std::shared_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace moni::host
