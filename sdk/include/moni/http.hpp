// HTTP request/response wrappers for plugin routes on the host's server,
// with URL query and form decoding (repeated keys such as match[] kept).
#pragma once

#include <moni/plugin_abi.h>
#include <moni/sample.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace moni {

/// Decodes %XX escapes and, when `plus_is_space`, '+' (form encoding).
/// Returns nullopt on a malformed escape.
inline std::optional<std::string> url_decode(std::string_view s, bool plus_is_space = true) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int h = hex(s[i + 1]), l = hex(s[i + 2]);
      if (h < 0 || l < 0) return std::nullopt;
      out.push_back(static_cast<char>(h * 16 + l));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

/// Decoded key/value pairs of a query string or form body, in order.
using Params = std::vector<std::pair<std::string, std::string>>;

/// Parses "a=1&b=2&match[]=x". Malformed escapes are kept verbatim.
inline Params parse_params(std::string_view qs) {
  Params out;
  while (!qs.empty()) {
    size_t amp = qs.find('&');
    std::string_view part = qs.substr(0, amp);
    qs = amp == std::string_view::npos ? std::string_view() : qs.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    std::string_view v = eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
    auto dk = url_decode(k), dv = url_decode(v);
    out.emplace_back(dk ? *dk : std::string(k), dv ? *dv : std::string(v));
  }
  return out;
}

/// A request as a plugin handler sees it. Thread-safety: a view, valid
/// during the handler call.
class HttpRequest {
 public:
  explicit HttpRequest(const moni_http_request& r) : r_(&r) {}
  std::string_view method() const { return sv(r_->method); }
  std::string_view target() const { return sv(r_->target); }
  std::string_view path() const { return sv(r_->path); }
  std::string_view query() const { return sv(r_->query); }
  std::string_view body() const { return sv(r_->body); }
  std::string_view remote_addr() const { return sv(r_->remote_addr); }
  /// Header value by lower-case name, empty when absent.
  std::string_view header(std::string_view lower_name) const {
    for (size_t i = 0; i < r_->header_count; ++i)
      if (sv(r_->headers[i].name) == lower_name) return sv(r_->headers[i].value);
    return {};
  }
  /// Query parameters, plus form fields of a POST with
  /// application/x-www-form-urlencoded body (as Prometheus's API accepts).
  Params params() const {
    Params p = parse_params(query());
    if (method() == "POST" &&
        header("content-type").starts_with("application/x-www-form-urlencoded")) {
      Params f = parse_params(body());
      p.insert(p.end(), f.begin(), f.end());
    }
    return p;
  }
  const moni_http_request& raw() const { return *r_; }

 private:
  const moni_http_request* r_;
};

/// First value of `key` in `p`.
inline std::optional<std::string> param(const Params& p, std::string_view key) {
  for (const auto& [k, v] : p)
    if (k == key) return v;
  return std::nullopt;
}
/// Every value of `key` in `p` (e.g. "match[]").
inline std::vector<std::string> params_all(const Params& p, std::string_view key) {
  std::vector<std::string> out;
  for (const auto& [k, v] : p)
    if (k == key) out.push_back(v);
  return out;
}

/// The response a handler fills. Defaults to 200 with no body.
/// Thread-safety: owned by one handler call.
class HttpResponse {
 public:
  HttpResponse(const moni_host_api* host, moni_http_response* r) : host_(host), r_(r) {}
  void status(unsigned code) { host_->http_status(r_, code); }
  void header(std::string_view name, std::string_view value) {
    host_->http_header(r_, ms(name), ms(value));
  }
  void body(std::string_view chunk) { host_->http_body(r_, ms(chunk)); }

 private:
  const moni_host_api* host_;
  moni_http_response* r_;
};

}  // namespace moni
