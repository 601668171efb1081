// Inside the TLS module: [host.web.tls]'s files in an OpenSSL context, held
// by the Asio SSL context that connections are made from.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include "tls_server_context.hpp"

namespace moni::host::tls {

/// Thread-safety: immutable after load(); asio() makes connections from any
/// thread (OpenSSL locks the context).
class OpenSslContext final : public TlsServerContext {
 public:
  static std::shared_ptr<const TlsServerContext> load(const TlsServerOptions& opts,
                                                      TlsServerContext::Error& err);
  const TlsServerOptions& options() const override { return opts_; }
  std::string describe() const override;
  boost::asio::ssl::context& asio() const { return asio_; }

 private:
  OpenSslContext(ssl_ctx_st* ctx, TlsServerOptions opts);
  mutable boost::asio::ssl::context asio_;
  TlsServerOptions opts_;
};

}  // namespace moni::host::tls
