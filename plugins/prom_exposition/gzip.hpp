// gzip compression of response bodies (zlib) and Accept-Encoding checks.
#pragma once

#include <string>
#include <string_view>

namespace moni::expo {

/// True when an Accept-Encoding header allows gzip (q > 0).
bool accepts_gzip(std::string_view accept_encoding);

/// `data` as a gzip member; empty on failure. Thread-safety: reentrant.
std::string gzip(std::string_view data, int level = 1);

}  // namespace moni::expo
