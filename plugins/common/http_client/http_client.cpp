#include "http_client/http_client.hpp"

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <optional>

namespace moni::http_client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using Clock = std::chrono::steady_clock;

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
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (hostport.empty()) return make_error(quoted + " has no host");
  if (hostport.find('@') != std::string_view::npos)
    return make_error(quoted + " must not contain credentials; set them in their own options");
  if (hostport.front() == '[') {  // [v6]:port
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
  asio::io_context ioc;  // declared first: outlives the streams
  Url url;
  ClientOptions opt;
  std::optional<asio::ssl::context> ssl;
  std::string sni;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buf;
  std::atomic<bool> aborted{false};
  Clock::time_point deadline;  // of the request under way

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }
  bool connected() const { return plain || secure; }
  // Ends the operations under way on the socket (their handlers then run
  // with an error); the stream objects stay until close().
  void cancel_io() {
    error_code ec;
    if (secure) beast::get_lowest_layer(*secure).socket().close(ec);
    if (plain) plain->socket().close(ec);
  }
  void close() {
    cancel_io();
    secure.reset();
    plain.reset();
    buf.clear();
  }

  // Runs the async operation `start` begins on this thread's private
  // io_context until it completes, the request's deadline passes or abort()
  // stops the context. Then `cancel` ends the operation, and its handler
  // runs here, before `result` goes out of scope.
  template <class Start, class Cancel>
  error_code run(Start&& start, Cancel&& cancel) {
    error_code result = asio::error::would_block;
    if (aborted) return asio::error::operation_aborted;
    ioc.restart();
    if (aborted) return asio::error::operation_aborted;  // abort() between check and restart
    start([&result](error_code ec, auto&&...) { result = ec; });
    ioc.run_until(deadline);
    if (result != asio::error::would_block) return result;
    cancel();
    ioc.restart();
    ioc.run();
    return aborted ? error_code(asio::error::operation_aborted)
                   : error_code(asio::error::timed_out);
  }
  template <class Start>
  error_code run_on_stream(Start&& start) {
    return run(std::forward<Start>(start), [this] { cancel_io(); });
  }

  // Connects (and shakes hands); `what` says which step failed.
  error_code connect(std::string& what) {
    tcp::resolver resolver(ioc);
    tcp::resolver::results_type endpoints;
    what = "resolve " + url.host;
    error_code ec = run(
        [&](auto handler) {
          resolver.async_resolve(
              url.host, url.port,
              [&endpoints, handler](error_code e, tcp::resolver::results_type r) mutable {
                endpoints = std::move(r);
                handler(e);
              });
        },
        [&] { resolver.cancel(); });
    if (ec) return ec;
    what = "connect " + url.host + ":" + url.port;
    if (ssl) {
      secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ioc, *ssl);
      if (!SSL_set_tlsext_host_name(secure->native_handle(), sni.c_str()))
        return error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category());
      secure->set_verify_callback(asio::ssl::host_name_verification(sni));
    } else {
      plain = std::make_unique<beast::tcp_stream>(ioc);
    }
    ec = run_on_stream([&](auto handler) {
      lowest().async_connect(endpoints,
                             [handler](error_code e, const tcp::endpoint&) mutable { handler(e); });
    });
    if (ec || !secure) return ec;
    what = "TLS handshake with " + url.host + ":" + url.port;
    return run_on_stream(
        [&](auto handler) { secure->async_handshake(asio::ssl::stream_base::client, handler); });
  }

  template <class Stream>
  error_code exchange(Stream& s, http::request<http::string_body>& req,
                      http::response_parser<http::string_body>& parser) {
    error_code ec = run_on_stream([&](auto handler) {
      http::async_write(s, req, [handler](error_code e, size_t) mutable { handler(e); });
    });
    if (ec) return ec;
    return run_on_stream([&](auto handler) {
      http::async_read(s, buf, parser, [handler](error_code e, size_t) mutable { handler(e); });
    });
  }
};

HttpClient::HttpClient() : impl_(std::make_unique<Impl>()) {}
HttpClient::~HttpClient() {
  if (impl_) impl_->close();
}

Result<std::unique_ptr<HttpClient>> HttpClient::create(const Url& url, const TlsOptions& tls,
                                                       const ClientOptions& options) {
  std::unique_ptr<HttpClient> c(new HttpClient());
  Impl& im = *c->impl_;
  im.url = url;
  im.opt = options;
  if (!url.tls) return c;
  // Each step names what it loads, so that a bad file is named in the error.
  std::string step = "TLS context";
  try {
    im.ssl.emplace(asio::ssl::context::tls_client);
    im.ssl->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                        asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                        asio::ssl::context::no_tlsv1_1);
    if (!tls.ca_file.empty()) {
      step = "ca_file \"" + tls.ca_file + "\"";
      im.ssl->load_verify_file(tls.ca_file);
    } else {
      step = "the system's CA certificates";
      im.ssl->set_default_verify_paths();
    }
    if (!tls.cert_file.empty()) {
      step = "cert_file \"" + tls.cert_file + "\"";
      im.ssl->use_certificate_chain_file(tls.cert_file);
    }
    if (!tls.key_file.empty()) {
      step = "key_file \"" + tls.key_file + "\"";
      im.ssl->use_private_key_file(tls.key_file, asio::ssl::context::pem);
    }
    im.ssl->set_verify_mode(tls.insecure_skip_verify ? asio::ssl::verify_none
                                                     : asio::ssl::verify_peer);
  } catch (const std::exception& e) {
    return make_error("TLS setup for " + url.host + " failed: " + step + ": " + e.what());
  }
  im.sni = tls.server_name.empty() ? url.host : tls.server_name;
  return c;
}

void HttpClient::abort() {
  impl_->aborted = true;
  impl_->ioc.stop();
}

HttpReply HttpClient::request(std::string_view method, std::string_view target,
                              std::string_view body, const Headers& headers) {
  Impl& im = *impl_;
  HttpReply out;
  im.deadline = Clock::now() + std::chrono::milliseconds(im.opt.timeout_ms);
  http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
  if (verb == http::verb::unknown) {
    out.error = "unknown HTTP method " + std::string(method);
    return out;
  }
  http::request<http::string_body> req{verb, target.empty() ? im.url.target : std::string(target),
                                       11};
  bool default_port = im.url.port == (im.url.tls ? "443" : "80");
  req.set(http::field::host, default_port ? im.url.host : im.url.host + ":" + im.url.port);
  for (const auto& [k, v] : headers) req.set(k, v);
  if (!body.empty() || verb == http::verb::post || verb == http::verb::put) {
    req.body().assign(body.data(), body.size());
    req.prepare_payload();
  }
  req.keep_alive(im.opt.keep_alive);

  if (!im.connected()) {
    std::string what;
    error_code ec = im.connect(what);
    if (ec) {
      out.error = what + ": " + ec.message();
      im.close();
      return out;
    }
  }
  http::response_parser<http::string_body> parser;
  parser.body_limit(im.opt.max_body_bytes);
  error_code ec =
      im.secure ? im.exchange(*im.secure, req, parser) : im.exchange(*im.plain, req, parser);
  if (ec == http::error::body_limit && im.opt.keep_status_of_long_body && parser.is_header_done()) {
    // The rest of the body is never read: the connection cannot be reused.
    auto& res = parser.get();
    out.status = res.result_int();
    if (auto it = res.find(http::field::retry_after); it != res.end())
      out.retry_after = std::string(it->value());
    out.body = std::move(res.body());
    if (out.body.size() > im.opt.max_body_bytes) out.body.resize(im.opt.max_body_bytes);
    out.body_truncated = true;
    im.close();
    return out;
  }
  if (ec) {
    out.error = ec.message();
    im.close();
    return out;
  }
  auto& res = parser.get();
  out.status = res.result_int();
  if (auto it = res.find(http::field::retry_after); it != res.end())
    out.retry_after = std::string(it->value());
  out.body = std::move(res.body());
  if (!im.opt.keep_alive || !res.keep_alive()) im.close();
  return out;
}

}  // namespace moni::http_client
