#include "http_server.hpp"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>

#include "host_config.hpp"
#include "http_session.hpp"
#include "log.hpp"

namespace moni::host {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

// The route whose handler runs inline on this thread, if any.
thread_local RouteSpeed* t_inline_route = nullptr;

struct PlainTraits {
  static constexpr bool kTls = false;
  template <class Done>
  static void handshake(beast::tcp_stream&, beast::flat_buffer&, Done&&) {}
  template <class Self>
  static void close(beast::tcp_stream& s, Self) {
    beast::error_code ec;
    s.socket().shutdown(tcp::socket::shutdown_send, ec);
  }
};
using PlainSession = http_session::Session<beast::tcp_stream, PlainTraits>;

/// What every connection needs. Thread-safety: auth and tls under mu.
struct Shared {
  Shared(RouteTable& r, std::function<void(std::function<void()>)> w)
      : routes(r), workers(std::move(w)) {}
  RouteTable& routes;  // owned by the runtime, which outlives the io_context's sessions
  std::function<void(std::function<void()>)> workers;
  std::mutex mu;
  std::shared_ptr<const BasicAuth> auth;
  std::shared_ptr<const TlsServerContext> tls;
  std::shared_ptr<const HttpHandler> handler;
  std::unique_ptr<TlsConnections> tls_connections;  // from the TLS module, once TLS was on
  /// A handler is running on a network thread (at most one at a time).
  std::atomic<bool> inline_busy{false};
  std::shared_ptr<const BasicAuth> get_auth() {
    std::lock_guard lock(mu);
    return auth;
  }
};

std::string_view header(const moni_http_request& req, std::string_view name) {
  for (size_t i = 0; i < req.header_count; ++i)
    if (sv(req.headers[i].name) == name) return sv(req.headers[i].value);
  return {};
}

// Auth, route lookup and the handler, timed for RouteSpeed. Runs on a
// worker, or inline on the network thread for a route that is fast.
void handle(Shared& sh, const moni_http_request& req, HttpResponseData& data, bool inline_run) {
  auto auth = sh.get_auth();
  if (auth && !auth->check(header(req, "authorization"))) {
    data.status = 401;
    data.headers.emplace_back("WWW-Authenticate", "Basic realm=\"moni\"");
    data.body = "Unauthorized\n";
    return;
  }
  auto route = sh.routes.find(std::string(sv(req.path)));
  if (!route) {
    data.status = 404;
    data.body = "404 page not found\n";
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  if (inline_run) t_inline_route = route->speed.get();
  try {
    route->handler(req, data);
  } catch (const std::exception& e) {
    data = HttpResponseData{500, {}, std::string("internal error: ") + e.what() + "\n"};
  }
  t_inline_route = nullptr;
  route->speed->record(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
          .count());
}

// Whether the request for `raw_path` may be answered on the network thread:
// never with basic auth (bcrypt is slow on purpose for a wrong password),
// only for a route whose handler was fast every time lately, and only while
// no other handler runs on a network thread: a handler that turns slow then
// holds one network thread, never all of them. `slot` tells whether this
// run took the one place (a 404 needs none).
bool runs_inline(Shared& sh, std::string_view raw_path, bool& slot) {
  slot = false;
  if (raw_path.find('%') != std::string_view::npos || sh.get_auth()) return false;
  auto route = sh.routes.find(std::string(raw_path));
  if (!route) return true;
  if (!route->speed->fast() || (route->may_block && route->may_block())) return false;
  bool idle = false;
  slot = sh.inline_busy.compare_exchange_strong(idle, true, std::memory_order_acquire);
  return slot;
}

std::shared_ptr<const HttpHandler> make_handler(const std::shared_ptr<Shared>& sh) {
  // Weak: the TLS module's connections hold the handler, and Shared holds them.
  std::weak_ptr<Shared> w = sh;
  auto h = std::make_shared<HttpHandler>();
  thread_local bool on_network_thread = false;
  thread_local bool holds_slot = false;
  h->handle = [w](const moni_http_request& req, HttpResponseData& data) {
    auto s = w.lock();
    if (s)
      handle(*s, req, data, on_network_thread);
    else
      data = HttpResponseData{503, {}, "moni is stopping\n"};
    if (holds_slot && s) s->inline_busy.store(false, std::memory_order_release);
    on_network_thread = holds_slot = false;
  };
  h->runs_inline = [w](std::string_view path) {
    auto s = w.lock();
    bool slot = false;
    bool yes = s && runs_inline(*s, path, slot);
    on_network_thread = yes;  // handle() follows right away on this thread when yes
    holds_slot = slot;
    return yes;
  };
  h->workers = [w](std::function<void()> job) {
    if (auto s = w.lock())
      s->workers([job = std::move(job)] {
        on_network_thread = holds_slot = false;
        job();
      });
  };
  h->log_debug = [](const std::string& msg) { log_debug("http", msg); };
  return h;
}

std::string remote_of(const tcp::socket& s) {
  beast::error_code ec;
  auto ep = s.remote_endpoint(ec);
  return ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

void note_blocking_in_handler() {
  if (t_inline_route) t_inline_route->never_inline.store(true, std::memory_order_relaxed);
}

// The network threads' io_context; outlives every connection's objects.
struct HttpServer::Net {
  net::io_context io{HttpServer::kNetworkThreads};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> guard;
  std::vector<std::thread> threads;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(net::io_context& io, RouteTable& r, std::function<void(std::function<void()>)> w)
      : io(io), acceptor(net::make_strand(io)), shared(std::make_shared<Shared>(r, std::move(w))) {
    shared->handler = make_handler(shared);
  }
  void accept() {
    // Each connection on a strand of its own: its reads, writes and timer
    // never run on two network threads at once.
    acceptor.async_accept(net::make_strand(io), [self = shared_from_this()](beast::error_code ec,
                                                                            tcp::socket s) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) {
        std::shared_ptr<const TlsServerContext> tls;
        TlsConnections* tls_connections = nullptr;
        {
          std::lock_guard lock(self->shared->mu);
          tls = self->shared->tls;
          tls_connections = self->shared->tls_connections.get();
        }
        std::string remote = remote_of(s);
        if (tls && tls_connections) {
          int fd = s.release(ec);
          if (!ec)
            tls_connections->serve(fd, std::move(remote), std::move(tls), self->shared->handler);
        } else {
          std::make_shared<PlainSession>(beast::tcp_stream(std::move(s)), self->shared->handler,
                                         nullptr, beast::flat_buffer(), std::move(remote), 0)
              ->start();
        }
      }
      self->accept();
    });
  }
  net::io_context& io;
  tcp::acceptor acceptor;  // on a strand: accept() and close() never overlap
  std::shared_ptr<Shared> shared;
};

HttpServer::HttpServer(RouteTable& routes, std::function<void(std::function<void()>)> to_workers)
    : net_(std::make_unique<Net>()),
      impl_(std::make_shared<Impl>(net_->io, routes, std::move(to_workers))) {}

HttpServer::~HttpServer() { stop(); }

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
  port_ = a.local_endpoint(ec).port();
  impl_->accept();
  net_->guard.emplace(net_->io.get_executor());
  for (int i = 0; i < kNetworkThreads; ++i)
    net_->threads.emplace_back([io = &net_->io] {
      pthread_setname_np(pthread_self(), "moni-http");
      io->run();
    });
  return {};
}

void HttpServer::set_auth(std::shared_ptr<const BasicAuth> auth) {
  std::lock_guard lock(impl_->shared->mu);
  impl_->shared->auth = std::move(auth);
}

void HttpServer::set_tls(std::shared_ptr<const TlsServerContext> tls) {
  auto& sh = *impl_->shared;
  bool was_on;
  {
    std::lock_guard lock(sh.mu);
    if (tls && !sh.tls_connections) {
      std::string err;
      sh.tls_connections = TlsConnections::create(err);
      if (!sh.tls_connections) {
        // Cannot happen after the config loaded the context through the same module.
        log_error("http", err);
        return;
      }
    }
    was_on = sh.tls != nullptr;
    sh.tls = tls;
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
  net::post(impl_->acceptor.get_executor(), [impl = impl_] {
    beast::error_code ec;
    if (impl->acceptor.is_open()) impl->acceptor.close(ec);
  });
}

void HttpServer::stop() {
  if (net_->threads.empty()) return;
  close();
  net_->guard.reset();
  net_->io.stop();
  for (auto& t : net_->threads) t.join();
  net_->threads.clear();
}

}  // namespace moni::host
