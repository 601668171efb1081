// The host's one HTTP server (Boost.Beast behind this small header): accepts
// on the io thread and runs route handlers on the worker pool, except for
// routes whose handler has been fast every time lately: those answer on the
// network thread, without two thread hops. With TLS set, connections go to
// the TLS module (loaded on demand) and must start with a TLS handshake
// (plain HTTP gets a 400 and is closed, as Prometheus's web server does).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <moni/result.hpp>
#include <string>

#include "basic_auth.hpp"
#include "route_table.hpp"
#include "tls_server_context.hpp"

namespace boost::asio {
class io_context;
}

namespace moni::host {

/// For host services that block (collect_now): a route whose handler calls
/// one while running on the network thread is never run there again.
void note_blocking_in_handler();

/// Thread-safety: listen/close/set_tls on the io thread (or before it runs).
class HttpServer {
 public:
  /// `to_workers` runs a job on the worker pool.
  HttpServer(boost::asio::io_context& io, RouteTable& routes,
             std::function<void(std::function<void()>)> to_workers);
  ~HttpServer();
  /// Binds "ADDRESS:PORT" or "[IPv6]:PORT" and starts accepting.
  Result<void> listen(const std::string& address);
  /// The bound port (useful with port 0).
  uint16_t port() const;
  /// Requires these credentials on every route from now on (null: none).
  void set_auth(std::shared_ptr<const BasicAuth> auth);
  /// Serves HTTPS with these files for connections accepted from now on
  /// (null: plain HTTP); connections already open keep their context.
  void set_tls(std::shared_ptr<const TlsServerContext> tls);
  void close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace moni::host
