#include "http_client.hpp"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <mutex>
#include <optional>

namespace moni::grafana {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

Result<Url> parse_url(std::string_view url) {
  const std::string quoted = "url \"" + std::string(url) + "\"";
  Url u;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    return make_error(quoted + " must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) u.path = std::string(rest.substr(slash));
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  if (u.path.find_first_of("?#") != std::string::npos)
    return make_error(quoted + " must not have a query or fragment");
  if (hostport.empty()) return make_error(quoted + " has no host");
  if (hostport.find('@') != std::string_view::npos)
    return make_error(quoted + " must not contain credentials; use token_file");
  if (hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return make_error(quoted + ": bad IPv6 host");
    u.host = std::string(hostport.substr(1, close - 1));
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      u.port = std::string(hostport.substr(close + 2));
  } else {
    size_t colon = hostport.rfind(':');
    u.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(hostport.substr(colon + 1));
  }
  if (u.host.empty()) return make_error(quoted + " has no host");
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  for (char c : u.port)
    if (c < '0' || c > '9') return make_error(quoted + ": bad port");
  return u;
}

struct HttpClient::Impl {
  Url base;
  int64_t timeout_ms = 10000;
  std::optional<asio::ssl::context> ssl;
  std::atomic<bool> aborted{false};
  std::mutex mu;  // guards current
  asio::io_context* current = nullptr;

  // Runs one async step on `ioc` until it completes or the deadline passes.
  template <class Start>
  error_code step(asio::io_context& ioc, std::chrono::steady_clock::time_point deadline,
                  Start&& start) {
    error_code result = asio::error::would_block;
    if (aborted) return asio::error::operation_aborted;
    ioc.restart();
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.run_until(deadline);
    if (result == asio::error::would_block) {
      // Timed out or aborted: cancel the operation and let its handler run.
      ioc.stop();
      return aborted ? asio::error::operation_aborted : asio::error::timed_out;
    }
    return result;
  }

  template <class Stream>
  HttpReply exchange(asio::io_context& ioc, Stream& s, tcp::socket& sock,
                     std::chrono::steady_clock::time_point deadline,
                     http::request<http::string_body>& req) {
    HttpReply out;
    error_code ec = step(ioc, deadline, [&](auto h) {
      http::async_write(s, req, [h](error_code e, size_t) mutable { h(e); });
    });
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (!ec)
      ec = step(ioc, deadline, [&](auto h) {
        http::async_read(s, buf, parser, [h](error_code e, size_t) mutable { h(e); });
      });
    error_code ignored;
    sock.close(ignored);
    if (ec) {
      out.error = ec.message();
      return out;
    }
    out.status = parser.get().result_int();
    out.body = std::move(parser.get().body());
    return out;
  }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(const Url& base, const TlsOptions& tls,
                                                       int64_t timeout_ms) {
  std::unique_ptr<HttpClient> c(new HttpClient());
  c->impl_->base = base;
  c->impl_->timeout_ms = timeout_ms;
  if (base.tls) {
    try {
      auto& ctx = c->impl_->ssl.emplace(asio::ssl::context::tls_client);
      if (tls.insecure_skip_verify) {
        ctx.set_verify_mode(asio::ssl::verify_none);
      } else {
        ctx.set_verify_mode(asio::ssl::verify_peer);
        if (tls.ca_file.empty())
          ctx.set_default_verify_paths();
        else
          ctx.load_verify_file(tls.ca_file);
      }
    } catch (const std::exception& e) {
      return make_error("grafana: TLS setup failed (ca_file \"" + tls.ca_file + "\"): " + e.what());
    }
  }
  return c;
}

void HttpClient::abort() {
  impl_->aborted = true;
  std::lock_guard lk(impl_->mu);
  if (impl_->current) impl_->current->stop();
}

HttpReply HttpClient::request(std::string_view method, std::string_view target,
                              std::string_view body, const Headers& headers) {
  Impl& im = *impl_;
  HttpReply out;
  asio::io_context ioc;
  {
    std::lock_guard lk(im.mu);
    if (im.aborted) {
      out.error = "aborted";
      return out;
    }
    im.current = &ioc;
  }
  struct Clear {
    Impl& im;
    ~Clear() {
      std::lock_guard lk(im.mu);
      im.current = nullptr;
    }
  } clear{im};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(im.timeout_ms);

  http::request<http::string_body> req;
  req.method(http::string_to_verb(beast::string_view(method.data(), method.size())));
  req.target(im.base.path + std::string(target));
  req.version(11);
  req.set(http::field::host, im.base.host + ":" + im.base.port);
  req.set(http::field::user_agent, "moni-grafana");
  req.set(http::field::connection, "close");
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || method == "POST" || method == "PUT") {
    req.body() = std::string(body);
    req.prepare_payload();
  }

  tcp::resolver resolver(ioc);
  tcp::resolver::results_type endpoints;
  error_code ec = im.step(ioc, deadline, [&](auto h) {
    resolver.async_resolve(im.base.host, im.base.port,
                           [&, h](error_code e, tcp::resolver::results_type r) mutable {
                             endpoints = std::move(r);
                             h(e);
                           });
  });
  if (ec) {
    out.error = "resolve " + im.base.host + ": " + ec.message();
    return out;
  }
  if (!im.ssl) {
    tcp::socket sock(ioc);
    ec = im.step(ioc, deadline, [&](auto h) {
      asio::async_connect(sock, endpoints,
                          [h](error_code e, const tcp::endpoint&) mutable { h(e); });
    });
    if (ec) {
      out.error = "connect " + im.base.host + ":" + im.base.port + ": " + ec.message();
      return out;
    }
    return im.exchange(ioc, sock, sock, deadline, req);
  }
  asio::ssl::stream<tcp::socket> s(ioc, *im.ssl);
  if (!SSL_set_tlsext_host_name(s.native_handle(), im.base.host.c_str())) {
    out.error = "TLS: cannot set the server name";
    return out;
  }
  s.set_verify_callback(asio::ssl::host_name_verification(im.base.host));
  ec = im.step(ioc, deadline, [&](auto h) {
    asio::async_connect(s.next_layer(), endpoints,
                        [h](error_code e, const tcp::endpoint&) mutable { h(e); });
  });
  if (!ec)
    ec = im.step(ioc, deadline,
                 [&](auto h) { s.async_handshake(asio::ssl::stream_base::client, h); });
  if (ec) {
    out.error = "connect " + im.base.host + ":" + im.base.port + ": " + ec.message();
    return out;
  }
  return im.exchange(ioc, s, s.next_layer(), deadline, req);
}

}  // namespace moni::grafana
