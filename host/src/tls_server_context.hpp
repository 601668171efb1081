// TLS for the host's HTTP server ([host.web.tls]). OpenSSL and everything
// that touches it live in a module of the host (moni-host-tls.so, next to
// the plugin directory) that is loaded only when the config has
// [host.web.tls]: a host without TLS does not map libssl/libcrypto
// (about 1.7 MiB of resident memory). This header is what the host sees.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "http_handler.hpp"

namespace moni::host {

/// Which client certificates the server asks for (Prometheus web config's
/// NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert).
enum class ClientAuth { None, Request, Require };

/// [host.web.tls] as written in the config; paths already absolute.
struct TlsServerOptions {
  std::string cert_file, key_file, client_ca_file;
  ClientAuth client_auth = ClientAuth::None;
  bool tls13_only = false;  // min_version = "TLS13"
  int64_t handshake_timeout_ms = 10000;
};

/// The loaded certificate, key and client CA files.
/// Thread-safety: immutable after load(); usable from any thread.
class TlsServerContext {
 public:
  /// Why load() failed: the option whose file is at fault and OpenSSL's reason.
  struct Error {
    std::string key;  // "cert_file", "key_file" or "client_ca_file"
    std::string message;
  };
  /// Loads the TLS module if needed and reads every file now; a null result
  /// and `err` set when one is unusable (or the module is missing).
  static std::shared_ptr<const TlsServerContext> load(const TlsServerOptions& opts, Error& err);
  virtual ~TlsServerContext() = default;
  virtual const TlsServerOptions& options() const = 0;
  /// One line for the log: "TLS 1.2+, client certificates required, certificate CN=..., expires ...".
  virtual std::string describe() const = 0;
};

/// Serves HTTPS connections on a network thread of its own (the module's
/// Asio is not the host's). Thread-safety: serve() from any thread;
/// destruction stops the thread and drops the connections.
class TlsConnections {
 public:
  /// Creates the module's server (loading the module if needed); null with
  /// `err` set when the module cannot be loaded.
  static std::unique_ptr<TlsConnections> create(std::string& err);
  virtual ~TlsConnections() = default;
  /// Takes over the accepted socket `fd`: plain HTTP gets a 400 and is
  /// closed, a TLS client is served with `ctx` through `handler`.
  virtual void serve(int fd, std::string remote, std::shared_ptr<const TlsServerContext> ctx,
                     std::shared_ptr<const HttpHandler> handler) = 0;
};

/// What the module exports (moni_host_tls_module); host and module come
/// from the same build, `build_id` checks it.
struct TlsModuleApi {
  const char* build_id;
  std::shared_ptr<const TlsServerContext> (*load)(const TlsServerOptions&, TlsServerContext::Error&);
  std::unique_ptr<TlsConnections> (*connections)();
};

}  // namespace moni::host
