// MD5 digest, only for Prometheus-compatible hashmod relabeling (not for
// security). Thread-safety: a pure function.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace moni::relabel {

std::array<uint8_t, 16> md5(std::string_view data);

}  // namespace moni::relabel
