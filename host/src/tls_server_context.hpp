// TLS for the host's HTTP server ([host.web.tls]): the certificate, key and
// client CA files loaded into one OpenSSL context. OpenSSL only: loading
// happens while the config is parsed (check-config and SIGHUP validate the
// files too), the Asio/Beast side stays in http_server.cpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

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

/// The loaded files. Thread-safety: immutable after load(); native() may be
/// used to create connections from any thread (OpenSSL locks the context).
class TlsServerContext {
 public:
  /// Why load() failed: the option whose file is at fault and OpenSSL's reason.
  struct Error {
    std::string key;  // "cert_file", "key_file" or "client_ca_file"
    std::string message;
  };
  /// Reads every file now; a null result and `err` set when one is unusable.
  static std::shared_ptr<const TlsServerContext> load(const TlsServerOptions& opts, Error& err);
  ~TlsServerContext();
  TlsServerContext(const TlsServerContext&) = delete;
  TlsServerContext& operator=(const TlsServerContext&) = delete;

  ssl_ctx_st* native() const { return ctx_; }
  const TlsServerOptions& options() const { return opts_; }
  /// One line for the log: "TLS 1.2+, client certificates required, certificate CN=..., expires ...".
  std::string describe() const;

 private:
  TlsServerContext(ssl_ctx_st* ctx, TlsServerOptions opts) : ctx_(ctx), opts_(std::move(opts)) {}
  ssl_ctx_st* ctx_;
  TlsServerOptions opts_;
};

}  // namespace moni::host
