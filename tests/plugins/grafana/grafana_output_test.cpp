// The grafana output plugin against a fake Grafana: no Grafana server can
// run on this machine (no package, no network), so fake_grafana.py (Python's
// http.server) stands in for it. It answers as Grafana's HTTP API documents
// (data source, folder and dashboard APIs), keeps state so that a second
// sync can be checked for idempotency, and records every request that
// deviates from the documented API; each test asserts there is none.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "../../../plugins/grafana/listen_address.hpp"
#include "plugin_harness.hpp"
#include "prometheus_peer.hpp"

namespace {

using moni::promql::test_support::free_port;
using moni::promql::test_support::http_get;
using moni::promql::test_support::spawn;
using moni::promql::test_support::wait_http_ok;
using moni::testing::PluginHarness;
using nlohmann::json;
namespace fs = std::filesystem;

const std::string kToken = "glsa_test_0123456789";
const std::string kDashboards = std::string(MONI_SOURCE_DIR) + "/packaging/grafana/dashboards";

class FakeGrafana {
 public:
  explicit FakeGrafana(int port) : port_(port) {
    pid_ = spawn({"/usr/bin/python3",
                  std::string(MONI_SOURCE_DIR) + "/tests/plugins/grafana/fake_grafana.py",
                  std::to_string(port), kToken},
                 "/dev/null");
    ok_ = wait_http_ok(port, "/_state", 20);
  }
  ~FakeGrafana() { moni::promql::test_support::stop(pid_); }
  bool ok() const { return ok_; }
  json state() const { return json::parse(http_get(port_, "/_state").body); }
  // Calls made with `method` on paths starting with `prefix`.
  size_t count(const std::string& method, const std::string& prefix) const {
    size_t n = 0;
    const json s = state();
    for (const auto& r : s["requests"])
      if (r["method"] == method && r["path"].get<std::string>().rfind(prefix, 0) == 0) ++n;
    return n;
  }

 private:
  int port_;
  pid_t pid_ = -1;
  bool ok_ = false;
};

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/moni-grafana-test-XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string config(int port, const std::string& token_file, const std::string& extra = "",
                   const std::string& dashboards = kDashboards) {
  return "url = \"http://127.0.0.1:" + std::to_string(port) + "\"\ntoken_file = \"" + token_file +
         "\"\nretry_interval = \"1s\"\nresync_interval = \"0s\"\nrequest_timeout = \"5s\"\n" +
         "dashboards = \"" + dashboards + "\"\n" + extra;
}

double metric(PluginHarness& h, const std::string& name) {
  auto b = h.self_metrics();
  const auto* s = b.one(name);
  return s ? s->value : -1;
}

// Polls until the plugin reports `value` for moni_grafana_sync_success.
bool wait_sync(PluginHarness& h, double value, int seconds = 20) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (metric(h, "moni_grafana_sync_success") == value &&
        (value == 0 ? metric(h, "moni_grafana_errors_total") >= 1
                    : metric(h, "moni_grafana_last_sync_timestamp_seconds") > 0))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::unique_ptr<PluginHarness> load(const std::string& cfg) {
  auto h = PluginHarness::load(moni::testing::plugin_path("grafana"), cfg, "grafana");
  EXPECT_TRUE(h) << (h ? "" : h.error().message);
  return h ? std::move(h).value() : nullptr;
}

std::string write_token(const TempDir& dir, const std::string& token) {
  std::string p = dir.path() + "/token";
  std::ofstream(p) << token << "\n";
  return p;
}

size_t dashboard_files() {
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(kDashboards)) n += e.path().extension() == ".json";
  return n;
}

TEST(GrafanaOutput, ConfigErrors) {
  for (auto [cfg, want] : std::vector<std::pair<std::string, std::string>>{
           {"url = \"http://g:3000\"\ntoken = \"secret\"\n", "'token' is not accepted"},
           {"token_file = \"/x\"\n", "missing required option 'url'"},
           {"url = \"ftp://g\"\n", "must start with http:// or https://"},
           {"url = \"http://g\"\ntoken_file = \"/x\"\ntoken_env = \"T\"\n", "not both"},
           {"url = \"http://g\"\nretry_interval = \"10ms\"\n", "retry_interval must be >= 1s"},
           {"url = \"http://g\"\nfolder_name = \"x\"\n", "folder_name"},
       }) {
    auto h = PluginHarness::load(moni::testing::plugin_path("grafana"), cfg);
    ASSERT_FALSE(h) << cfg;
    EXPECT_NE(h.error().message.find(want), std::string::npos) << h.error().message;
  }
}

// Grafana is down when moni starts: start() returns at once, the plugin
// retries with backoff, and syncs as soon as Grafana answers. The data
// source URL defaults to the process's listening socket (moni's listen
// address in the real host; here one the test opens).
TEST(GrafanaOutput, StartNeverBlocksAndRetriesUntilGrafanaAnswers) {
  TempDir dir;
  const int port = free_port();
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof a;
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string own_url = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));

  auto h = load(config(port, write_token(dir, kToken)));
  ASSERT_TRUE(h);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(h->start());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500));
  ASSERT_TRUE(wait_sync(*h, 0)) << "no failed attempt while Grafana is down";
  EXPECT_EQ(metric(*h, "moni_grafana_last_sync_timestamp_seconds"), 0);

  FakeGrafana g(port);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(wait_sync(*h, 1)) << "no sync after Grafana came up";
  json s = g.state();
  EXPECT_TRUE(s["violations"].empty()) << s["violations"].dump(1);
  ASSERT_EQ(s["datasources"].size(), 1u);
  const json& ds = s["datasources"][0];
  EXPECT_EQ(ds["name"], "moni");
  EXPECT_EQ(ds["uid"], "moni");
  EXPECT_EQ(ds["type"], "prometheus");
  EXPECT_EQ(ds["access"], "proxy");
  EXPECT_EQ(ds["url"], own_url);
  EXPECT_EQ(ds["jsonData"]["httpMethod"], "POST");
  ASSERT_EQ(s["folders"].size(), 1u);
  EXPECT_EQ(s["folders"][0]["title"], "moni");
  ASSERT_EQ(s["dashboards"].size(), dashboard_files());
  for (const auto& uid : {"moni-host-overview", "moni-containers", "moni-health"}) {
    ASSERT_TRUE(s["dashboards"].contains(uid)) << uid;
    const json& d = s["dashboards"][uid];
    EXPECT_EQ(d["folderUid"], s["folders"][0]["uid"]);
    EXPECT_EQ(d["dashboard"]["version"], 1);
    EXPECT_EQ(d["dashboard"]["panels"][0]["datasource"]["uid"], "moni");
  }
  EXPECT_EQ(metric(*h, "moni_grafana_dashboards_uploaded_total"), dashboard_files());
  h->stop();
  close(listener);
}

TEST(GrafanaListenAddress, HostListenUrlsWithWildcardsOnLoopback) {
  using moni::grafana::url_from_listen_urls;
  EXPECT_EQ(url_from_listen_urls({}), std::nullopt);
  EXPECT_EQ(url_from_listen_urls({"http://0.0.0.0:9095"}), "http://127.0.0.1:9095");
  EXPECT_EQ(url_from_listen_urls({"https://[::]:9443", "http://10.1.1.1:80"}),
            "https://127.0.0.1:9443");
  EXPECT_EQ(url_from_listen_urls({"http://:9095"}), "http://127.0.0.1:9095");
  EXPECT_EQ(url_from_listen_urls({"http://[::1]:9095"}), "http://[::1]:9095");
  EXPECT_EQ(url_from_listen_urls({"http://moni.example:9095"}), "http://moni.example:9095");
  EXPECT_EQ(url_from_listen_urls({"garbage"}), std::nullopt);
}

// On a host of ABI >= 1.2 the default data source URL is the host's own
// listen URL, scheme included (the guess from listening sockets said http://
// for an https listener, and took whatever single socket the process had);
// a 1.1 host, which cannot say, keeps the guess.
TEST(GrafanaOutput, DataSourceUrlIsTheHostsListenUrl) {
  TempDir dir;
  const int port = free_port();
  FakeGrafana g(port);
  ASSERT_TRUE(g.ok());
  int listener = socket(AF_INET, SOCK_STREAM, 0);  // what the guess finds
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(listener, 1), 0);
  socklen_t len = sizeof a;
  getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string guessed = "http://127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  // Context::listen_urls() is empty on a 1.1 host (its host API struct has
  // no such field: the SDK checks struct_size), as from the harness by
  // default.
  for (uint16_t minor : {2, 1}) {
    auto h = load(config(port, write_token(dir, kToken)));
    ASSERT_TRUE(h);
    if (minor >= 2) h->set_listen_urls({"https://0.0.0.0:9443"});
    ASSERT_TRUE(h->start());
    ASSERT_TRUE(wait_sync(*h, 1)) << "1." << minor;
    json s = g.state();
    ASSERT_EQ(s["datasources"].size(), 1u);
    EXPECT_EQ(s["datasources"][0]["url"], minor >= 2 ? "https://127.0.0.1:9443" : guessed)
        << "1." << minor;
    EXPECT_TRUE(s["violations"].empty()) << s["violations"].dump(1);
    h->stop();
  }
  close(listener);
}

// A second sync (a restart of moni, or the periodic re-check) changes
// nothing: the same data source (no duplicate), the same dashboard uids and
// versions, no uploads.
TEST(GrafanaOutput, SecondSyncIsIdempotentAndUpdatesWhatChanged) {
  TempDir dir;
  const int port = free_port();
  FakeGrafana g(port);
  ASSERT_TRUE(g.ok());
  const std::string token = write_token(dir, kToken);
  const std::string cfg = config(port, token, "datasource_url = \"http://10.0.0.5:9095\"\n");
  {
    auto h = load(cfg);
    ASSERT_TRUE(h && h->start());
    ASSERT_TRUE(wait_sync(*h, 1));
  }
  json first = g.state();
  const size_t posts = g.count("POST", "/api/dashboards/db");
  EXPECT_EQ(posts, dashboard_files());
  {
    auto h = load(cfg);
    ASSERT_TRUE(h && h->start());
    ASSERT_TRUE(wait_sync(*h, 1));
    EXPECT_EQ(metric(*h, "moni_grafana_dashboards_uploaded_total"), 0);
  }
  json second = g.state();
  EXPECT_TRUE(second["violations"].empty()) << second["violations"].dump(1);
  EXPECT_EQ(second["datasources"], first["datasources"]);
  EXPECT_EQ(second["folders"], first["folders"]);
  EXPECT_EQ(second["dashboards"], first["dashboards"]);
  EXPECT_EQ(g.count("POST", "/api/dashboards/db"), posts);
  EXPECT_EQ(g.count("POST", "/api/datasources"), 1u);
  EXPECT_EQ(g.count("PUT", "/api/datasources/"), 0u);
  EXPECT_EQ(g.count("POST", "/api/folders"), 1u);

  // moni moved: the data source is updated in place (PUT by id, same uid);
  // one dashboard changed: only it is uploaded again.
  TempDir dash;
  for (const auto& e : fs::directory_iterator(kDashboards))
    fs::copy(e.path(), dash.path() + "/" + e.path().filename().string());
  {
    json d = json::parse(std::ifstream(dash.path() + "/containers.json"));
    d["title"] = "Containers (changed)";
    std::ofstream(dash.path() + "/containers.json") << d.dump(2);
  }
  {
    auto h = load(config(port, token, "datasource_url = \"http://10.0.0.6:9095\"\n", dash.path()));
    ASSERT_TRUE(h && h->start());
    ASSERT_TRUE(wait_sync(*h, 1));
    EXPECT_EQ(metric(*h, "moni_grafana_dashboards_uploaded_total"), 1);
  }
  json third = g.state();
  EXPECT_TRUE(third["violations"].empty()) << third["violations"].dump(1);
  ASSERT_EQ(third["datasources"].size(), 1u);
  EXPECT_EQ(third["datasources"][0]["url"], "http://10.0.0.6:9095");
  EXPECT_EQ(third["datasources"][0]["id"], first["datasources"][0]["id"]);
  EXPECT_EQ(third["datasources"][0]["uid"], "moni");
  EXPECT_EQ(g.count("PUT", "/api/datasources/" + first["datasources"][0]["id"].dump()), 1u);
  EXPECT_EQ(third["dashboards"]["moni-containers"]["dashboard"]["version"], 2);
  EXPECT_EQ(third["dashboards"]["moni-containers"]["dashboard"]["title"], "Containers (changed)");
  EXPECT_EQ(third["dashboards"]["moni-health"]["dashboard"]["version"], 1);
}

// A data source of that name made by hand keeps its uid and other settings;
// the dashboards are pointed at it.
TEST(GrafanaOutput, ExistingDataSourceKeepsItsUidAndDashboardsFollowIt) {
  TempDir dir;
  const int port = free_port();
  FakeGrafana g(port);
  ASSERT_TRUE(g.ok());
  json pre = {{"name", "moni"},
              {"uid", "hand-made"},
              {"type", "prometheus"},
              {"access", "proxy"},
              {"url", "http://old:9095"},
              {"isDefault", true},
              {"jsonData", {{"httpMethod", "GET"}, {"customQueryParameters", "a=b"}}}};
  // Test setup only: the fake's /_datasource stores it as if made in the UI.
  std::string body = pre.dump();
  std::string cmd =
      "/usr/bin/python3 -c \"import urllib.request,sys;urllib.request.urlopen("
      "urllib.request.Request('http://127.0.0.1:" +
      std::to_string(port) + "/_datasource', data=sys.stdin.buffer.read()))\"";
  FILE* p = popen(cmd.c_str(), "w");
  ASSERT_NE(p, nullptr);
  fwrite(body.data(), 1, body.size(), p);
  ASSERT_EQ(pclose(p), 0);

  auto h = load(config(port, write_token(dir, kToken), "datasource_url = \"http://new:9095\"\n"));
  ASSERT_TRUE(h && h->start());
  ASSERT_TRUE(wait_sync(*h, 1));
  json s = g.state();
  EXPECT_TRUE(s["violations"].empty()) << s["violations"].dump(1);
  ASSERT_EQ(s["datasources"].size(), 1u);
  const json& ds = s["datasources"][0];
  EXPECT_EQ(ds["uid"], "hand-made");
  EXPECT_EQ(ds["url"], "http://new:9095");
  EXPECT_EQ(ds["isDefault"], true);
  EXPECT_EQ(ds["jsonData"]["httpMethod"], "POST");
  EXPECT_EQ(ds["jsonData"]["customQueryParameters"], "a=b");
  const json& d = s["dashboards"]["moni-containers"]["dashboard"];
  EXPECT_EQ(d["panels"][0]["datasource"]["uid"], "hand-made");
  EXPECT_EQ(d["panels"][0]["targets"][0]["datasource"]["uid"], "hand-made");
  EXPECT_EQ(d["templating"]["list"][0]["datasource"]["uid"], "hand-made");
}

// A wrong token: Grafana answers 401; the plugin reports the failure in its
// metrics and log and keeps retrying. The token comes from token_env too.
TEST(GrafanaOutput, RejectedTokenIsReportedAndRetried) {
  const int port = free_port();
  FakeGrafana g(port);
  ASSERT_TRUE(g.ok());
  setenv("MONI_GRAFANA_TEST_TOKEN", "wrong", 1);
  auto h = load("url = \"http://127.0.0.1:" + std::to_string(port) +
                "\"\ntoken_env = \"MONI_GRAFANA_TEST_TOKEN\"\nretry_interval = \"1s\"\n"
                "datasource_url = \"http://127.0.0.1:9095\"\ndashboards = \"" +
                kDashboards + "\"\n");
  ASSERT_TRUE(h && h->start());
  ASSERT_TRUE(wait_sync(*h, 0));
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (metric(*h, "moni_grafana_errors_total") < 2 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_GE(metric(*h, "moni_grafana_errors_total"), 2) << "no retry";
  bool logged = false;
  for (const auto& l : h->logs())
    logged |= l.find("HTTP 401 (check the token)") != std::string::npos;
  EXPECT_TRUE(logged);
  json s = g.state();
  EXPECT_TRUE(s["datasources"].empty());
  EXPECT_TRUE(s["violations"].empty()) << s["violations"].dump(1);
  for (const auto& r : s["requests"]) EXPECT_EQ(r["auth"], "Bearer wrong");
  h->stop();
  unsetenv("MONI_GRAFANA_TEST_TOKEN");
}

}  // namespace

namespace {

// Answers of the wrong shape from Grafana (or a proxy in front of it): each
// sync attempt fails with an error naming the request; the plugin's thread
// did terminate the process on the JSON type errors they raised.
TEST(GrafanaOutput, AnswersOfTheWrongShapeAreErrorsNotCrashes) {
  TempDir dir;
  TempDir dash;
  std::ofstream(dash.path() + "/d.json") << R"({"uid":"d","title":"D","panels":[]})";
  struct Case {
    std::string get, write, want;
  };
  for (const Case& c : std::vector<Case>{
           // data source found, with an id and uid of the wrong types
           {R"({"id":"one","uid":7})", "{}", "/api/datasources/name/moni"},
           // data source created, its uid a number; then dashboards
           {R"({"message":"not found"})", R"({"datasource":{"uid":5}})", "/api/datasources"},
           // everything fine but the dashboard POST answers HTML with 200
           {R"({"id":1,"uid":"moni","name":"moni","type":"prometheus","access":"proxy",
               "url":"http://x","jsonData":{"httpMethod":"POST"},"meta":7,"folderUid":3})",
            "<html>ok</html>", "folder"},
       }) {
    const int port = free_port();
    pid_t pid = spawn({"/usr/bin/python3",
                       std::string(MONI_SOURCE_DIR) + "/tests/plugins/grafana/hostile_grafana.py",
                       std::to_string(port), c.get, c.write},
                      "/dev/null");
    ASSERT_TRUE(wait_http_ok(port, "/_state", 20));
    auto h = load(config(port, write_token(dir, kToken), "", dash.path()));
    ASSERT_TRUE(h);
    ASSERT_TRUE(h->start());
    EXPECT_TRUE(wait_sync(*h, 0)) << c.get;
    h->stop();
    moni::promql::test_support::stop(pid);
  }
}

}  // namespace

namespace {

// A dashboard file that is not JSON is named with line and column.
TEST(GrafanaOutput, BrokenDashboardFileIsNamedWithLineAndColumn) {
  TempDir dir;
  TempDir dash;
  std::ofstream(dash.path() + "/broken.json") << "{\n  \"uid\": \"b\",\n  \"title\": ,\n}\n";
  const int port = free_port();
  FakeGrafana g(port);
  ASSERT_TRUE(g.ok());
  auto h = load(config(port, write_token(dir, kToken), "", dash.path()));
  ASSERT_TRUE(h);
  ASSERT_TRUE(h->start());
  ASSERT_TRUE(wait_sync(*h, 0));
  h->stop();
  bool found = false;
  for (const auto& l : h->logs())
    found = found || l.find(dash.path() + "/broken.json:3:12: not valid JSON") != std::string::npos;
  EXPECT_TRUE(found) << "no log line names broken.json:3:12";
}

}  // namespace
