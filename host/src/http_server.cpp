#include "http_server.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstring>
#include <list>
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
// True on the rescue loop's thread, which never runs a handler inline.
thread_local bool t_rescue_loop = false;
// True on the main loop's thread: its inline handlers arm the watchdog.
thread_local bool t_main_loop = false;

using Clock = std::chrono::steady_clock;

// The deadlines of one network loop's plain connections, enforced by one
// timer per loop that is re-armed only when a deadline comes before the one
// it is armed for: a read pushing its connection's deadline later costs no
// timer operation (Beast's tcp_stream armed and cancelled a timer per I/O:
// ~3 timerfd_settime per request). When the timer fires, the connections
// past their deadline are closed (their pending I/O ends with an error, as
// a tcp_stream timeout) and it is armed for the earliest one left.
// Thread-safety: set() and the sweep on the loop's thread; add() and
// remove() under mu (a connection may end on a worker).
struct DeadlineList {
  struct Entry {
    Clock::time_point at = Clock::time_point::max();
    tcp::socket* socket;
  };
  using Handle = std::list<Entry>::iterator;
  std::mutex mu;
  std::list<Entry> entries;
  Clock::time_point armed_at = Clock::time_point::max();  // loop thread only
  std::function<void(Clock::time_point)> arm;             // arms the loop's timer

  Handle add(tcp::socket* s) {
    std::lock_guard lock(mu);
    return entries.insert(entries.end(), Entry{Clock::time_point::max(), s});
  }
  void remove(Handle h) {
    std::lock_guard lock(mu);
    entries.erase(h);
  }
  void set(Handle h, Clock::duration d) {
    auto at = Clock::now() + d;
    {
      std::lock_guard lock(mu);
      h->at = at;
    }
    if (at < armed_at && arm) {
      armed_at = at;
      arm(at);
    }
  }
  // When the timer fired: closes what is due, re-arms for the rest.
  void sweep() {
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    {
      std::lock_guard lock(mu);
      for (auto& e : entries) {
        if (e.at <= now) {
          e.at = Clock::time_point::max();
          beast::error_code ec;
          e.socket->close(ec);
        } else {
          next = std::min(next, e.at);
        }
      }
    }
    armed_at = Clock::time_point::max();
    if (next != Clock::time_point::max() && arm) {
      armed_at = next;
      arm(next);
    }
  }
};

// A plain connection's socket with its deadline in its loop's list.
class PlainSocket : public tcp::socket {
 public:
  PlainSocket(tcp::socket s, DeadlineList& list)
      : tcp::socket(std::move(s)), list_(&list), h_(list.add(this)) {}
  PlainSocket(PlainSocket&& o) noexcept
      : tcp::socket(std::move(static_cast<tcp::socket&>(o))), list_(o.list_), h_(o.h_) {
    o.list_ = nullptr;
    if (list_) {
      std::lock_guard lock(list_->mu);
      h_->socket = this;
    }
  }
  PlainSocket& operator=(PlainSocket&&) = delete;
  ~PlainSocket() {
    if (list_) list_->remove(h_);
  }
  void expires_after(Clock::duration d) { list_->set(h_, d); }

 private:
  DeadlineList* list_;
  DeadlineList::Handle h_;
};

struct PlainTraits {
  static constexpr bool kTls = false;
  template <class Done>
  static void handshake(PlainSocket&, beast::flat_buffer&, Done&&) {}
  template <class Duration>
  static void expire(PlainSocket& s, Duration d) {
    s.expires_after(std::chrono::duration_cast<Clock::duration>(d));
  }
  static void shutdown_send(PlainSocket& s, beast::error_code& ec) {
    s.shutdown(tcp::socket::shutdown_send, ec);
  }
  template <class Self>
  static void close(PlainSocket& s, Self) {
    beast::error_code ec;
    s.shutdown(tcp::socket::shutdown_send, ec);
  }
};
using PlainSession = http_session::Session<PlainSocket, PlainTraits>;

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
  /// timerfd armed while the main loop runs a handler inline; when it
  /// fires, the rescue loop accepts (see HttpServer::Net). -1: none.
  int watchdog_fd = -1;
  /// Set by the rescue loop when it started accepting.
  std::atomic<bool> rescuing{false};
  std::function<void()> end_rescue;  // posts the end of rescue accepting
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
  if (t_rescue_loop || raw_path.find('%') != std::string_view::npos || sh.get_auth()) return false;
  auto route = sh.routes.find(std::string(raw_path));
  if (!route) return true;
  if (!route->speed->fast() || (route->may_block && route->may_block())) return false;
  bool idle = false;
  slot = sh.inline_busy.compare_exchange_strong(idle, true, std::memory_order_acquire);
  return slot;
}

// A handler running inline on the main loop for longer than this lets the
// rescue loop accept connections until it returns.
constexpr int64_t kRescueAfterNs = 20'000'000;

// One-shot in `ns` (0: disarmed).
void set_watchdog(int fd, int64_t ns) {
  itimerspec t{};
  t.it_value.tv_sec = ns / 1'000'000'000;
  t.it_value.tv_nsec = ns % 1'000'000'000;
  ::timerfd_settime(fd, 0, &t, nullptr);
}

std::shared_ptr<const HttpHandler> make_handler(const std::shared_ptr<Shared>& sh) {
  // Weak: the TLS module's connections hold the handler, and Shared holds them.
  std::weak_ptr<Shared> w = sh;
  auto h = std::make_shared<HttpHandler>();
  thread_local bool on_network_thread = false;
  thread_local bool holds_slot = false;
  h->handle = [w](const moni_http_request& req, HttpResponseData& data) {
    auto s = w.lock();
    const bool watch = s && on_network_thread && t_main_loop && s->watchdog_fd >= 0;
    if (watch) set_watchdog(s->watchdog_fd, kRescueAfterNs);
    if (s)
      handle(*s, req, data, on_network_thread);
    else
      data = HttpResponseData{503, {}, "moni is stopping\n"};
    if (watch) {
      set_watchdog(s->watchdog_fd, 0);
      if (s->rescuing.load(std::memory_order_acquire)) s->end_rescue();
    }
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

}  // namespace

void note_blocking_in_handler() {
  if (t_inline_route) t_inline_route->never_inline.store(true, std::memory_order_relaxed);
}

// The network threads: one io_context each (concurrency hint 1: no locking,
// and a completion runs on the thread that saw it; on one io_context shared
// by two threads every completion woke the other thread: ~8 context
// switches per scrape). The main loop accepts (TCP_DEFER_ACCEPT: once the
// request is there, so accept, read and answer take one wake-up), serves
// its connections and runs fast routes' handlers inline. The rescue loop
// sleeps until a handler has held the main loop for kRescueAfterNs (a
// timerfd armed around each inline handler), then accepts and serves new
// connections (their handlers on the pool) until that handler returns:
// a fast route turning slow never stops the server from answering.
// Outlives every connection's objects.
struct HttpServer::Net {
  static_assert(HttpServer::kNetworkThreads == 2);
  // Before the io_contexts: connections left in them at their destruction
  // take their entries out of these.
  DeadlineList main_deadlines, rescue_deadlines;
  // The rescue loop's handlers hold the Impl weakly and rescue_io is
  // destroyed last: the Impl (held by main_io's pending accept) goes with
  // main_io while the rescue loop's objects still have their context.
  net::io_context rescue_io{1};
  net::io_context main_io{1};
  std::optional<net::executor_work_guard<net::io_context::executor_type>> main_guard, rescue_guard;
  std::vector<std::thread> threads;
};

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(HttpServer::Net& net, RouteTable& r, std::function<void(std::function<void()>)> w)
      : main_io(net.main_io),
        rescue_io(net.rescue_io),
        main_deadlines(net.main_deadlines),
        rescue_deadlines(net.rescue_deadlines),
        acceptor(main_io),
        rescue_acceptor(rescue_io),
        watchdog(rescue_io),
        main_sweep(main_io),
        rescue_sweep(rescue_io),
        shared(std::make_shared<Shared>(r, std::move(w))) {
    shared->handler = make_handler(shared);
  }

  // Each loop's deadline list arms that loop's timer (on that loop's thread).
  void init_deadlines() {
    std::weak_ptr<Impl> w = shared_from_this();
    auto wire = [w](DeadlineList& list, net::steady_timer& timer) {
      list.arm = [w, &list, &timer](Clock::time_point at) {
        auto self = w.lock();
        if (!self) return;
        timer.expires_at(at);
        timer.async_wait([w, &list](beast::error_code ec) {
          auto alive = w.lock();
          if (ec || !alive) return;  // re-armed (cancelled) or stopping
          list.sweep();
        });
      };
    };
    wire(main_deadlines, main_sweep);
    wire(rescue_deadlines, rescue_sweep);
  }

  // Sets up the rescue loop's acceptor (a duplicate of the listening
  // socket, idle until needed) and the watchdog timer. Without them (no
  // descriptors left) the server still works, without the rescue.
  void prepare_rescue() {
    int tfd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    int lfd = ::fcntl(acceptor.native_handle(), F_DUPFD_CLOEXEC, 0);
    beast::error_code ec;
    if (tfd >= 0 && lfd >= 0) watchdog.assign(tfd, ec);
    if (tfd < 0 || lfd < 0 || ec) {
      if (tfd >= 0 && !watchdog.is_open()) ::close(tfd);
      if (lfd >= 0) ::close(lfd);
      log_warn("http", "no rescue loop for slow handlers: " +
                           (ec ? ec.message() : std::string(std::strerror(errno))));
      return;
    }
    rescue_fd = lfd;
    shared->watchdog_fd = tfd;
    std::weak_ptr<Impl> w = shared_from_this();
    shared->end_rescue = [w, io = &rescue_io] {
      net::post(*io, [w] {
        auto self = w.lock();
        if (!self || !self->shared->rescuing.exchange(false)) return;
        self->stop_rescue();
      });
    };
    wait_watchdog();
  }

  void wait_watchdog() {
    watchdog.async_wait(net::posix::descriptor_base::wait_read,
                        [w = weak_from_this()](beast::error_code ec) {
                          auto self = w.lock();
                          if (ec || !self) return;  // closed
                          uint64_t n;
                          (void)!::read(self->watchdog.native_handle(), &n, sizeof n);
                          if (self->inline_busy_on_main() && !self->shared->rescuing.exchange(true)) {
                            log_debug("http", "a handler holds the main network thread; "
                                              "accepting on the rescue thread");
                            // Registered only while rescuing: otherwise every
                            // connection would wake this thread too.
                            beast::error_code aec;
                            if (!self->rescue_acceptor.is_open())
                              self->rescue_acceptor.assign(self->protocol, self->rescue_fd, aec);
                            if (!aec) self->rescue_accept();
                          }
                          self->wait_watchdog();
                        });
  }
  bool inline_busy_on_main() const { return shared->inline_busy.load(std::memory_order_acquire); }

  void accept() {
    acceptor.async_accept(main_io, peer, [self = shared_from_this()](beast::error_code ec,
                                                                     tcp::socket s) {
      if (ec == net::error::operation_aborted || !self->acceptor.is_open()) return;
      if (!ec) self->serve(std::move(s), self->peer, self->main_deadlines);
      self->accept();
    });
  }
  void rescue_accept() {
    rescue_acceptor.async_accept(rescue_io, rescue_peer, [w = weak_from_this()](
                                                             beast::error_code ec, tcp::socket s) {
      auto self = w.lock();
      if (!self || ec == net::error::operation_aborted || !self->rescue_acceptor.is_open()) return;
      if (!ec) self->serve(std::move(s), self->rescue_peer, self->rescue_deadlines);
      // Until the slow handler returned (its end_rescue may have raced
      // with the watchdog: then the slot is free and this stops here).
      if (self->shared->rescuing.load(std::memory_order_acquire) && self->inline_busy_on_main())
        self->rescue_accept();
      else if (self->shared->rescuing.exchange(false))
        self->stop_rescue();
    });
  }
  // Rescue loop: deregisters the duplicated listening socket (kept open).
  void stop_rescue() {
    beast::error_code ec;
    if (rescue_acceptor.is_open()) rescue_acceptor.release(ec);
  }
  ~Impl() {
    if (!rescue_acceptor.is_open() && rescue_fd >= 0) ::close(rescue_fd);
  }

  // On the loop that accepted `s` (the peer's address came with the accept:
  // no getpeername per connection).
  void serve(tcp::socket s, const tcp::endpoint& from, DeadlineList& deadlines) {
    std::string remote = from.address().to_string() + ":" + std::to_string(from.port());
    std::shared_ptr<const TlsServerContext> tls;
    TlsConnections* tls_connections = nullptr;
    {
      std::lock_guard lock(shared->mu);
      tls = shared->tls;
      tls_connections = shared->tls_connections.get();
    }
    if (tls && tls_connections) {
      beast::error_code ec;
      int fd = s.release(ec);
      if (!ec) tls_connections->serve(fd, std::move(remote), std::move(tls), shared->handler);
      return;
    }
    std::make_shared<PlainSession>(PlainSocket(std::move(s), deadlines), shared->handler, nullptr,
                                   beast::flat_buffer(), std::move(remote), 0)
        ->start();
  }

  net::io_context& main_io;
  net::io_context& rescue_io;
  DeadlineList& main_deadlines;    // in Net: outlive the connections
  DeadlineList& rescue_deadlines;
  tcp::acceptor acceptor;         // main loop: accept() and close() never overlap
  tcp::acceptor rescue_acceptor;  // rescue loop; rescue_fd while rescuing
  int rescue_fd = -1;             // the listening socket, duplicated
  net::posix::stream_descriptor watchdog;  // rescue loop; the timerfd
  net::steady_timer main_sweep, rescue_sweep;  // each loop's deadline timer
  tcp protocol = tcp::v4();       // the listening socket's
  tcp::endpoint peer, rescue_peer;  // of the connection being accepted
  std::shared_ptr<Shared> shared;
};

HttpServer::HttpServer(RouteTable& routes, std::function<void(std::function<void()>)> to_workers)
    : net_(std::make_unique<Net>()),
      impl_(std::make_shared<Impl>(*net_, routes, std::move(to_workers))) {}

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
    std::string why = ec.message();  // close() below would overwrite ec
    a.close(ec);
    return make_error("cannot listen on " + address + ": " + why);
  }
  port_ = a.local_endpoint(ec).port();
  impl_->protocol = ep.protocol();
  // Woken when a request has arrived, not at the handshake: accepting and
  // answering is one wake-up (Prometheus sends its request at once).
  int defer_s = 1;
  ::setsockopt(a.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_s, sizeof defer_s);
  impl_->init_deadlines();
  impl_->prepare_rescue();
  impl_->accept();
  net_->main_guard.emplace(net_->main_io.get_executor());
  net_->rescue_guard.emplace(net_->rescue_io.get_executor());
  for (net::io_context* io : {&net_->main_io, &net_->rescue_io})
    net_->threads.emplace_back([io, main = io == &net_->main_io] {
      pthread_setname_np(pthread_self(), "moni-http");
      t_main_loop = main;
      t_rescue_loop = !main;
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
  // Weak: a job left queued when stop() stops the loops must not keep the
  // Impl (and its io objects) alive past the io_contexts (see Net).
  std::weak_ptr<Impl> w = impl_;
  net::post(impl_->acceptor.get_executor(), [w] {
    auto impl = w.lock();
    beast::error_code ec;
    if (impl && impl->acceptor.is_open()) impl->acceptor.close(ec);
  });
  net::post(impl_->rescue_acceptor.get_executor(), [w] {
    auto impl = w.lock();
    if (!impl) return;
    beast::error_code ec;
    impl->shared->rescuing.store(false);
    if (impl->rescue_acceptor.is_open()) impl->rescue_acceptor.close(ec);
    else if (impl->rescue_fd >= 0) ::close(impl->rescue_fd);
    impl->rescue_fd = -1;
    if (impl->watchdog.is_open()) impl->watchdog.close(ec);
  });
}

void HttpServer::stop() {
  if (net_->threads.empty()) return;
  close();
  net_->main_guard.reset();
  net_->rescue_guard.reset();
  net_->main_io.stop();
  net_->rescue_io.stop();
  for (auto& t : net_->threads) t.join();
  net_->threads.clear();
}

}  // namespace moni::host
