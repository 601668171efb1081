#include "http_fetch.hpp"

#include <utility>  // before Asio: boost 1.74 awaitable.hpp misses it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <limits>
#include <memory>

namespace moni::scrape {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One request's state machine: resolve -> connect -> write -> read.
struct Fetch : std::enable_shared_from_this<Fetch> {
  Fetch(asio::io_context& io, const FetchRequest& rq, FetchResult& out)
      : req(rq), res(out), resolver(io), stream(io), timer(io) {}

  const FetchRequest& req;
  FetchResult& res;
  tcp::resolver resolver;
  beast::tcp_stream stream;
  asio::steady_timer timer;
  beast::flat_buffer buf;
  http::request<http::empty_body> hreq;
  std::unique_ptr<http::response_parser<http::string_body>> parser;
  bool timed_out = false;
  bool finished = false;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

  void start() {
    auto self = shared_from_this();
    timer.expires_after(req.timeout);
    timer.async_wait([self](beast::error_code ec) {
      if (ec || self->finished) return;
      self->timed_out = true;
      beast::error_code ignored;
      self->resolver.cancel();
      self->stream.socket().close(ignored);
    });
    resolver.async_resolve(req.host, req.port,
                           [self](beast::error_code ec, tcp::resolver::results_type r) {
                             if (ec) return self->fail("resolving " + self->req.host, ec);
                             self->stream.async_connect(r, [self](beast::error_code ec2,
                                                                  const tcp::endpoint&) {
                               if (ec2) return self->fail("connecting", ec2);
                               self->write();
                             });
                           });
  }
  void write() {
    auto self = shared_from_this();
    hreq = {http::verb::get, req.target, 11};
    hreq.set(http::field::host, req.host + ":" + req.port);
    for (const auto& [k, v] : req.headers) hreq.set(k, v);
    http::async_write(stream, hreq, [self](beast::error_code ec, size_t) {
      if (ec) return self->fail("sending the request", ec);
      self->read();
    });
  }
  void read() {
    auto self = shared_from_this();
    parser = std::make_unique<http::response_parser<http::string_body>>();
    parser->body_limit(req.body_limit ? req.body_limit : std::numeric_limits<uint64_t>::max());
    parser->header_limit(64 * 1024);
    http::async_read(stream, buf, *parser, [self](beast::error_code ec, size_t) {
      if (ec == http::error::body_limit)
        return self->fail_msg("body larger than body_size_limit (" +
                              std::to_string(self->req.body_limit) + " bytes)");
      if (ec) return self->fail("reading the response", ec);
      auto& m = self->parser->get();
      self->res.ok = true;
      self->res.status = m.result_int();
      self->res.content_type = std::string(m[http::field::content_type]);
      self->res.content_encoding = std::string(m[http::field::content_encoding]);
      self->res.body = std::move(m.body());
      self->done();
    });
  }
  void fail(const std::string& what, beast::error_code ec) {
    if (timed_out)
      fail_msg("timeout after " + std::to_string(req.timeout.count()) + "ms (" + what + ")");
    else
      fail_msg(what + ": " + ec.message());
  }
  void fail_msg(std::string msg) {
    res.ok = false;
    res.error = std::move(msg);
    done();
  }
  void done() {
    finished = true;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    timer.cancel();
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.socket().close(ignored);
  }
};

}  // namespace

std::vector<FetchResult> fetch_all(const std::vector<FetchRequest>& requests) {
  std::vector<FetchResult> out(requests.size());
  try {
    asio::io_context io;
    for (size_t i = 0; i < requests.size(); ++i)
      std::make_shared<Fetch>(io, requests[i], out[i])->start();
    io.run();
  } catch (const std::exception& e) {
    for (auto& r : out)
      if (!r.ok && r.error.empty()) r.error = std::string("http client: ") + e.what();
  }
  return out;
}

}  // namespace moni::scrape
