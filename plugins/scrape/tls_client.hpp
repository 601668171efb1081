// TLS for scrape targets (the job's `tls` table, Prometheus's tls_config):
// CA, client certificate and key loaded into one OpenSSL client context,
// reloaded when a file changes. OpenSSL only; the handshake is in
// http_fetch.cpp.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <sys/types.h>
#include <vector>

struct ssl_ctx_st;  // OpenSSL's SSL_CTX

namespace moni::scrape {

struct TlsClientOptions {
  std::string ca_file;    // empty: the system's CA store
  std::string cert_file;  // client certificate (with key_file), for targets that require one
  std::string key_file;
  std::string server_name;  // SNI and the name verified; empty: the target's host
  bool insecure_skip_verify = false;
};

/// The loaded files. Thread-safety: immutable; native() may create
/// connections from any thread.
class TlsClientContext {
 public:
  /// Null and `key` ("ca_file", "cert_file", "key_file") + `why` on failure.
  static std::shared_ptr<const TlsClientContext> load(const TlsClientOptions& o, std::string& key,
                                                      std::string& why);
  ~TlsClientContext();
  TlsClientContext(const TlsClientContext&) = delete;
  TlsClientContext& operator=(const TlsClientContext&) = delete;
  ssl_ctx_st* native() const { return ctx_; }
  const TlsClientOptions& options() const { return opts_; }

 private:
  TlsClientContext(ssl_ctx_st* c, TlsClientOptions o) : ctx_(c), opts_(std::move(o)) {}
  ssl_ctx_st* ctx_;
  TlsClientOptions opts_;
};

/// The current context of a job; current() reloads it when a file's size or
/// mtime changed (certificate rotation without a moni reload). A file that
/// no longer loads keeps the previous context and reports why.
/// Thread-safety: current() may be called from any thread.
class TlsClientSource {
 public:
  explicit TlsClientSource(std::shared_ptr<const TlsClientContext> first);
  /// `warning` is set (once per change) when a reload failed.
  std::shared_ptr<const TlsClientContext> current(std::string& warning);

 private:
  std::vector<std::pair<off_t, long long>> stamps() const;
  std::mutex mu_;
  std::shared_ptr<const TlsClientContext> ctx_;
  std::vector<std::pair<off_t, long long>> stamps_;
};

/// OpenSSL's error queue as "library: reason; ...", emptied.
std::string openssl_errors();

}  // namespace moni::scrape
