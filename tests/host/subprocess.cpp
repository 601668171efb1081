#include "subprocess.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace moni::test {

TempDir::TempDir() {
  char tmpl[] = "/tmp/moni-host-test-XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  path = tmpl;
  ::chmod(path.c_str(), 0755);
}
TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::permissions(path, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::add, ec);
  std::filesystem::remove_all(path, ec);
}
void TempDir::write(const std::string& name, const std::string& text) const {
  std::ofstream(file(name), std::ios::binary | std::ios::trunc) << text;
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace {
int spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
          const std::string& out, const std::string& err) {
  pid_t pid = fork();
  if (pid == 0) {
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(o, 1);
    dup2(e, 2);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  return pid;
}
}  // namespace

RunResult run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  TempDir d;
  int pid = spawn(argv, env, d.file("out"), d.file("err"));
  int st = 0;
  waitpid(pid, &st, 0);
  RunResult r;
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = read_file(d.file("out"));
  r.err = read_file(d.file("err"));
  return r;
}

Child::Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  pid_ = spawn(argv, env, dir_.file("out"), dir_.file("err"));
}
Child::~Child() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}
void Child::signal(int sig) { ::kill(pid_, sig); }
int Child::wait(int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      exited_ = true;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}
std::string Child::err() const { return read_file(dir_.file("err")); }
bool Child::wait_for_log(const std::string& text, int timeout_ms) const {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (err().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}
int Child::port(int timeout_ms) const {
  if (!wait_for_log("listening on ", timeout_ms)) return 0;
  std::string e = err();
  size_t at = e.find("listening on ");
  size_t eol = e.find('\n', at);
  std::string line = e.substr(at, eol - at);
  return std::atoi(line.substr(line.rfind(':') + 1).c_str());
}

HttpReply http_get(int port, const std::string& path, const std::string& extra_headers) {
  HttpReply r;
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return r;
  }
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                    extra_headers + "\r\n";
  (void)!::write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  ::close(fd);
  size_t sp = resp.find(' ');
  if (sp == std::string::npos) return r;
  r.status = std::atoi(resp.c_str() + sp + 1);
  size_t hend = resp.find("\r\n\r\n");
  r.headers = resp.substr(0, hend);
  if (hend != std::string::npos) r.body = resp.substr(hend + 4);
  return r;
}

double metric(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.starts_with(series + " "))
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
  return -1;
}

}  // namespace moni::test
