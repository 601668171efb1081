#include "prometheus_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

namespace moni::promql::test_support {

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

std::string url_encode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 15]);
    }
  }
  return out;
}

HttpReply http_get(int port, const std::string& target) {
  HttpReply r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return r;
  }
  std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  size_t off = 0;
  while (off < req.size()) {
    ssize_t n = write(fd, req.data() + off, req.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  std::string resp;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (resp.size() > 12) r.status = std::atoi(resp.c_str() + 9);
  size_t hdr_end = resp.find("\r\n\r\n");
  if (hdr_end != std::string::npos) r.body = resp.substr(hdr_end + 4);
  return r;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::fflush(nullptr);  // or the child would flush our buffered output too
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "w", stdout);
    (void)f;
    dup2(fileno(stdout), fileno(stderr));
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}

int run(const std::vector<std::string>& argv, std::string* out) {
  std::fflush(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string data;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;)
    data.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (out) *out = std::move(data);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  int st = 0;
  waitpid(pid, &st, 0);
}

bool wait_http_ok(int port, const std::string& target, int seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (http_get(port, target).status == 200) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

PrometheusPeer::PrometheusPeer(const std::string& openmetrics_file) {
  char tmpl[] = "/tmp/moni-promql-diff-XXXXXX";
  if (!mkdtemp(tmpl)) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  std::string tsdb = dir_ + "/tsdb";
  std::filesystem::create_directories(tsdb);
  std::string cmd = "promtool tsdb create-blocks-from openmetrics '" + openmetrics_file + "' '" +
                    tsdb + "' > '" + dir_ + "/promtool.log' 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    error_ = "promtool failed: see " + dir_ + "/promtool.log";
    return;
  }
  start(tsdb, {});
}

PrometheusPeer::PrometheusPeer(const std::string& tsdb_dir,
                               const std::vector<std::string>& extra_flags) {
  char tmpl[] = "/tmp/moni-promql-peer-XXXXXX";
  if (!mkdtemp(tmpl)) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  start(tsdb_dir, extra_flags);
}

void PrometheusPeer::start(const std::string& tsdb, const std::vector<std::string>& extra_flags) {
  std::ofstream(dir_ + "/prometheus.yml") << "global: {}\n";
  port_ = free_port();
  std::vector<std::string> argv = {"/usr/bin/prometheus", "--storage.tsdb.path=" + tsdb,
                                   "--config.file=" + dir_ + "/prometheus.yml",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                   "--storage.tsdb.retention.time=100y"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  pid_ = spawn(argv, dir_ + "/prometheus.log");
  if (wait_http_ok(port_, "/-/ready", 60)) return;
  error_ = "prometheus did not become ready: see " + dir_ + "/prometheus.log";
}

PrometheusPeer::~PrometheusPeer() {
  stop(pid_);
  if (!dir_.empty() && error_.empty()) std::filesystem::remove_all(dir_);
}

}  // namespace moni::promql::test_support
