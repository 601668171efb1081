#include "http_server.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <cctype>
#include <chrono>
#include <moni/http.hpp>
#include <mutex>
#include <type_traits>

#include "host_config.hpp"
#include "log.hpp"

namespace moni::host {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

/// What every connection needs. Thread-safety: auth and tls under mu.
struct Shared {
  Shared(RouteTable& r, std::function<void(std::function<void()>)> w)
      : routes(r), workers(std::move(w)) {}
  RouteTable& routes;  // owned by the runtime, which outlives the io_context's sessions
  std::function<void(std::function<void()>)> workers;
  std::mutex mu;
  std::shared_ptr<const BasicAuth> auth;
  std::shared_ptr<const TlsServerContext> tls;
  std::shared_ptr<net::ssl::context> ssl;  // wraps tls->native()
  std::shared_ptr<const BasicAuth> get_auth() {
    std::lock_guard lock(mu);
    return auth;
  }
};

// Runs on a worker: auth, route lookup, the handler, and the Beast response.
std::shared_ptr<Response> respond(Shared& sh, const Request& req, const std::string& remote) {
  std::string target(req.target());
  std::string raw_path = target.substr(0, target.find('?'));
  std::string query =
      target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  std::string path = url_decode(raw_path, false).value_or(raw_path);
  std::string method(req.method_string());
  std::vector<std::string> hstore;
  hstore.reserve(std::distance(req.begin(), req.end()) * 2);
  std::vector<moni_label> headers;
  for (const auto& f : req) {
    std::string n(f.name_string());
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    hstore.push_back(std::move(n));
    hstore.emplace_back(f.value());
  }
  for (size_t i = 0; i < hstore.size(); i += 2)
    headers.push_back({ms(hstore[i]), ms(hstore[i + 1])});
  moni_http_request mreq{ms(method),     ms(target),     ms(path),       ms(query),
                         headers.data(), headers.size(), ms(req.body()), ms(remote)};
  HttpResponseData data;
  auto auth = sh.get_auth();
  auto authz = req[http::field::authorization];
  if (auth && !auth->check(std::string_view(authz.data(), authz.size()))) {
    data.status = 401;
    data.headers.emplace_back("WWW-Authenticate", "Basic realm=\"moni\"");
    data.body = "Unauthorized\n";
  } else if (auto route = sh.routes.find(path)) {
    try {
      route->handler(mreq, data);
    } catch (const std::exception& e) {
      data = HttpResponseData{500, {}, std::string("internal error: ") + e.what() + "\n"};
    }
  } else {
    data.status = 404;
    data.body = "404 page not found\n";
  }
  auto res = std::make_shared<Response>();
  res->version(req.version());
  res->keep_alive(req.keep_alive());
  res->result(static_cast<unsigned>(data.status));
  bool has_type = false;
  for (auto& [k, v] : data.headers) {
    has_type = has_type || beast::iequals(k, "content-type");
    res->set(k, v);
  }
  if (!has_type) res->set(http::field::content_type, "text/plain; charset=utf-8");
  if (req.method() != http::verb::head) res->body() = std::move(data.body);
  res->prepare_payload();
  if (req.method() == http::verb::head) res->content_length(data.body.size());
  return res;
}

std::string remote_of(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
}

// One connection over plain TCP or TLS: (handshake), then read a request,
// answer it on a worker, repeat while keep-alive.
template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

 public:
  Session(Stream s, std::shared_ptr<Shared> sh, std::shared_ptr<net::ssl::context> ssl,
          beast::flat_buffer buf, std::string remote, int64_t handshake_ms)
      : stream_(std::move(s)),
        shared_(std::move(sh)),
        ssl_(std::move(ssl)),
        buffer_(std::move(buf)),
        remote_(std::move(remote)),
        handshake_ms_(handshake_ms) {}
  void start() {
    if constexpr (kTls)
      handshake();
    else
      read();
  }

 private:
  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  void handshake() {
    // Bounded, so a client that connects and sends nothing (or trickles)
    // cannot hold a connection.
    lowest().expires_after(std::chrono::milliseconds(handshake_ms_));
    stream_.async_handshake(net::ssl::stream_base::server, buffer_.data(),
                            [self = this->shared_from_this()](beast::error_code ec, size_t used) {
                              if (ec) {
                                log_debug("http", "TLS handshake with " + self->remote_ +
                                                      " failed: " + ec.message());
                                return;  // the socket closes with the session
                              }
                              self->buffer_.consume(used);
                              self->read();
                            });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(64u << 20);
    lowest().expires_after(std::chrono::seconds(120));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->close();
                       self->dispatch();
                     });
  }

  void dispatch() {
    auto req = std::make_shared<Request>(parser_->release());
    // Handlers may block (storage queries): never on the io thread.
    shared_->workers([self = this->shared_from_this(), req] {
      auto res = respond(*self->shared_, *req, self->remote_);
      net::post(self->stream_.get_executor(), [self, res] { self->write(res); });
    });
  }

  void write(std::shared_ptr<Response> res) {
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    if constexpr (kTls) {
      lowest().expires_after(std::chrono::seconds(5));
      stream_.async_shutdown([self = this->shared_from_this()](beast::error_code) {});
    } else {
      beast::error_code ec;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    }
  }

  Stream stream_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<net::ssl::context> ssl_;  // outlives the stream's SSL object
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  int64_t handshake_ms_;
};

// On a TLS port: looks at the first bytes; a TLS ClientHello continues as a
// TLS session, anything else gets Prometheus's 400 and the connection closes.
class Detector : public std::enable_shared_from_this<Detector> {
 public:
  Detector(tcp::socket s, std::shared_ptr<Shared> sh, std::shared_ptr<net::ssl::context> ssl,
           int64_t handshake_ms)
      : stream_(std::move(s)),
        shared_(std::move(sh)),
        ssl_(std::move(ssl)),
        remote_(remote_of(stream_.socket())),
        handshake_ms_(handshake_ms) {}
  void start() {
    stream_.expires_after(std::chrono::milliseconds(handshake_ms_));
    beast::async_detect_ssl(stream_, buffer_,
                            [self = shared_from_this()](beast::error_code ec, bool is_tls) {
                              if (ec) return;
                              if (is_tls)
                                return std::make_shared<Session<TlsStream>>(
                                           TlsStream(std::move(self->stream_), *self->ssl_),
                                           self->shared_, self->ssl_, std::move(self->buffer_),
                                           self->remote_, self->handshake_ms_)
                                    ->start();
                              self->reject_plain();
                            });
  }

 private:
  void reject_plain() {
    static const std::string kBody = "Client sent an HTTP request to an HTTPS server.\n";
    static const std::string kReply =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
    log_debug("http", "plain HTTP from " + remote_ + " on the TLS port; answered 400");
    net::async_write(stream_, net::buffer(kReply),
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return;
                       self->stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
                       self->drain();
                     });
  }
  // Reads what the client still sends until it closes (bounded), so that
  // closing with unread data does not reset the connection before the
  // client has read the 400.
  void drain() {
    stream_.expires_after(std::chrono::seconds(2));
    stream_.async_read_some(net::buffer(scratch_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (!ec) self->drain();
                            });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::shared_ptr<Shared> shared_;
  std::shared_ptr<net::ssl::context> ssl_;
  std::string remote_;
  int64_t handshake_ms_;
  char scratch_[1024];
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(net::io_context& io, RouteTable& r, std::function<void(std::function<void()>)> w)
      : acceptor(io), shared(std::make_shared<Shared>(r, std::move(w))) {}
  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        std::shared_ptr<net::ssl::context> ssl;
        int64_t handshake_ms = 0;
        {
          std::lock_guard lock(self->shared->mu);
          ssl = self->shared->ssl;
          if (self->shared->tls) handshake_ms = self->shared->tls->options().handshake_timeout_ms;
        }
        if (ssl) {
          std::make_shared<Detector>(std::move(s), self->shared, ssl, handshake_ms)->start();
        } else {
          std::string remote = remote_of(s);
          std::make_shared<Session<beast::tcp_stream>>(beast::tcp_stream(std::move(s)),
                                                       self->shared, nullptr, beast::flat_buffer(),
                                                       std::move(remote), 0)
              ->start();
        }
      }
      self->accept();
    });
  }
  tcp::acceptor acceptor;
  std::shared_ptr<Shared> shared;
};

HttpServer::HttpServer(net::io_context& io, RouteTable& routes,
                       std::function<void(std::function<void()>)> to_workers)
    : impl_(std::make_shared<Impl>(io, routes, std::move(to_workers))) {}

HttpServer::~HttpServer() { close(); }

Result<void> HttpServer::listen(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  if (!split_listen(address, host, port))
    return make_error("listen address '" + address + "' is not ADDRESS:PORT");
  beast::error_code ec;
  auto addr = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return make_error("listen address '" + address + "': " + ec.message());
  tcp::endpoint ep(addr, port);
  auto& a = impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    a.close(ec);
    return make_error("cannot listen on " + address + ": " + ec.message());
  }
  impl_->accept();
  return {};
}

uint16_t HttpServer::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void HttpServer::set_auth(std::shared_ptr<const BasicAuth> auth) {
  std::lock_guard lock(impl_->shared->mu);
  impl_->shared->auth = std::move(auth);
}

void HttpServer::set_tls(std::shared_ptr<const TlsServerContext> tls) {
  std::shared_ptr<net::ssl::context> ssl;
  if (tls) {
    // asio's context takes ownership of a handle; ours keeps its own reference.
    SSL_CTX_up_ref(tls->native());
    ssl = std::make_shared<net::ssl::context>(tls->native());
  }
  bool was_on;
  {
    std::lock_guard lock(impl_->shared->mu);
    was_on = impl_->shared->tls != nullptr;
    impl_->shared->tls = tls;
    impl_->shared->ssl = std::move(ssl);
  }
  if (tls) {
    std::string what = tls->describe();
    if (what.find("EXPIRED") != std::string::npos)
      log_warn("http", "serving HTTPS with an expired certificate: " + what);
    else
      log_info("http", "serving HTTPS: " + what);
  } else if (was_on) {
    log_info("http", "TLS is off: serving plain HTTP");
  }
}

void HttpServer::close() {
  beast::error_code ec;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ec);
}

}  // namespace moni::host
