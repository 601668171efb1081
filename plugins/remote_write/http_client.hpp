// A minimal blocking HTTP/1.1 POST client with keep-alive, timeouts and
// optional TLS, used by remote_write's sender threads. Boost.Beast lives only
// in http_client.cpp to keep the plugin's build fast.
#pragma once

#include <cstdint>
#include <memory>
#include <moni/result.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moni::remote_write {

/// A parsed http:// or https:// URL.
struct Url {
  bool tls = false;
  std::string host, port, target;
};
Result<Url> parse_url(std::string_view url);

struct TlsOptions {
  std::string ca_file, cert_file, key_file, server_name;
  bool insecure_skip_verify = false;
};

struct HttpReply {
  unsigned status = 0;      // 0: no answer (connect/IO error, timeout, abort)
  std::string error;        // transport error when status == 0
  std::string retry_after;  // Retry-After header, raw
  std::string body;         // first bytes of the body, for messages
};

using Headers = std::vector<std::pair<std::string, std::string>>;

/// One connection to one URL. Thread-safety: post() from one thread at a
/// time; abort() from any thread (makes the current and later posts fail).
class HttpClient {
 public:
  /// Fails when the TLS options cannot be loaded (bad CA file, key...).
  static Result<std::unique_ptr<HttpClient>> create(const Url& url, const TlsOptions& tls,
                                                    int64_t timeout_ms);
  ~HttpClient();
  HttpReply post(std::string_view body, const Headers& headers);
  void abort();

 private:
  HttpClient();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moni::remote_write
