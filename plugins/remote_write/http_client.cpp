#include "http_client.hpp"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

namespace moni::remote_write {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

Result<Url> parse_url(std::string_view url) {
  Url u;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    return make_error("url \"" + std::string(url) + "\" must start with http:// or https://");
  }
  size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostport.empty()) return make_error("url \"" + std::string(url) + "\" has no host");
  if (hostport.find('@') != std::string_view::npos)
    return make_error("url \"" + std::string(url) +
                      "\" must not contain credentials; use basic_auth");
  if (hostport.front() == '[') {  // [v6]:port
    size_t close = hostport.find(']');
    if (close == std::string_view::npos)
      return make_error("url \"" + std::string(url) + "\": bad IPv6 host");
    u.host = std::string(hostport.substr(1, close - 1));
    if (close + 1 < hostport.size() && hostport[close + 1] == ':')
      u.port = std::string(hostport.substr(close + 2));
  } else {
    size_t colon = hostport.rfind(':');
    u.host = std::string(hostport.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(hostport.substr(colon + 1));
  }
  if (u.port.empty()) u.port = u.tls ? "443" : "80";
  for (char c : u.port)
    if (c < '0' || c > '9') return make_error("url \"" + std::string(url) + "\": bad port");
  return u;
}

struct HttpClient::Impl {
  asio::io_context ioc;  // declared first: outlives the streams
  Url url;
  int64_t timeout_ms = 30000;
  std::optional<asio::ssl::context> ssl;
  std::string sni;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buf;
  std::atomic<bool> aborted{false};

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  bool connected() const { return plain || secure; }
  void close() {
    error_code ec;
    if (secure) beast::get_lowest_layer(*secure).socket().close(ec);
    if (plain) plain->socket().close(ec);
    secure.reset();
    plain.reset();
    buf.clear();
  }

  // Runs the async operation started by `start` to completion on this
  // thread's private io_context; abort() stops the context from outside.
  template <class Start>
  error_code run(Start&& start) {
    error_code result = asio::error::would_block;
    ioc.restart();
    if (aborted) return asio::error::operation_aborted;
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.run();
    if (result == asio::error::would_block) result = asio::error::operation_aborted;
    return result;
  }

  error_code connect() {
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type endpoints;
    error_code ec = run([&](auto handler) {
      resolver.async_resolve(url.host, url.port,
                             [&, handler](error_code e, tcp::resolver::results_type r) mutable {
                               endpoints = std::move(r);
                               handler(e);
                             });
    });
    if (ec) return ec;
    if (ssl) {
      secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ssl);
      if (!SSL_set_tlsext_host_name(secure->native_handle(), sni.c_str()))
        return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
      secure->set_verify_callback(asio::ssl::host_name_verification(sni));
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
    }
    lowest().expires_after(std::chrono::milliseconds(timeout_ms));
    ec = run([&](auto handler) {
      lowest().async_connect(endpoints,
                             [handler](error_code e, const tcp::endpoint&) mutable { handler(e); });
    });
    if (ec || !secure) return ec;
    lowest().expires_after(std::chrono::milliseconds(timeout_ms));
    return run(
        [&](auto handler) { secure->async_handshake(asio::ssl::stream_base::client, handler); });
  }

  template <class Stream>
  error_code exchange(Stream& s, http::request<http::string_body>& req,
                      http::response_parser<http::string_body>& parser) {
    lowest().expires_after(std::chrono::milliseconds(timeout_ms));
    error_code ec = run([&](auto handler) {
      http::async_write(s, req, [handler](error_code e, size_t) mutable { handler(e); });
    });
    if (ec) return ec;
    lowest().expires_after(std::chrono::milliseconds(timeout_ms));
    return run([&](auto handler) {
      http::async_read(s, buf, parser, [handler](error_code e, size_t) mutable { handler(e); });
    });
  }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->close();
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(const Url& url, const TlsOptions& tls,
                                                       int64_t timeout_ms) {
  std::unique_ptr<HttpClient> c(new HttpClient());
  Impl& im = *c->impl_;
  im.url = url;
  im.timeout_ms = timeout_ms;
  if (url.tls) {
    try {
      im.ssl.emplace(asio::ssl::context::tls_client);
      im.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                          asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                          asio::ssl::context::no_tlsv1_1);
      if (!tls.ca_file.empty())
        im.ssl->load_verify_file(tls.ca_file);
      else
        im.ssl->set_default_verify_paths();
      if (!tls.cert_file.empty()) im.ssl->use_certificate_chain_file(tls.cert_file);
      if (!tls.key_file.empty())
        im.ssl->use_private_key_file(tls.key_file, asio::ssl::context::pem);
      im.ssl->set_verify_mode(tls.insecure_skip_verify ? asio::ssl::verify_none
                                                       : asio::ssl::verify_peer);
    } catch (const std::exception& e) {
      return make_error(std::string("remote_write: TLS setup for ") + url.host + ": " + e.what());
    }
    im.sni = tls.server_name.empty() ? url.host : tls.server_name;
  }
  return c;
}

void HttpClient::abort() {
  impl_->aborted = true;
  impl_->ioc.stop();
}

HttpReply HttpClient::post(std::string_view body, const Headers& headers) {
  Impl& im = *impl_;
  HttpReply out;
  http::request<http::string_body> req{http::verb::post, im.url.target, 11};
  bool default_port = im.url.port == (im.url.tls ? "443" : "80");
  req.set(http::field::host, default_port ? im.url.host : im.url.host + ":" + im.url.port);
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body().assign(body.data(), body.size());
  req.prepare_payload();
  req.keep_alive(true);

  if (!im.connected()) {
    error_code ec = im.connect();
    if (ec) {
      out.error = "connect " + im.url.host + ":" + im.url.port + ": " + ec.message();
      im.close();
      return out;
    }
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 20);
  error_code ec =
      im.secure ? im.exchange(*im.secure, req, parser) : im.exchange(*im.plain, req, parser);
  if (ec) {
    out.error = ec.message();
    im.close();
    return out;
  }
  auto& res = parser.get();
  out.status = res.result_int();
  if (auto it = res.find(http::field::retry_after); it != res.end())
    out.retry_after = std::string(it->value());
  out.body = res.body().substr(0, 512);
  if (!res.keep_alive()) im.close();
  return out;
}

}  // namespace moni::remote_write
