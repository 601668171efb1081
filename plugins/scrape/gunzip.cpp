#include "gunzip.hpp"

#include <zlib.h>

#include <algorithm>

namespace moni::scrape {

// The text parser refuses bodies of 2 GiB and more; without a
// body_size_limit a gzip bomb must still stop there, not at the memory limit.
constexpr uint64_t kMaxDecoded = (uint64_t{1} << 31) - 1;

Result<void> gunzip(std::string_view in, std::string& out, uint64_t limit) {
  out.clear();
  const uint64_t cap = limit ? std::min(limit, kMaxDecoded) : kMaxDecoded;
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return make_error("gzip: inflateInit failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  char chunk[64 * 1024];
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      std::string msg = zs.msg ? zs.msg : "corrupt data";
      inflateEnd(&zs);
      return make_error("gzip: " + msg);
    }
    out.append(chunk, sizeof chunk - zs.avail_out);
    if (out.size() > cap) {
      inflateEnd(&zs);
      if (cap == limit)
        return make_error("body larger than body_size_limit (" + std::to_string(limit) +
                          " bytes) after gzip decoding");
      return make_error("body larger than 2 GiB after gzip decoding");
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return make_error("gzip: truncated body");
    }
  } while (rc != Z_STREAM_END);
  inflateEnd(&zs);
  return {};
}

}  // namespace moni::scrape
