// A minimal blocking HTTP/1.1 client for Grafana's API: one connection per
// request (the sync makes a handful of calls), optional TLS, a deadline per
// request. Boost.Beast lives only in http_client.cpp (build time).
#pragma once

#include <cstdint>
#include <memory>
#include <moni/result.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moni::grafana {

/// A parsed http:// or https:// base URL; `path` is a prefix without the
/// trailing slash (Grafana served under a sub-path), "" at the root.
struct Url {
  bool tls = false;
  std::string host, port, path;
};
Result<Url> parse_url(std::string_view url);

struct TlsOptions {
  std::string ca_file;
  bool insecure_skip_verify = false;
};

struct HttpReply {
  unsigned status = 0;  // 0: no answer (connect/IO error, timeout, abort)
  std::string error;    // transport error when status == 0
  std::string body;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

/// Thread-safety: request() from one thread at a time; abort() from any
/// thread (the current and every later request fail at once).
class HttpClient {
 public:
  /// Fails when the TLS options cannot be loaded (unreadable CA file).
  static Result<std::unique_ptr<HttpClient>> create(const Url& base, const TlsOptions& tls,
                                                    int64_t timeout_ms);
  ~HttpClient();
  /// `target` is appended to the base URL's path ("/api/folders").
  HttpReply request(std::string_view method, std::string_view target, std::string_view body,
                    const Headers& headers);
  void abort();

 private:
  HttpClient();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moni::grafana
