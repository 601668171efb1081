#include "http_server.hpp"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <moni/http.hpp>
#include <mutex>

#include "host_config.hpp"
#include "log.hpp"

namespace moni::host {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

struct AuthSlot {
  std::mutex mu;
  std::shared_ptr<const BasicAuth> auth;
  std::shared_ptr<const BasicAuth> get() {
    std::lock_guard lock(mu);
    return auth;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket s, RouteTable& routes, std::function<void(std::function<void()>)> workers,
          std::shared_ptr<AuthSlot> auth)
      : stream_(std::move(s)),
        routes_(routes),
        workers_(std::move(workers)),
        auth_(std::move(auth)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  void start() { read(); }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(64u << 20);
    stream_.expires_after(std::chrono::seconds(120));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->close();
                       self->dispatch();
                     });
  }

  void dispatch() {
    auto req = std::make_shared<http::request<http::string_body>>(parser_->release());
    // Handlers may block (storage queries): never on the io thread.
    workers_([self = shared_from_this(), req] {
      auto res = self->handle(*req);
      net::post(self->stream_.get_executor(), [self, res] { self->write(res); });
    });
  }

  std::shared_ptr<http::response<http::string_body>> handle(
      const http::request<http::string_body>& req) {
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
      std::transform(n.begin(), n.end(), n.begin(),
                     [](unsigned char c) { return std::tolower(c); });
      hstore.push_back(std::move(n));
      hstore.emplace_back(f.value());
    }
    for (size_t i = 0; i < hstore.size(); i += 2)
      headers.push_back({ms(hstore[i]), ms(hstore[i + 1])});
    moni_http_request mreq{ms(method),     ms(target),     ms(path),       ms(query),
                           headers.data(), headers.size(), ms(req.body()), ms(remote_)};
    HttpResponseData data;
    auto auth = auth_->get();
    auto authz = req[http::field::authorization];
    if (auth && !auth->check(std::string_view(authz.data(), authz.size()))) {
      data.status = 401;
      data.headers.emplace_back("WWW-Authenticate", "Basic realm=\"moni\"");
      data.body = "Unauthorized\n";
    } else if (auto route = routes_.find(path)) {
      try {
        route->handler(mreq, data);
      } catch (const std::exception& e) {
        data = HttpResponseData{500, {}, std::string("internal error: ") + e.what() + "\n"};
      }
    } else {
      data.status = 404;
      data.body = "404 page not found\n";
    }
    auto res = std::make_shared<http::response<http::string_body>>();
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

  void write(std::shared_ptr<http::response<http::string_body>> res) {
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  RouteTable& routes_;  // owned by the runtime, which outlives the io_context's sessions
  std::function<void(std::function<void()>)> workers_;
  std::shared_ptr<AuthSlot> auth_;
  std::string remote_;
};

}  // namespace

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(net::io_context& io, RouteTable& r, std::function<void(std::function<void()>)> w)
      : acceptor(io), routes(r), workers(std::move(w)) {}
  void accept() {
    acceptor.async_accept([self = shared_from_this()](beast::error_code ec, tcp::socket s) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec)
        std::make_shared<Session>(std::move(s), self->routes, self->workers, self->auth)->start();
      self->accept();
    });
  }
  tcp::acceptor acceptor;
  RouteTable& routes;
  std::function<void(std::function<void()>)> workers;
  std::shared_ptr<AuthSlot> auth = std::make_shared<AuthSlot>();
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
  std::lock_guard lock(impl_->auth->mu);
  impl_->auth->auth = std::move(auth);
}

void HttpServer::close() {
  beast::error_code ec;
  if (impl_->acceptor.is_open()) impl_->acceptor.close(ec);
}

}  // namespace moni::host
