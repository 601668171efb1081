// The plugins' blocking HTTP/1.1 client: remote_write's sender threads, the
// rules plugin's Alertmanager notifier and grafana's sync all use this one.
// Keep-alive (or a connection per request), one deadline per request,
// optional TLS through the Debian OpenSSL, abort() from any thread.
// Boost.Beast lives only in http_client.cpp, so including this header costs
// a plugin nothing at build time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <moni/result.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moni::http_client {

/// A parsed http:// or https:// URL; `target` is its path and query as
/// written ("/" when it has none).
struct Url {
  bool tls = false;
  std::string host, port, target;
};
/// Errors name the URL: `url "ftp://x" must start with http:// or https://`.
Result<Url> parse_url(std::string_view url);

struct TlsOptions {
  std::string ca_file;              // empty: the system's CAs
  std::string cert_file, key_file;  // client certificate, optional
  std::string server_name;          // SNI and the name verified; empty: the URL's host
  bool insecure_skip_verify = false;
};

struct ClientOptions {
  int64_t timeout_ms = 10'000;  // one request: resolve, connect, TLS, write and read together
  bool keep_alive = true;       // false: one connection per request ("Connection: close")
  size_t max_body_bytes = size_t{1} << 20;  // a longer answer fails the request (status 0)
  // A longer answer still gives its status, with the body cut at
  // max_body_bytes (HttpReply::body_truncated), for clients that only need
  // the status: a receiver's 200 with a huge body is still a 200.
  bool keep_status_of_long_body = false;
};

struct HttpReply {
  unsigned status = 0;      // 0: no answer (connect/IO error, timeout, abort)
  std::string error;        // transport error when status == 0
  std::string retry_after;  // Retry-After header, raw
  std::string body;
  bool body_truncated = false;  // keep_status_of_long_body: the body was cut
};

using Headers = std::vector<std::pair<std::string, std::string>>;

/// The value of an Authorization header for basic auth: "Basic " and the
/// base64 of "user:password".
std::string basic_auth(std::string_view user, std::string_view password);

/// One connection (at a time) to one server. Thread-safety: request()/post()
/// from one thread at a time; abort() from any thread (the current and every
/// later request fail at once).
class HttpClient {
 public:
  /// Fails when the TLS options cannot be loaded; the message names the file.
  static Result<std::unique_ptr<HttpClient>> create(const Url& url, const TlsOptions& tls,
                                                    const ClientOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// `target` is the request target ("/api/folders"); empty: the URL's own.
  HttpReply request(std::string_view method, std::string_view target, std::string_view body,
                    const Headers& headers);
  /// POST to the URL's own target.
  HttpReply post(std::string_view body, const Headers& headers) {
    return request("POST", {}, body, headers);
  }
  void abort();

 private:
  HttpClient();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moni::http_client
