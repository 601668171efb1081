#include "http_peer.hpp"

#include <cctype>
#include <utility>  // before Asio: boost 1.74 awaitable.hpp misses it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <cstdlib>
#include <fcntl.h>
#include <mutex>
#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace moni::testpeer {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

Response http_get(uint16_t port, const std::string& target,
                  const std::map<std::string, std::string>& headers,
                  std::chrono::milliseconds timeout) {
  Response out;
  try {
    asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    http::request<http::string_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [k, v] : headers) req.set(k, v);
    http::response<http::string_body> res;
    beast::flat_buffer buf;
    bool done = false;
    stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                         [&](beast::error_code ec) {
                           if (ec) {
                             out.error = ec.message();
                             return;
                           }
                           http::async_write(stream, req, [&](beast::error_code ec2, size_t) {
                             if (ec2) {
                               out.error = ec2.message();
                               return;
                             }
                             auto parser = std::make_shared<http::response_parser<http::string_body>>();
                             parser->body_limit(1ULL << 31);
                             http::async_read(stream, buf, *parser,
                                              [&, parser](beast::error_code ec3, size_t) {
                                                if (ec3) {
                                                  out.error = ec3.message();
                                                  return;
                                                }
                                                res = parser->release();
                                                done = true;
                                              });
                           });
                         });
    io.run();
    if (!done) return out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& f : res) out.headers[lower(std::string(f.name_string()))] = std::string(f.value());
    out.body = std::move(res.body());
  } catch (const std::exception& e) {
    out.status = 0;
    out.error = e.what();
  }
  return out;
}

struct Server::Impl {
  Handler handler;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  uint16_t port = 0;
  std::atomic<bool> stopping{false};
  std::thread accept_thread;
  std::mutex mu;
  std::vector<std::thread> conns;

  void serve(tcp::socket sock) {
    try {
      beast::flat_buffer buf;
      http::request_parser<http::string_body> parser;
      parser.body_limit(1ULL << 30);
      beast::error_code ec;
      http::read(sock, buf, parser, ec);
      if (ec) return;
      auto& r = parser.get();
      Request req;
      req.method = std::string(r.method_string());
      req.target = std::string(r.target());
      for (const auto& f : r) req.headers[lower(std::string(f.name_string()))] = std::string(f.value());
      req.body = r.body();
      Response resp = handler(req);
      if (resp.status < 0) return;  // the handler asks to drop the connection
      http::response<http::string_body> res{static_cast<http::status>(resp.status ? resp.status : 200), 11};
      for (const auto& [k, v] : resp.headers) res.set(k, v);
      res.set(http::field::connection, "close");
      res.body() = std::move(resp.body);
      res.prepare_payload();
      http::write(sock, res, ec);
      sock.shutdown(tcp::socket::shutdown_both, ec);
    } catch (...) {
    }
  }
};

Server::Server(Handler handler) : impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  impl_->port = impl_->acceptor.local_endpoint().port();
  Impl* im = impl_.get();
  impl_->accept_thread = std::thread([im] {
    for (;;) {
      beast::error_code ec;
      tcp::socket s(im->io);
      im->acceptor.accept(s, ec);
      if (im->stopping) return;
      if (ec) continue;
      std::lock_guard lock(im->mu);
      im->conns.emplace_back([im, sock = std::move(s)]() mutable { im->serve(std::move(sock)); });
    }
  });
}

Server::~Server() {
  impl_->stopping = true;
  // Wake the blocking accept with a connection of our own.
  try {
    asio::io_context io;
    tcp::socket s(io);
    beast::error_code ec;
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), impl_->port), ec);
  } catch (...) {
  }
  impl_->accept_thread.join();
  std::vector<std::thread> conns;
  {
    std::lock_guard lock(impl_->mu);
    conns.swap(impl_->conns);
  }
  for (auto& t : conns) t.join();
}

uint16_t Server::port() const { return impl_->port; }

uint16_t free_port() {
  asio::io_context io;
  tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

Process::Process(const std::vector<std::string>& argv, const std::string& log_file) {
  pid_ = fork();
  if (pid_ == 0) {
    int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, 0);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
}

bool Process::running() {
  if (pid_ <= 0) return false;
  int st;
  return waitpid(pid_, &st, WNOHANG) == 0;
}

Process::~Process() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  for (int i = 0; i < 50; ++i) {
    int st;
    if (waitpid(pid_, &st, WNOHANG) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  kill(pid_, SIGKILL);
  int st;
  waitpid(pid_, &st, 0);
}

int run(const std::vector<std::string>& argv, const std::string& stdin_data, std::string* output) {
  int in[2], out[2];
  if (pipe(in) != 0 || pipe(out) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(out[1], 2);
    close(in[1]);
    close(out[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  std::thread writer([&] {
    size_t off = 0;
    while (off < stdin_data.size()) {
      ssize_t n = write(in[1], stdin_data.data() + off, stdin_data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(in[1]);
  });
  std::string o;
  char buf[4096];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) o.append(buf, static_cast<size_t>(n));
  close(out[0]);
  writer.join();
  int st = 0;
  waitpid(pid, &st, 0);
  if (output) *output = o;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  auto end = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (cond()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

std::string temp_dir(const std::string& prefix) {
  std::string t = "/tmp/" + prefix + "XXXXXX";
  char* d = mkdtemp(t.data());
  return d ? std::string(d) : std::string();
}

}  // namespace moni::testpeer
