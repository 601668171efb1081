// Collect on scrape (ABI 1.1 collect_now) through the real moni binary and
// the real prom_exposition plugin: every scrape sees a fresh collection,
// concurrent scrapes share one collection in flight, and a collector slower
// than collect_timeout fails the collection, not the scrape.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "subprocess.hpp"

using namespace moni::test;

namespace {

const std::string kMoni = MONI_BIN;

bool have_prom_exposition() {
  return access(MONI_PLUGIN_BUILD_DIR "/moni-prom_exposition.so", R_OK) == 0;
}

std::string config(const std::string& collector_opts, const std::string& output_opts) {
  return std::string("[host]\nlisten = \"127.0.0.1:0\"\nplugin_dirs = [\"") + HOST_TEST_PLUGIN_DIR +
         "\"]\n"
         "[collectors.c]\nplugin = \"test_collector\"\ninterval = \"1h\"\ncount = true\n" +
         collector_opts +
         "\n[collectors.self]\ninterval = \"1h\"\n"
         "[outputs.metrics]\nplugin = \"prom_exposition\"\ncollect_on_scrape = true\n" +
         output_opts + "\n[pipelines.p]\ncollectors = [\"c\", \"self\"]\nsinks = [\"metrics\"]\n";
}

const std::string kCount = "test_value{instance=\"c\"}";
const std::string kSelfRuns = "moni_collector_runs_total{instance_name=\"self\",plugin=\"self\"}";

}  // namespace

TEST(CollectNow, EveryScrapeSeesAFreshCollection) {
  if (!have_prom_exposition()) GTEST_SKIP() << "prom_exposition is not built";
  TempDir d;
  d.write("m.toml", config("", ""));
  Child moni({kMoni, "run", "--config", d.file("m.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  // The collectors' interval is 1h: after the start-up tick, only scrapes collect.
  double prev_count = -1, prev_self = -1;
  for (int i = 0; i < 4; ++i) {
    auto r = http_get(port, "/metrics");
    ASSERT_EQ(r.status, 200) << r.body;
    double count = metric(r.body, kCount), self = metric(r.body, kSelfRuns);
    ASSERT_GE(count, 1) << r.body;
    ASSERT_GE(self, 0) << r.body;
    if (i > 0) {
      EXPECT_EQ(count, prev_count + 1) << "scrape " << i << "\n" << r.body;
      EXPECT_EQ(self, prev_self + 1) << "scrape " << i << "\n" << r.body;
    }
    prev_count = count;
    prev_self = self;
  }
}

TEST(CollectNow, ConcurrentScrapesShareOneCollection) {
  if (!have_prom_exposition()) GTEST_SKIP() << "prom_exposition is not built";
  TempDir d;
  d.write("m.toml", config("sleep = \"800ms\"", ""));
  Child moni({kMoni, "run", "--config", d.file("m.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  double before = metric(http_get(port, "/metrics").body, kCount);
  ASSERT_GE(before, 1) << moni.err();
  std::vector<double> seen(4, -1);
  std::vector<std::thread> scrapers;
  for (size_t i = 0; i < seen.size(); ++i)
    scrapers.emplace_back([&, i] { seen[i] = metric(http_get(port, "/metrics").body, kCount); });
  for (auto& t : scrapers) t.join();
  double after = metric(http_get(port, "/metrics").body, kCount);
  for (double v : seen) EXPECT_GT(v, before) << "every concurrent scrape saw a fresh collection";
  // Its own collection for the last scrape, and one (two if a scraper was
  // very late) for the four concurrent ones; not four.
  EXPECT_GE(after - before, 2);
  EXPECT_LE(after - before, 3) << "concurrent scrapes stacked collections";
}

TEST(CollectNow, ASlowCollectorFailsTheCollectionNotTheScrape) {
  if (!have_prom_exposition()) GTEST_SKIP() << "prom_exposition is not built";
  TempDir d;
  d.write("m.toml", config("sleep = \"3s\"", "collect_timeout = \"200ms\""));
  Child moni({kMoni, "run", "--config", d.file("m.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  auto t0 = std::chrono::steady_clock::now();
  auto r = http_get(port, "/metrics");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(secs, 2.5) << "the scrape waited for the slow collector";
  EXPECT_TRUE(
      moni.wait_for_log("collect on scrape: collect_now: c (test_collector): no result", 5000))
      << moni.err();
}
