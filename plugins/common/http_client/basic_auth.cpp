#include <cstdint>

#include "http_client/http_client.hpp"

namespace moni::http_client {

std::string basic_auth(std::string_view user, std::string_view password) {
  static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in;
  in.reserve(user.size() + 1 + password.size());
  in.append(user).append(":").append(password);
  std::string out = "Basic ";
  out.reserve(out.size() + (in.size() + 2) / 3 * 4);
  size_t i = 0;
  auto byte = [&](size_t k) { return uint32_t(uint8_t(in[k])); };
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8 | byte(i + 2);
    out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], tbl[v & 63]};
  }
  if (i + 1 == in.size()) {
    uint32_t v = byte(i) << 16;
    out += {tbl[v >> 18], tbl[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    uint32_t v = byte(i) << 16 | byte(i + 1) << 8;
    out += {tbl[v >> 18], tbl[(v >> 12) & 63], tbl[(v >> 6) & 63], '='};
  }
  return out;
}

}  // namespace moni::http_client
