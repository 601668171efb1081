// The TLS module's connections: sockets the host accepted on a TLS port are
// served here, on this module's own network threads and io_context (its Asio
// is a private copy, hidden in the module), with the host's HttpHandler. Two
// threads, like the host's plain server: the handler lets at most one of
// them run a route's handler, so a route turning slow never stalls TLS I/O.
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <thread>

#include "http_session.hpp"
#include "server_context.hpp"

namespace moni::host::tls {
namespace {
namespace net = boost::asio;
namespace beast = boost::beast;
using tcp = net::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

struct TlsTraits {
  static constexpr bool kTls = true;
  template <class Done>
  static void handshake(TlsStream& s, beast::flat_buffer& buf, Done&& done) {
    s.async_handshake(net::ssl::stream_base::server, buf.data(), std::forward<Done>(done));
  }
  template <class Duration>
  static void expire(TlsStream& s, Duration d) {
    beast::get_lowest_layer(s).expires_after(d);
  }
  template <class Self>
  static void close(TlsStream& s, Self self) {
    beast::get_lowest_layer(s).expires_after(std::chrono::seconds(5));
    s.async_shutdown([self](beast::error_code) {});
  }
};
using Session = http_session::Session<TlsStream, TlsTraits>;

// Looks at the first bytes; a TLS ClientHello continues as a TLS session,
// anything else gets Prometheus's 400 and the connection closes.
class Detector : public std::enable_shared_from_this<Detector> {
 public:
  Detector(tcp::socket s, std::string remote, std::shared_ptr<const OpenSslContext> ctx,
           std::shared_ptr<const HttpHandler> handler)
      : stream_(std::move(s)),
        remote_(std::move(remote)),
        ctx_(std::move(ctx)),
        handler_(std::move(handler)) {}
  void start() {
    stream_.expires_after(std::chrono::milliseconds(ctx_->options().handshake_timeout_ms));
    beast::async_detect_ssl(stream_, buffer_,
                            [self = shared_from_this()](beast::error_code ec, bool is_tls) {
                              if (ec) return;
                              if (is_tls) return self->start_tls();
                              self->reject_plain();
                            });
  }

 private:
  void start_tls() {
    int64_t ms = ctx_->options().handshake_timeout_ms;
    auto& asio_ctx = ctx_->asio();
    std::make_shared<Session>(TlsStream(std::move(stream_), asio_ctx), handler_, ctx_,
                              std::move(buffer_), remote_, ms)
        ->start();
  }
  void reject_plain() {
    static const std::string kBody = "Client sent an HTTP request to an HTTPS server.\n";
    static const std::string kReply =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Connection: close\r\nContent-Length: " +
        std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
    handler_->log_debug("plain HTTP from " + remote_ + " on the TLS port; answered 400");
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
  std::string remote_;
  std::shared_ptr<const OpenSslContext> ctx_;
  std::shared_ptr<const HttpHandler> handler_;
  char scratch_[1024];
};

/// Thread-safety: serve() from any thread; each connection on a strand of
/// its own, run by threads_.
class Connections final : public TlsConnections {
 public:
  static constexpr int kThreads = 2;
  Connections() : guard_(net::make_work_guard(io_)) {
    for (int i = 0; i < kThreads; ++i)
      threads_.emplace_back([this] {
        pthread_setname_np(pthread_self(), "moni-https");
        io_.run();
      });
  }
  ~Connections() override {
    guard_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
  }
  void serve(int fd, std::string remote, std::shared_ptr<const TlsServerContext> ctx,
             std::shared_ptr<const HttpHandler> handler) override {
    // Made by this module's load(): the static type is known.
    auto c = std::static_pointer_cast<const OpenSslContext>(std::move(ctx));
    net::post(io_, [this, fd, remote = std::move(remote), c = std::move(c),
                    h = std::move(handler)]() mutable {
      sockaddr_storage ss{};
      socklen_t len = sizeof ss;
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
      beast::error_code ec;
      tcp::socket s(net::make_strand(io_));
      s.assign(ss.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
      if (ec) {
        ::close(fd);
        return;
      }
      std::make_shared<Detector>(std::move(s), std::move(remote), std::move(c), std::move(h))
          ->start();
    });
  }

 private:
  net::io_context io_{kThreads};
  net::executor_work_guard<net::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

std::unique_ptr<TlsConnections> make_connections() { return std::make_unique<Connections>(); }

const TlsModuleApi kApi{MONI_HOST_TLS_BUILD_ID, &OpenSslContext::load, &make_connections};

}  // namespace
}  // namespace moni::host::tls

extern "C" __attribute__((visibility("default"))) const moni::host::TlsModuleApi*
moni_host_tls_module() {
  return &moni::host::tls::kApi;
}
