// remote_write against a real Prometheus 2.42 receiver
// (--web.enable-remote-write-receiver): a value-for-value round trip, and an
// outage during which the receiver is down and moni restarts once.
#include <signal.h>

#include <map>
#include <nlohmann/json.hpp>

#include "rw_test_util.hpp"

using namespace rwtest;
using moni::testing::PluginHarness;

namespace {

// series label value of `key` -> (timestamp ms -> value), from x[range] at `at`.
std::map<std::string, std::map<int64_t, double>> read_back(const Prometheus& p,
                                                           const std::string& selector,
                                                           const std::string& key, int64_t at,
                                                           int* duplicates) {
  std::map<std::string, std::map<int64_t, double>> out;
  auto j = nlohmann::json::parse(p.query(selector, at), nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") {
    ADD_FAILURE() << "query " << selector << " failed: " << j.dump();
    return out;
  }
  for (const auto& r : j["data"]["result"]) {
    auto& series = out[r["metric"].value(key, "")];
    for (const auto& v : r["values"]) {
      int64_t ts = std::llround(v[0].get<double>() * 1000);
      if (!series.emplace(ts, std::stod(v[1].get<std::string>())).second && duplicates)
        ++*duplicates;
    }
  }
  return out;
}

}  // namespace

TEST(RemoteWritePrometheus, RoundTripValueForValue) {
  TempDir dir;
  Prometheus prom(dir.path + "/tsdb", free_port());
  ASSERT_TRUE(prom.start()) << "prometheus did not become ready";
  auto h = load("external_labels = { moni_test = \"roundtrip\" }\n" +
                    endpoint(prom.write_url(), "max_shards = 3\nmax_samples_per_send = 100\n"),
                dir.path);
  ASSERT_TRUE(h);
  const int series = 12, points = 40;
  int64_t t0 = (now_ms() - 10 * 60 * 1000) / 1000 * 1000;
  std::map<std::string, std::map<int64_t, double>> want;
  for (int k = 0; k < points; ++k) {
    moni::Batch b;
    for (int s = 0; s < series; ++s) {
      double v = s * 1000 + k + 0.25 * (k % 4) - (s % 2 ? 1e6 : 0);
      int64_t ts = t0 + k * 5000;
      b.add("rw_roundtrip", {{"series", std::to_string(s)}}, v, ts);
      want[std::to_string(s)][ts] = v;
    }
    ASSERT_TRUE(h->write(b).ok());
  }
  ASSERT_TRUE(h->flush().ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_pending") == 0; }, 20000));
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_sent_total"), series * points);
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_failed_total"), 0);

  int dups = 0;
  auto got =
      read_back(prom, "rw_roundtrip{moni_test=\"roundtrip\"}[1h]", "series", now_ms(), &dups);
  EXPECT_EQ(dups, 0);
  EXPECT_EQ(got, want);
}

TEST(RemoteWritePrometheus, OutageAndMoniRestartLoseNothing) {
  TempDir dir;
  uint16_t port = free_port();
  Prometheus prom(dir.path + "/tsdb", port);
  ASSERT_TRUE(prom.start());
  std::string cfg = endpoint(prom.write_url(), "max_shards = 2\n");
  auto h = load(cfg, dir.path);
  ASSERT_TRUE(h);

  const int series = 10;
  std::map<std::string, std::map<int64_t, double>> want;
  int64_t last_ts = 0;
  auto write_some = [&](int cycles) {
    for (int c = 0; c < cycles; ++c) {
      int64_t ts = std::max(now_ms(), last_ts + 1);
      last_ts = ts;
      moni::Batch b;
      for (int s = 0; s < series; ++s) {
        double v = static_cast<double>(ts % 100000) + s / 10.0;
        b.add("rw_outage", {{"series", std::to_string(s)}}, v, ts);
        want[std::to_string(s)][ts] = v;
      }
      ASSERT_TRUE(h->write(b).ok());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };

  write_some(15);  // receiver up
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_sent_total") > 0; }, 10000));
  prom.stop();  // receiver down (SIGTERM by PID)
  write_some(15);
  EXPECT_GT(metric(*h, "moni_remote_write_samples_pending"), 0);
  h.reset();  // moni restarts during the outage, same data dir
  h = load(cfg, dir.path);
  ASSERT_TRUE(h);
  EXPECT_GT(metric(*h, "moni_remote_write_samples_pending"), 0)
      << "the queue did not survive the restart";
  write_some(15);
  ASSERT_TRUE(prom.start()) << "prometheus did not come back";  // same TSDB dir, same port
  write_some(5);
  ASSERT_TRUE(h->flush().ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_pending") == 0; }, 30000));
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_failed_total"), 0);
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_dropped_total"), 0);

  int dups = 0;
  auto got = read_back(prom, "rw_outage[1h]", "series", now_ms() + 1000, &dups);
  EXPECT_EQ(dups, 0);
  ASSERT_EQ(got.size(), want.size());
  for (auto& [s, pts] : want) {
    EXPECT_EQ(got[s].size(), pts.size()) << "series " << s;
    EXPECT_EQ(got[s], pts) << "series " << s;
  }
}
