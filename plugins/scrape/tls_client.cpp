#include "tls_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace moni::scrape {
namespace {

bool readable(const std::string& path, std::string& why) {
  std::ifstream f(path, std::ios::binary);
  if (f) return true;
  why = "cannot read \"" + path + "\": " + std::strerror(errno);
  return false;
}

int no_passphrase(char*, int, int, void*) { return 0; }

}  // namespace

std::string openssl_errors() {
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

std::shared_ptr<const TlsClientContext> TlsClientContext::load(const TlsClientOptions& o,
                                                               std::string& key, std::string& why) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    key = "ca_file";
    why = "cannot create a TLS context: " + openssl_errors();
    return nullptr;
  }
  std::shared_ptr<const TlsClientContext> out(new TlsClientContext(ctx, o));
  auto fail = [&](const char* k, std::string msg) -> std::shared_ptr<const TlsClientContext> {
    key = k;
    why = std::move(msg);
    ERR_clear_error();
    return nullptr;
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);  // as Prometheus's default
  SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
  std::string err;
  if (!o.ca_file.empty()) {
    if (!readable(o.ca_file, err)) return fail("ca_file", err);
    if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1)
      return fail("ca_file", "\"" + o.ca_file + "\" is not a PEM CA bundle: " + openssl_errors());
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return fail("ca_file", "cannot load the system CA store: " + openssl_errors());
  }
  if (!o.cert_file.empty()) {
    if (!readable(o.cert_file, err)) return fail("cert_file", err);
    if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1)
      return fail("cert_file", "\"" + o.cert_file + "\" is not a PEM certificate: " + openssl_errors());
    if (!readable(o.key_file, err)) return fail("key_file", err);
    if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      std::string reason = openssl_errors();
      if (reason.find("key values mismatch") != std::string::npos)
        return fail("key_file", "\"" + o.key_file + "\" does not belong to the certificate in \"" +
                                    o.cert_file + "\": " + reason);
      return fail("key_file", "\"" + o.key_file + "\" is not an unencrypted PEM private key: " + reason);
    }
    if (SSL_CTX_check_private_key(ctx) != 1)
      return fail("key_file", "\"" + o.key_file + "\" does not belong to the certificate in \"" +
                                  o.cert_file + "\": " + openssl_errors());
  }
  SSL_CTX_set_verify(ctx, o.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, nullptr);
  return out;
}

TlsClientContext::~TlsClientContext() { SSL_CTX_free(ctx_); }

TlsClientSource::TlsClientSource(std::shared_ptr<const TlsClientContext> first)
    : ctx_(std::move(first)) {
  stamps_ = stamps();
}

std::vector<std::pair<off_t, long long>> TlsClientSource::stamps() const {
  std::vector<std::pair<off_t, long long>> out;
  const auto& o = ctx_->options();
  for (const std::string* f : {&o.ca_file, &o.cert_file, &o.key_file}) {
    struct stat st {};
    if (f->empty() || ::stat(f->c_str(), &st) != 0)
      out.emplace_back(-1, 0);
    else
      out.emplace_back(st.st_size, static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL +
                                       st.st_mtim.tv_nsec);
  }
  return out;
}

std::shared_ptr<const TlsClientContext> TlsClientSource::current(std::string& warning) {
  std::lock_guard lock(mu_);
  auto now = stamps();
  if (now == stamps_) return ctx_;
  stamps_ = now;
  std::string key, why;
  auto next = TlsClientContext::load(ctx_->options(), key, why);
  if (!next) {
    warning = "tls." + key + " changed and no longer loads (keeping the previous one): " + why;
    return ctx_;
  }
  ctx_ = std::move(next);
  return ctx_;
}

}  // namespace moni::scrape
