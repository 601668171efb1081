#include "url_query.hpp"

#include <cctype>

namespace moni::rules {

std::string url_query_escape(std::string_view s) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else if (c == ' ')
      out += '+';
    else
      out += {'%', hex[c >> 4], hex[c & 15]};
  }
  return out;
}

std::string generator_url(std::string_view external_url, std::string_view expr) {
  while (!external_url.empty() && external_url.back() == '/') external_url.remove_suffix(1);
  return std::string(external_url) + "/graph?g0.expr=" + url_query_escape(expr) + "&g0.tab=1";
}

}  // namespace moni::rules
