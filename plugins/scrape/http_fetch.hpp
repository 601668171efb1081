// Concurrent HTTP(S) GETs for one scrape cycle (Boost.Beast lives only in
// http_fetch.cpp). Each request has its own deadline, so a slow target
// never delays the others beyond its timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace moni::scrape {

class TlsClientContext;

struct FetchRequest {
  std::string host;  // name or address
  std::string port;
  std::string target;  // path and query
  std::vector<std::pair<std::string, std::string>> headers;
  std::chrono::milliseconds timeout{10000};
  uint64_t body_limit = 0;  // bytes on the wire, 0 = unlimited
  std::shared_ptr<const TlsClientContext> tls;  // HTTPS with this context; null: plain HTTP
  std::string setup_error;                      // set: fail with this, send nothing
};

struct FetchResult {
  bool ok = false;  // a complete HTTP response was read
  unsigned status = 0;
  std::string content_type;
  std::string content_encoding;
  std::string body;
  std::string error;  // when !ok: what failed ("timeout after 2s", ...)
  double seconds = 0;  // from start to the end of the response (or failure)
};

/// Runs every request concurrently on the calling thread and returns the
/// results in request order. Thread-safety: reentrant.
std::vector<FetchResult> fetch_all(const std::vector<FetchRequest>& requests);

/// Like fetch_all, into `out` (resized to requests.size() first), calling
/// `on_done(i)` on the calling thread once for each request, as soon as
/// out[i] is final: from then on fetch_each does not touch out[i], so the
/// callee may hand it to another thread while the other requests go on.
void fetch_each(const std::vector<FetchRequest>& requests, std::vector<FetchResult>& out,
                const std::function<void(size_t)>& on_done);

}  // namespace moni::scrape
