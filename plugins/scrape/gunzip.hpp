// gzip decoding of scrape responses with a cap on the decoded size (a small
// compressed body must not expand past body_size_limit).
#pragma once

#include <moni/result.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace moni::scrape {

/// Decodes a gzip body into `out`; fails when corrupt or when the result
/// would exceed `limit` bytes (0: the parser's maximum, 2 GiB - 1). Thread-safety: reentrant.
Result<void> gunzip(std::string_view in, std::string& out, uint64_t limit);

}  // namespace moni::scrape
