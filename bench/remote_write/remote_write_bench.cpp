// remote_write benchmark: samples/s sent to a local Prometheus receiver and
// CPU seconds per 1M samples, next to Prometheus 2.42's own remote write.
//
// moni: 1M samples (10k series x 100 scrapes) are written through the real
// plugin .so into its durable queue while its shards send them to a
// Prometheus receiver; the figure is wall time until the queue is empty,
// and this process's CPU (encode, LMDB, snappy, HTTP) over that time.
//
// Peer: Prometheus A scrapes a static exposition of the same 10k-series
// shape (python3 http.server) every second and remote-writes to Prometheus
// B. B is down for the first `outage` seconds, so A builds a backlog in its
// WAL; when B starts, A drains it as fast as it can. The figure is samples
// drained per second, and A's CPU during the drain minus its scrape-only CPU
// rate measured during the outage.
//
// Usage: remote_write_bench [series=10000] [scrapes=100] [outage_s=40]
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "plugin_harness.hpp"
#include "rw_test_support.hpp"

using namespace rwtest;

namespace {

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double steady_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Value of an unlabeled (or first matching) metric in an exposition text.
double scrape_value(uint16_t port, const std::string& name) {
  auto [st, body] = http_get(port, "/metrics");
  if (st != 200) return NAN;
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0) continue;
    char next = line.size() > name.size() ? line[name.size()] : ' ';
    if (next != ' ' && next != '{') continue;
    return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return NAN;
}

double metric(moni::testing::PluginHarness& h, const std::string& name) {
  auto b = h.self_metrics();
  const auto* s = b.one(name, "endpoint", "bench");
  return s ? s->value : NAN;
}

}  // namespace

int main(int argc, char** argv) {
  int series = argc > 1 ? std::atoi(argv[1]) : 10000;
  int scrapes = argc > 2 ? std::atoi(argv[2]) : 100;
  int outage = argc > 3 ? std::atoi(argv[3]) : 40;
  std::string dir =
      (std::filesystem::temp_directory_path() / ("moni-rw-bench-" + std::to_string(getpid())))
          .string();
  std::filesystem::create_directories(dir);

  // ------------------------------------------------------------ moni
  double moni_rate = 0, moni_cpu_per_m = 0;
  uint64_t total = static_cast<uint64_t>(series) * scrapes;
  {
    Prometheus rx(dir + "/rx", free_port());
    if (!rx.start()) {
      fprintf(stderr, "receiver did not start\n");
      return 1;
    }
    std::string toml =
        "[[endpoints]]\nname = \"bench\"\nurl = \"" + rx.write_url() +
        "\"\nmax_shards = 8\nmax_samples_per_send = 2000\nbatch_send_deadline = \"1s\"\n";
    auto h = moni::testing::PluginHarness::load(moni::testing::plugin_path("remote_write"), toml,
                                                "bench", dir + "/moni");
    if (!h || !(*h)->start()) {
      fprintf(stderr, "plugin did not start: %s\n", h ? "start failed" : h.error().message.c_str());
      return 1;
    }
    auto& p = **h;
    // Batches are built before timing: only the plugin's work is measured.
    std::vector<moni::Batch> batches(static_cast<size_t>(scrapes));
    int64_t t0 = now_ms() - static_cast<int64_t>(scrapes) * 1000;
    for (int k = 0; k < scrapes; ++k)
      for (int s = 0; s < series; ++s)
        batches[static_cast<size_t>(k)].add(
            "bench_metric",
            {{"instance", "host-" + std::to_string(s % 100)}, {"series", std::to_string(s)}},
            s + k * 0.5, t0 + k * 1000);
    double c0 = cpu_seconds(), w0 = steady_s();
    double write_wall = 0;
    for (auto& b : batches) {
      double ws = steady_s();
      if (!p.write(b)) {
        fprintf(stderr, "write failed\n");
        return 1;
      }
      write_wall += steady_s() - ws;
    }
    (void)p.flush();
    while (metric(p, "moni_remote_write_samples_pending") > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double w1 = steady_s(), c1 = cpu_seconds();
    double sent = metric(p, "moni_remote_write_samples_sent_total");
    moni_rate = sent / (w1 - w0);
    moni_cpu_per_m = (c1 - c0) / (sent / 1e6);
    printf(
        "moni remote_write: %.0f samples (%d series x %d scrapes) sent in %.2f s: %.0f samples/s, "
        "%.2f CPU-s per 1M samples (write() total %.2f s, %.1f ms per %d-sample batch)\n",
        sent, series, scrapes, w1 - w0, moni_rate, moni_cpu_per_m, write_wall,
        write_wall * 1000 / scrapes, series);
    fflush(stdout);
  }

  // ------------------------------------------------------------ peer
  {
    std::string www = dir + "/www";
    std::filesystem::create_directories(www);
    {
      std::ofstream f(www + "/metrics");
      f << "# TYPE bench_metric gauge\n";
      for (int s = 0; s < series; ++s)
        f << "bench_metric{instance=\"host-" << s % 100 << "\",series=\"" << s << "\"} " << s
          << "\n";
    }
    uint16_t web = free_port();
    pid_t py = fork();
    if (py == 0) {
      FILE* o = freopen("/dev/null", "w", stderr);
      FILE* e = freopen("/dev/null", "w", stdout);
      (void)o;
      (void)e;
      std::string port = std::to_string(web);
      execlp("python3", "python3", "-m", "http.server", port.c_str(), "--bind", "127.0.0.1",
             "--directory", www.c_str(), (char*)nullptr);
      _exit(127);
    }
    uint16_t bport = free_port();
    Prometheus a(dir + "/a", free_port());
    a.set_config(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n"
        "  - job_name: bench\n    static_configs:\n      - targets: ['127.0.0.1:" +
        std::to_string(web) + "']\nremote_write:\n  - url: http://127.0.0.1:" +
        std::to_string(bport) + "/api/v1/write\n");
    Prometheus b(dir + "/b", bport);
    if (!a.start()) {
      fprintf(stderr, "prometheus A did not start\n");
      return 1;
    }
    // Outage: A scrapes and queues in its WAL; measure its scrape-only CPU.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    double cpu_a0 = scrape_value(a.port(), "process_cpu_seconds_total"), t_a0 = steady_s();
    std::this_thread::sleep_for(std::chrono::seconds(outage - 3));
    double cpu_a1 = scrape_value(a.port(), "process_cpu_seconds_total"), t_a1 = steady_s();
    double scrape_rate = (cpu_a1 - cpu_a0) / (t_a1 - t_a0);
    double sent0 = scrape_value(a.port(), "prometheus_remote_storage_samples_total");
    if (std::isnan(sent0)) sent0 = 0;
    if (!b.start()) {
      fprintf(stderr, "prometheus B did not start\n");
      return 1;
    }
    // The drain starts with the first accepted sample (A's retry backoff
    // after the outage is not counted against it).
    double t_b = steady_s(), cpu_b = 0;
    for (;;) {
      double s = scrape_value(a.port(), "prometheus_remote_storage_samples_total");
      if (!std::isnan(s) && s > sent0) {
        sent0 = s;
        t_b = steady_s();
        cpu_b = scrape_value(a.port(), "process_cpu_seconds_total");
        break;
      }
      if (steady_s() - t_b > 60) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // Drained when A has sent everything it scraped up to the last second.
    double last_ts = 0;
    double t_end = t_b, sent1 = sent0, cpu_end = cpu_b;
    for (;;) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      double hi = scrape_value(a.port(), "prometheus_remote_storage_highest_timestamp_in_seconds");
      double q =
          scrape_value(a.port(), "prometheus_remote_storage_queue_highest_sent_timestamp_seconds");
      last_ts = q;
      if (!std::isnan(hi) && !std::isnan(q) && hi - q <= 2) {
        t_end = steady_s();
        sent1 = scrape_value(a.port(), "prometheus_remote_storage_samples_total");
        cpu_end = scrape_value(a.port(), "process_cpu_seconds_total");
        break;
      }
      if (steady_s() - t_b > 120) {
        fprintf(stderr, "prometheus A did not catch up (sent ts %.0f)\n", last_ts);
        break;
      }
    }
    double drained = sent1 - sent0, secs = t_end - t_b;
    double rw_cpu = (cpu_end - cpu_b) - scrape_rate * secs;
    printf(
        "prometheus 2.42 remote_write (peer, %d series scraped every 1s, backlog after a %d s "
        "receiver outage): %.0f samples drained in %.2f s: %.0f samples/s, %.2f CPU-s per 1M "
        "samples (process CPU during the drain %.2f s minus scrape-only rate %.3f CPU-s/s)\n",
        series, outage, drained, secs, drained / secs, rw_cpu / (drained / 1e6), cpu_end - cpu_b,
        scrape_rate);
    b.stop();
    a.stop();
    kill(py, SIGTERM);
    waitpid(py, nullptr, 0);
  }
  std::filesystem::remove_all(dir);
  return 0;
}
