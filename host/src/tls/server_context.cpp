// The TLS module's side of TlsServerContext: the files loaded into one
// OpenSSL context (wrapped in Asio's, which the connections use).
#include "server_context.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace moni::host::tls {
namespace {

// Drains OpenSSL's error queue into "library: reason; ...".
std::string openssl_reason() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* lib = ERR_lib_error_string(e);
    const char* reason = ERR_reason_error_string(e);
    std::string one = std::string(lib ? lib : "OpenSSL") + ": " +
                      (reason ? reason : "error " + std::to_string(ERR_GET_REASON(e)));
    if (out.find(one) == std::string::npos) out += (out.empty() ? "" : "; ") + one;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// A clearer message than OpenSSL's "system library" one for the usual
// mistakes (typo in the path, file readable by root only).
bool readable(const std::string& path, std::string& why) {
  std::ifstream f(path, std::ios::binary);
  if (f) return true;
  why = "cannot read \"" + path + "\": " + std::strerror(errno);
  return false;
}

// Encrypted keys would make OpenSSL prompt on the terminal; refuse instead.
int no_passphrase(char*, int, int, void*) { return 0; }

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

}  // namespace

std::shared_ptr<const TlsServerContext> OpenSslContext::load(const TlsServerOptions& opts,
                                                             TlsServerContext::Error& err) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    err = {"cert_file", "cannot create a TLS context: " + openssl_reason()};
    return nullptr;
  }
  // Asio's context owns (and frees) the SSL_CTX from here on.
  std::shared_ptr<const OpenSslContext> out(new OpenSslContext(ctx, opts));
  auto fail = [&](const char* key, std::string msg) -> std::shared_ptr<const TlsServerContext> {
    err = {key, std::move(msg)};
    ERR_clear_error();
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(ctx, opts.tls13_only ? TLS1_3_VERSION : TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  std::string why;
  if (!readable(opts.cert_file, why)) return fail("cert_file", why);
  if (SSL_CTX_use_certificate_chain_file(ctx, opts.cert_file.c_str()) != 1)
    return fail("cert_file", "\"" + opts.cert_file +
                                 "\" is not a PEM certificate (chain): " + openssl_reason());
  if (!readable(opts.key_file, why)) return fail("key_file", why);
  if (SSL_CTX_use_PrivateKey_file(ctx, opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string reason = openssl_reason();
    if (reason.find("key values mismatch") != std::string::npos)
      return fail("key_file", "\"" + opts.key_file + "\" does not belong to the certificate in \"" +
                                  opts.cert_file + "\": " + reason);
    return fail("key_file",
                "\"" + opts.key_file + "\" is not an unencrypted PEM private key: " + reason);
  }
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fail("key_file", "\"" + opts.key_file + "\" does not belong to the certificate in \"" +
                                opts.cert_file + "\": " + openssl_reason());
  if (opts.client_auth != ClientAuth::None) {
    if (!readable(opts.client_ca_file, why)) return fail("client_ca_file", why);
    if (SSL_CTX_load_verify_locations(ctx, opts.client_ca_file.c_str(), nullptr) != 1)
      return fail("client_ca_file", "\"" + opts.client_ca_file +
                                        "\" is not a PEM CA bundle: " + openssl_reason());
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(opts.client_ca_file.c_str());
    if (!names)
      return fail("client_ca_file",
                  "\"" + opts.client_ca_file + "\" holds no CA certificate: " + openssl_reason());
    SSL_CTX_set_client_CA_list(ctx, names);
    int mode = SSL_VERIFY_PEER;
    if (opts.client_auth == ClientAuth::Require) mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
    // Resumed sessions must carry the verified identity of a full handshake.
    static const unsigned char sid[] = "moni";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof sid - 1);
  }
  return out;
}

OpenSslContext::OpenSslContext(ssl_ctx_st* ctx, TlsServerOptions opts)
    : asio_(ctx), opts_(std::move(opts)) {}

std::string OpenSslContext::describe() const {
  std::string out = opts_.tls13_only ? "TLS 1.3" : "TLS 1.2+";
  switch (opts_.client_auth) {
    case ClientAuth::None:
      break;
    case ClientAuth::Request:
      out += ", client certificates verified when sent";
      break;
    case ClientAuth::Require:
      out += ", client certificates required";
      break;
  }
  X509* cert = SSL_CTX_get0_certificate(asio_.native_handle());
  if (!cert) return out;
  BIO* b = BIO_new(BIO_s_mem());
  if (!b) return out;
  X509_NAME_print_ex(b, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  out += ", certificate " + bio_text(b);
  (void)BIO_reset(b);
  ASN1_TIME_print(b, X509_get0_notAfter(cert));
  out += (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0 ? " EXPIRED since " : " valid until ") +
         bio_text(b);
  BIO_free(b);
  return out;
}

}  // namespace moni::host::tls
