#include "alertmanager_peer.hpp"

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "prometheus_peer.hpp"

namespace moni::rules::test_support {

namespace ts = moni::promql::test_support;

bool AlertmanagerPeer::available() { return ::access(kBinary, X_OK) == 0; }

bool sleep_poll_step() {
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return true;
}

AlertmanagerPeer::AlertmanagerPeer(int port) : port_(port ? port : ts::free_port()) {
  char tmpl[] = "/tmp/moni-rules-am-XXXXXX";
  if (!mkdtemp(tmpl)) {
    error_ = "mkdtemp failed";
    return;
  }
  dir_ = tmpl;
  // A null receiver: alerts are kept and served by the API, sent nowhere.
  std::ofstream(dir_ + "/alertmanager.yml") << "route:\n"
                                               "  receiver: devnull\n"
                                               "  group_wait: 1s\n"
                                               "receivers:\n"
                                               "  - name: devnull\n";
}

AlertmanagerPeer::~AlertmanagerPeer() {
  stop();
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
}

bool AlertmanagerPeer::start() {
  if (pid_ > 0) return true;
  if (dir_.empty()) return false;
  std::filesystem::create_directories(dir_ + "/data");
  pid_ = ts::spawn(
      {kBinary, "--config.file=" + dir_ + "/alertmanager.yml", "--storage.path=" + dir_ + "/data",
       "--web.listen-address=127.0.0.1:" + std::to_string(port_),
       "--cluster.listen-address=", "--log.level=warn"},
      dir_ + "/alertmanager.log");
  if (pid_ > 0 && ts::wait_http_ok(port_, "/-/ready", 20)) return true;
  std::ifstream f(dir_ + "/alertmanager.log");
  std::string log((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  error_ = "alertmanager did not become ready on port " + std::to_string(port_) + ": " + log;
  stop();
  return false;
}

void AlertmanagerPeer::stop() {
  if (pid_ > 0) ts::stop(pid_);
  pid_ = -1;
}

nlohmann::json AlertmanagerPeer::alerts() const {
  auto r = ts::http_get(port_, "/api/v2/alerts");
  if (r.status != 200) return nullptr;
  return nlohmann::json::parse(r.body, nullptr, false);
}

nlohmann::json find_alert(const nlohmann::json& alerts, const std::string& name) {
  if (!alerts.is_array()) return nullptr;
  for (const auto& a : alerts)
    if (a.contains("labels") && a["labels"].value("alertname", "") == name) return a;
  return nullptr;
}

}  // namespace moni::rules::test_support
