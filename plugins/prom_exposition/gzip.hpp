// gzip compression of response bodies (zlib) and Accept-Encoding checks.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace moni::expo {

/// True when an Accept-Encoding header allows gzip (q > 0).
bool accepts_gzip(std::string_view accept_encoding);

/// Compresses whole bodies into gzip members with one deflate state kept
/// between calls (made on first use): deflateInit allocates and clears
/// ~270 KB each time, which malloc gives back to the kernel and re-faults,
/// costing about as much again as compressing a node-sized body at level 1.
/// Thread-safety: none; one per concurrent user.
class GzipEncoder {
 public:
  explicit GzipEncoder(int level = 1);
  ~GzipEncoder();
  GzipEncoder(const GzipEncoder&) = delete;
  GzipEncoder& operator=(const GzipEncoder&) = delete;
  /// `data` as one gzip member in `out` (its capacity is reused); false,
  /// with `out` empty, on failure.
  bool compress(std::string_view data, std::string& out);

 private:
  struct State;
  int level_;
  std::unique_ptr<State> st_;
};

/// `data` as a gzip member; empty on failure. Thread-safety: reentrant.
std::string gzip(std::string_view data, int level = 1);

}  // namespace moni::expo
