// Benchmark of the lmdb_tsdb engine on a synthetic node_exporter-like
// series set (~1,000 series per target at a 15 s interval): ingest rate,
// bytes per sample on disk after a compacting copy, and the time to read
// one series over 24 hours. Optionally writes the label sets as JSON lines
// for `promtool tsdb bench write` (see run_bench.sh).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <moni/batch.hpp>
#include <string>
#include <thread>
#include <vector>

#include "scrape_replay.hpp"
#include "tsdb.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  double uni() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
};

enum class Kind { Constant, Counter, Gauge, Noise };

// One synthetic series: labels and how its value evolves per scrape.
struct Gen {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  Kind kind;
  double value, rate, spread;
  int decimals;      // value resolution: 10^-decimals
  double idle_prob;  // chance of no change in a scrape
  double step(Rng& r) {
    double scale = std::pow(10.0, decimals);
    switch (kind) {
      case Kind::Constant:
        break;
      case Kind::Counter:
        if (r.uni() >= idle_prob)
          value = std::round((value + rate * (1 + spread * (r.uni() - 0.5))) * scale) / scale;
        break;
      case Kind::Gauge:
        if (r.uni() >= idle_prob)
          value = std::max(0.0, std::round((value + rate * (r.uni() - 0.5)) * scale) / scale);
        break;
      case Kind::Noise:
        value = rate * r.uni();
        break;
    }
    return value;
  }
};

std::vector<Gen> node_exporter_like(const std::string& instance, Rng& r) {
  std::vector<Gen> g;
  auto add = [&](std::string name, std::vector<std::pair<std::string, std::string>> l, Kind k,
                 double v, double rate, double spread, int dec, double idle) {
    l.push_back({"instance", instance});
    l.push_back({"job", "node"});
    g.push_back({std::move(name), std::move(l), k, v, rate, spread, dec, idle});
  };
  const char* modes[] = {"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"};
  const double mode_rate[] = {14.2, 0.5, 0.2, 0.02, 0, 0.01, 0, 0.001};
  for (int c = 0; c < 8; ++c)
    for (int m = 0; m < 8; ++m)
      add("node_cpu_seconds_total", {{"cpu", std::to_string(c)}, {"mode", modes[m]}}, Kind::Counter,
          1e5 * r.uni(), mode_rate[m] * 1, 0.4, 2, mode_rate[m] == 0 ? 1 : 0.1);
  for (int i = 0; i < 40; ++i)
    add("node_memory_M" + std::to_string(i) + "_bytes", {}, i < 12 ? Kind::Constant : Kind::Gauge,
        4096.0 * std::floor(r.uni() * 4e6), 4096.0 * 200, 0, 0, 0.3);
  const char* devs[] = {"eth0", "eth1", "lo", "docker0", "veth1a", "veth2b", "veth3c", "wlan0"};
  const char* nm[] = {"receive_bytes", "transmit_bytes", "receive_packets", "transmit_packets",
                      "receive_errs",  "transmit_errs",  "receive_drop",    "transmit_drop"};
  for (auto d : devs)
    for (int m = 0; m < 8; ++m)
      add(std::string("node_network_") + nm[m] + "_total", {{"device", d}}, Kind::Counter,
          std::floor(r.uni() * 1e10),
          m < 2   ? 2e5
          : m < 4 ? 300
                  : 0.2,
          1.0, 0, m < 4 ? 0.05 : 0.9);
  const char* disks[] = {"sda", "sdb", "nvme0n1", "dm-0"};
  for (auto d : disks)
    for (int m = 0; m < 17; ++m)
      add("node_disk_m" + std::to_string(m), {{"device", d}}, m < 12 ? Kind::Counter : Kind::Gauge,
          std::floor(r.uni() * 1e7), m < 6 ? 40 : 0.4, 1.0, m % 3 == 2 ? 3 : 0, 0.2);
  for (int f = 0; f < 10; ++f)
    for (int m = 0; m < 7; ++m)
      add("node_filesystem_m" + std::to_string(m),
          {{"device", "/dev/sd" + std::to_string(f)},
           {"fstype", "ext4"},
           {"mountpoint", "/mnt/" + std::to_string(f)}},
          m == 1 || m == 2 ? Kind::Gauge : Kind::Constant, 4096.0 * std::floor(r.uni() * 1e8),
          4096.0 * 50, 0, 0, 0.5);
  for (int i = 0; i < 3; ++i)
    add("node_load" + std::to_string(i), {}, Kind::Gauge, 1.0, 0.2, 0, 2, 0);
  for (int i = 0; i < 150; ++i)
    add("node_vmstat_m" + std::to_string(i), {}, Kind::Counter, std::floor(r.uni() * 1e9),
        std::floor(r.uni() * 5000), 1.0, 0, r.uni());
  for (int i = 0; i < 100; ++i)
    add("node_netstat_m" + std::to_string(i), {}, Kind::Counter, std::floor(r.uni() * 1e7),
        std::floor(r.uni() * 100), 1.0, 0, r.uni());
  for (int c = 0; c < 8; ++c)
    for (int t = 0; t < 40; ++t)
      add("node_interrupts_total",
          {{"cpu", std::to_string(c)}, {"devices", "dev" + std::to_string(t)}}, Kind::Counter,
          std::floor(r.uni() * 1e8), std::floor(r.uni() * 200), 1.0, 0, 0.5);
  for (int c = 0; c < 8; ++c)
    for (int m = 0; m < 6; ++m)
      add("node_softnet_m" + std::to_string(m), {{"cpu", std::to_string(c)}}, Kind::Counter,
          std::floor(r.uni() * 1e6), 20, 1.0, 0, 0.3);
  for (int i = 0; i < 40; ++i)
    add("go_m" + std::to_string(i), {}, i < 20 ? Kind::Gauge : Kind::Counter,
        std::floor(r.uni() * 1e7), 1e4, 1.0, i % 4 == 0 ? 6 : 0, 0.2);
  for (int i = 0; i < 40; ++i) {
    add("node_scrape_collector_duration_seconds", {{"collector", "c" + std::to_string(i)}},
        Kind::Noise, 0, 0.01, 0, 0, 0);
    add("node_scrape_collector_success", {{"collector", "c" + std::to_string(i)}}, Kind::Constant,
        1, 0, 0, 0, 0);
  }
  return g;
}

double now_s() { return std::chrono::duration<double>(Clock::now().time_since_epoch()).count(); }

double cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);  // write() may use a helper thread
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

double thread_cpu_s() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec * 1e-9;
}

// MONI_PERF_CTL=FIFO: writes "enable"/"disable" to perf's control FIFO
// around the timed region (`perf record -D -1 --control fifo:FIFO`), so a
// profile holds only the ingest, not the data preparation or the reads.
void perf_ctl(const char* cmd) {
  const char* fifo = std::getenv("MONI_PERF_CTL");
  if (!fifo || !*fifo) return;
  if (FILE* f = std::fopen(fifo, "w")) {
    std::fputs(cmd, f);
    std::fclose(f);
  }
}

uint64_t dir_bytes(const fs::path& p) {
  uint64_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(p))
    if (e.is_regular_file() && e.path().filename() != "lock.mdb") n += e.file_size();
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  int targets = 2;
  double hours = 24;
  double full_hours = 1;
  std::string dir = "/tmp/bench_lmdb_tsdb";
  int scrapes_opt = 0;
  int writers = 1;
  std::string json, om, replay_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--targets")
      targets = std::atoi(argv[i + 1]);
    else if (a == "--hours")
      hours = std::atof(argv[i + 1]);
    else if (a == "--full-sync-hours")
      full_hours = std::atof(argv[i + 1]);
    else if (a == "--dir")
      dir = argv[i + 1];
    else if (a == "--series-json")
      json = argv[i + 1];
    else if (a == "--openmetrics")
      om = argv[i + 1];
    else if (a == "--replay")
      replay_path = argv[i + 1];
    else if (a == "--scrapes")
      scrapes_opt = std::atoi(argv[i + 1]);
    else if (a == "--writers")
      writers = std::max(1, std::atoi(argv[i + 1]));
  }
  Rng rng{0x1234567};
  // Per target: the series (Gen: synthetic, or labels only when replaying
  // a recording) and how to get a value.
  std::vector<std::vector<Gen>> tg;
  std::vector<ScrapeReplay> replays;
  if (!replay_path.empty()) {
    ScrapeReplay rp;
    std::string err;
    if (!rp.load(replay_path, err)) {
      std::fprintf(stderr, "%s\n", err.c_str());
      return 1;
    }
    std::printf("replaying %zu recorded scrapes of %zu series from %s\n", rp.scrapes(),
                rp.series().size(), replay_path.c_str());
    for (int t = 0; t < targets; ++t) {
      char inst[32];
      std::snprintf(inst, sizeof inst, "host-%02d", t);
      std::vector<Gen> g;
      for (const auto& s : rp.series()) {
        Gen x{s.name, s.labels, Kind::Constant, 0, 0, 0, 0, 0};
        x.labels.push_back({"instance", inst});
        x.labels.push_back({"job", "node"});
        g.push_back(std::move(x));
      }
      tg.push_back(std::move(g));
      replays.push_back(rp);
    }
  } else {
    for (int t = 0; t < targets; ++t) {
      char inst[32];
      std::snprintf(inst, sizeof inst, "host-%02d", t);
      tg.push_back(node_exporter_like(inst, rng));
    }
  }
  size_t series = 0;
  for (auto& t : tg) series += t.size();
  if (!json.empty()) {
    // promtool's reader splits on ',' and ':' and strips quotes and braces.
    std::ofstream f(json);
    for (auto& t : tg)
      for (auto& g : t) {
        f << "{\"__name__\":\"" << g.name << "\"";
        for (auto& [k, v] : g.labels) f << ",\"" << k << "\":\"" << v << "\"";
        f << "}\n";
      }
  }

  auto run = [&](const std::string& path, moni::tsdb::SyncMode sync, double hrs, bool report) {
    fs::remove_all(path);
    moni::tsdb::Options o;
    o.path = path;
    o.sync = sync;
    o.retention_ms = 0;
    auto db = moni::tsdb::Db::open(o);
    if (!db) {
      std::fprintf(stderr, "%s\n", db.error().message.c_str());
      std::exit(1);
    }
    int scrapes = report && scrapes_opt > 0 ? scrapes_opt : static_cast<int>(hrs * 240);
    hrs = scrapes / 240.0;
    const int64_t t0 = 1700000000000;
    // The host writes a scrape collector's batches one after another, one
    // per target, from the collector's worker thread (and serializes all
    // writes to one storage instance), so the batches go in one by one
    // from this thread. Values and timestamps are computed before the
    // clock starts, and each batch's label set is built once (an SDK Batch
    // per target, labels back to back in its arena as the host's batches
    // have them): the timed loop only fills in values and calls write().
    const size_t nser = tg[0].size();
    const size_t ntg = tg.size();
    std::vector<double> vals(static_cast<size_t>(scrapes) * ntg * nser);
    std::vector<uint8_t> present(vals.size(), 1);
    std::vector<int64_t> stamps(static_cast<size_t>(scrapes) * ntg);
    // Keep the generated samples for the OpenMetrics copy (same data for promtool).
    std::vector<std::vector<std::pair<int64_t, double>>> kept;
    if (report && !om.empty()) kept.resize(series);
    Rng jitter{99};
    for (int s = 0; s < scrapes; ++s)
      for (size_t ti = 0; ti < ntg; ++ti) {
        int64_t phase = static_cast<int64_t>(ti) * 97;
        // A few ms of scrape jitter, as real scrapes have (or as recorded).
        int64_t ts = t0 + s * 15000LL +
                     (replays.empty() ? static_cast<int64_t>(jitter.next() % 4)
                                      : replays[ti].jitter(s + phase));
        size_t row = static_cast<size_t>(s) * ntg + ti;
        stamps[row] = ts;
        for (size_t gi = 0; gi < tg[ti].size(); ++gi) {
          double& val = vals[row * nser + gi];
          if (replays.empty())
            val = tg[ti][gi].step(rng);
          else if (!replays[ti].value(gi, s + phase, val))
            present[row * nser + gi] = 0;
          if (!kept.empty() && present[row * nser + gi]) kept[ti * nser + gi].push_back({ts, val});
        }
      }
    std::vector<moni::Batch> protos(ntg);
    std::vector<std::vector<moni_sample>> proto_samples(ntg);
    std::vector<moni::LabelRef> lr;
    for (size_t ti = 0; ti < ntg; ++ti) {
      for (auto& g : tg[ti]) {
        lr.clear();
        for (auto& [k, v] : g.labels) lr.push_back({k, v});
        protos[ti].add(g.name, lr, 0.0, t0);
      }
      const moni_batch& v = protos[ti].view();
      proto_samples[ti].assign(v.samples, v.samples + v.sample_count);
    }
    // --writers K: the targets' batches come from K threads (target ti on
    // thread ti % K, each target's batches in order), as the host's scrape
    // workers deliver them to a storage plugin declaring concurrent writes
    // (ABI 1.2); K = 1 is the sequential delivery of ABI 1.1.
    const int nw = std::min<int>(writers, static_cast<int>(ntg));
    std::vector<uint64_t> w_samples(static_cast<size_t>(nw));
    std::vector<double> w_calls_s(static_cast<size_t>(nw)), w_calls_cpu(static_cast<size_t>(nw));
    // The writer threads' CPU is read once per thread around its loop (a
    // thread CPU clock read per write() is a syscall: ~2% of the run).
    auto writer = [&](int w) {
      double cpu0 = thread_cpu_s();
      std::vector<moni_sample> cur;
      cur.reserve(nser);
      for (int s = 0; s < scrapes; ++s)
        for (size_t ti = static_cast<size_t>(w); ti < ntg; ti += static_cast<size_t>(nw)) {
          size_t row = static_cast<size_t>(s) * ntg + ti;
          cur.clear();
          const double* rv = &vals[row * nser];
          const uint8_t* rp = &present[row * nser];
          for (size_t gi = 0; gi < nser; ++gi) {
            if (!rp[gi]) continue;
            moni_sample x = proto_samples[ti][gi];
            x.value = rv[gi];
            x.timestamp_ms = stamps[row];
            cur.push_back(x);
          }
          moni_batch mb{cur.data(), cur.size(), nullptr, 0};
          double c0 = now_s();
          auto r = (*db)->write(moni::BatchView(mb));
          w_calls_s[static_cast<size_t>(w)] += now_s() - c0;
          if (!r) {
            std::fprintf(stderr, "write: %s\n", r.error().message.c_str());
            std::exit(1);
          }
          w_samples[static_cast<size_t>(w)] += r->appended;
        }
      w_calls_cpu[static_cast<size_t>(w)] = thread_cpu_s() - cpu0;
    };
    uint64_t samples = 0;
    double calls_s = 0, calls_cpu = 0;  // inside write() only, writer threads' CPU
    if (report) perf_ctl("enable\n");
    double start = now_s(), start_cpu = cpu_s();
    if (nw == 1) {
      writer(0);
    } else {
      std::vector<std::thread> ths;
      for (int w = 0; w < nw; ++w) ths.emplace_back(writer, w);
      for (auto& t : ths) t.join();
    }
    for (int w = 0; w < nw; ++w) {
      samples += w_samples[static_cast<size_t>(w)];
      calls_s += w_calls_s[static_cast<size_t>(w)] / nw;
      calls_cpu += w_calls_cpu[static_cast<size_t>(w)];
    }
    // Cut chunks still being stored in the background count too.
    if (auto w = (*db)->wait_background(); !w) {
      std::fprintf(stderr, "write: %s\n", w.error().message.c_str());
      std::exit(1);
    }
    double write_s = now_s() - start, write_cpu = cpu_s() - start_cpu;
    if (report) perf_ctl("disable\n");
    if (!report) {
      std::printf(
          "ingest (sync=%s, one commit per scrape of %zu samples): %.0f samples/s "
          "(%.2f ms per commit)\n",
          sync == moni::tsdb::SyncMode::Full ? "full" : "nometasync", tg[0].size(),
          samples / write_s, write_s * 1000 / (scrapes * targets));
      return;
    }
    std::printf("series: %zu (%d targets), samples: %llu over %.1f h at 15 s, %d writer thread%s\n",
                series, targets, static_cast<unsigned long long>(samples), hrs, nw,
                nw == 1 ? "" : "s");
    std::printf(
        "ingest (sync=none, one commit per scrape of %zu samples): %.0f samples/s wall, "
        "%.0f samples per CPU-second\n",
        tg[0].size(), samples / write_s, samples / write_cpu);
    std::printf(
        "write() calls alone (writer threads' CPU incl. filling the batches; the background "
        "thread's work not counted): "
        "%.0f samples/s wall, %.0f samples per CPU-second\n",
        samples / calls_s, samples / calls_cpu);
    if (!kept.empty()) {
      // Families must be contiguous in OpenMetrics: series sorted by name.
      std::vector<size_t> order(series);
      std::vector<const Gen*> gens;
      for (auto& t : tg)
        for (auto& g : t) gens.push_back(&g);
      for (size_t i = 0; i < series; ++i) order[i] = i;
      std::stable_sort(order.begin(), order.end(),
                       [&](size_t a, size_t b) { return gens[a]->name < gens[b]->name; });
      FILE* f = std::fopen(om.c_str(), "w");
      std::string last;
      for (size_t i : order) {
        const Gen& g = *gens[i];
        if (g.name != last) {
          std::fprintf(f, "# TYPE %s gauge\n", g.name.c_str());
          last = g.name;
        }
        std::string ls;
        for (auto& [k, v] : g.labels) {
          std::string e;
          for (char c : v) {
            if (c == '"' || c == '\\') e.push_back('\\');
            if (c == '\n') {
              e += "\\n";
              continue;
            }
            e.push_back(c);
          }
          ls += (ls.empty() ? "" : ",") + k + "=\"" + e + "\"";
        }
        for (auto& [ts, v] : kept[i]) {
          char num[40];
          if (std::isnan(v))
            std::snprintf(num, sizeof num, "NaN");
          else if (std::isinf(v))
            std::snprintf(num, sizeof num, v > 0 ? "+Inf" : "-Inf");
          else
            std::snprintf(num, sizeof num, "%.17g", v);
          std::fprintf(f, "%s{%s} %s %lld.%03lld\n", g.name.c_str(), ls.c_str(), num,
                       static_cast<long long>(ts / 1000), static_cast<long long>(ts % 1000));
        }
      }
      std::fprintf(f, "# EOF\n");
      std::fclose(f);
    }
    uint64_t live = (*db)->file_bytes();
    fs::path cdir = fs::path(path + "-compact");
    fs::remove_all(cdir);
    double a = now_s();
    auto br = (*db)->backup_to(cdir.string());
    double copy_s = now_s() - a;
    if (!br) {
      std::fprintf(stderr, "%s\n", br.error().message.c_str());
      std::exit(1);
    }
    uint64_t compact = dir_bytes(cdir);
    std::printf(
        "bytes/sample: %.3f after compaction (packed backup copy, %.1f MB, copy "
        "%.2f s); live file %.3f\n",
        double(compact) / samples, compact / 1e6, copy_s, double(live) / samples);
    // 24 h of one series, through the public select path.
    std::vector<moni::Matcher> ms{{moni::MatchType::Equal, "__name__", "node_cpu_seconds_total"},
                                  {moni::MatchType::Equal, "cpu", "1"},
                                  {moni::MatchType::Equal, "mode", "user"},
                                  {moni::MatchType::Equal, "instance", "host-00"}};
    int64_t maxt = t0 + (scrapes - 1) * 15000LL + 10;
    int64_t mint = maxt - 86400000;
    std::vector<double> lat;
    size_t got = 0;
    for (int i = 0; i < 300; ++i) {
      double s0 = now_s();
      auto c = (*db)->select(ms, mint, maxt, true);
      moni_series_view v{};
      size_t n = 0;
      for (;;) {
        auto r = (*c)->next(v);
        if (!r || !*r) break;
        n += v.sample_count;
      }
      lat.push_back(now_s() - s0);
      got = n;
    }
    std::sort(lat.begin(), lat.end());
    std::printf("read one series over 24 h (%zu samples): median %.1f us, p99 %.1f us\n", got,
                lat[lat.size() / 2] * 1e6, lat[lat.size() * 99 / 100] * 1e6);
    if (!std::getenv("BENCH_KEEP_COPY")) fs::remove_all(cdir);
  };
  run(dir, moni::tsdb::SyncMode::None, hours, true);
  if (full_hours > 0) {
    run(dir + "-full", moni::tsdb::SyncMode::Full, full_hours, false);
    run(dir + "-full", moni::tsdb::SyncMode::NoMetaSync, full_hours, false);
  }
  fs::remove_all(dir);
  fs::remove_all(dir + "-full");
  return 0;
}
