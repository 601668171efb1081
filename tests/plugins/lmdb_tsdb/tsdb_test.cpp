// lmdb_tsdb through the plugin harness (write, reader) and the engine
// directly (retention, backups, restore, import, disk full).
#include "tsdb.hpp"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <thread>

#include "backup.hpp"
#include "importer.hpp"
#include "lmdb_keys.hpp"
#include "plugin_harness.hpp"
#include "tsdb_test_util.hpp"

namespace fs = std::filesystem;
using moni::Batch;
using moni::BatchView;
using moni::Matcher;
using moni::MatchType;
using moni::StorageClient;
using moni::testing::PluginHarness;
using tsdb_test::Dump;
using tsdb_test::dump;
using tsdb_test::kT0;
using tsdb_test::same;
using tsdb_test::TempDir;

namespace {

std::unique_ptr<PluginHarness> load(const std::string& data_dir, const std::string& toml = "") {
  auto h = PluginHarness::load(moni::testing::plugin_path("lmdb_tsdb"), toml, "tsdb", data_dir);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  if (!h.ok()) return nullptr;
  auto s = (*h)->start();
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return std::move(h.value());
}

struct Series {
  std::vector<moni::Label> labels;
  std::vector<int64_t> ts;
  std::vector<double> vs;
};

std::vector<Series> select(StorageClient& c, std::vector<Matcher> ms, int64_t mint = INT64_MIN,
                           int64_t maxt = INT64_MAX, bool samples = true) {
  std::vector<Series> out;
  auto r = c.select(ms, mint, maxt, samples, [&](const moni::SeriesView& v) {
    Series s;
    for (auto& l : v.labels)
      s.labels.push_back({std::string(moni::sv(l.name)), std::string(moni::sv(l.value))});
    s.ts.assign(v.timestamps_ms.begin(), v.timestamps_ms.end());
    s.vs.assign(v.values.begin(), v.values.end());
    out.push_back(std::move(s));
    return true;
  });
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return out;
}

std::string label(const Series& s, const std::string& n) {
  for (auto& l : s.labels)
    if (l.name == n) return l.value;
  return {};
}

double metric(PluginHarness& h, std::string_view name, std::string_view k = {},
              std::string_view v = {}) {
  auto b = h.self_metrics();
  auto* s = b.one(name, k, v);
  return s ? s->value : -1;
}

moni::tsdb::Options opts(const std::string& path) {
  moni::tsdb::Options o;
  o.path = path;
  o.sync = moni::tsdb::SyncMode::None;
  return o;
}

}  // namespace

TEST(LmdbTsdb, WriteAndReadBackBitExact) {
  TempDir dir;
  auto h = load(dir.str(), "sync = \"nometasync\"");
  ASSERT_TRUE(h);
  const double weird[] = {moni::stale_nan(),
                          std::numeric_limits<double>::quiet_NaN(),
                          std::numeric_limits<double>::infinity(),
                          -std::numeric_limits<double>::infinity(),
                          -0.0,
                          0.1,
                          1e308};
  for (int i = 0; i < 700; ++i) {
    Batch b;
    b.describe("node_load1", moni::MetricType::Gauge, "1m load average.");
    b.add("node_load1", {{"instance", "a:9100"}}, weird[i % 7], kT0 + i * 15000);
    b.add("node_cpu_seconds_total", {{"cpu", "0"}, {"mode", "idle"}}, 1000 + i * 0.01,
          kT0 + i * 15000);
    ASSERT_TRUE(h->write(b).ok());
  }
  StorageClient c(h->reader());
  auto got = select(c, {{MatchType::Equal, "__name__", "node_load1"}});
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(label(got[0], "instance"), "a:9100");
  ASSERT_EQ(got[0].ts.size(), 700u);
  for (int i = 0; i < 700; ++i) {
    EXPECT_EQ(got[0].ts[i], kT0 + i * 15000);
    EXPECT_EQ(std::bit_cast<uint64_t>(got[0].vs[i]), std::bit_cast<uint64_t>(weird[i % 7])) << i;
  }
  // A range spanning closed chunks and the head.
  auto part = select(c, {{MatchType::Equal, "cpu", "0"}}, kT0 + 100 * 15000, kT0 + 650 * 15000);
  ASSERT_EQ(part.size(), 1u);
  ASSERT_EQ(part[0].ts.size(), 551u);
  EXPECT_EQ(part[0].ts.front(), kT0 + 100 * 15000);
  EXPECT_DOUBLE_EQ(part[0].vs.back(), 1000 + 650 * 0.01);
  // Outside every sample: no series.
  EXPECT_TRUE(select(c, {{MatchType::Equal, "cpu", "0"}}, kT0 + 700 * 15000, INT64_MAX).empty());
  EXPECT_EQ(select(c, {{MatchType::Equal, "cpu", "0"}}, kT0 + 5, kT0 + 15005, false).size(), 1u);

  auto names = c.label_names({}, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(names.ok());
  EXPECT_EQ(*names, (std::vector<std::string>{"__name__", "cpu", "instance", "mode"}));
  auto values = c.label_values("__name__", {}, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(values.ok());
  EXPECT_EQ(*values, (std::vector<std::string>{"node_cpu_seconds_total", "node_load1"}));
  std::vector<Matcher> m{{MatchType::Equal, "mode", "idle"}};
  auto names2 = c.label_names(m, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(names2.ok());
  EXPECT_EQ(*names2, (std::vector<std::string>{"__name__", "cpu", "mode"}));
  auto md = c.metadata("node_load1");
  ASSERT_TRUE(md.ok());
  ASSERT_EQ(md->size(), 1u);
  EXPECT_EQ((*md)[0].type, moni::MetricType::Gauge);
  EXPECT_EQ((*md)[0].help, "1m load average.");
  EXPECT_EQ(metric(*h, "moni_tsdb_samples_appended_total"), 1400);
  EXPECT_EQ(metric(*h, "moni_tsdb_series"), 2);

  // Everything survives a restart.
  h->stop();
  h.reset();
  h = load(dir.str(), "sync = \"none\"");
  ASSERT_TRUE(h);
  StorageClient c2(h->reader());
  auto again = select(c2, {{MatchType::Equal, "__name__", "node_load1"}});
  ASSERT_EQ(again.size(), 1u);
  ASSERT_EQ(again[0].ts.size(), 700u);
  EXPECT_TRUE(moni::is_stale_nan(again[0].vs[0]));
  auto md2 = c2.metadata("");
  ASSERT_TRUE(md2.ok());
  EXPECT_EQ(md2->size(), 1u);
  // Appending continues where it stopped.
  Batch b;
  b.add("node_load1", {{"instance", "a:9100"}}, 5, kT0 + 700 * 15000);
  ASSERT_TRUE(h->write(b).ok());
  EXPECT_EQ(select(c2, {{MatchType::Equal, "__name__", "node_load1"}})[0].ts.size(), 701u);
}

TEST(LmdbTsdb, LabelMatchersFollowPrometheus) {
  TempDir dir;
  auto h = load(dir.str());
  ASSERT_TRUE(h);
  Batch b;
  b.add("up", {{"job", "node"}, {"instance", "a"}}, 1, kT0);
  b.add("up", {{"job", "node"}, {"instance", "b"}, {"env", "prod"}}, 1, kT0);
  b.add("up", {{"job", "nodes"}, {"instance", "c"}, {"env", "dev"}}, 1, kT0);
  b.add("up", {{"job", "cadvisor"}, {"instance", "line1\nline2"}}, 1, kT0);
  ASSERT_TRUE(h->write(b).ok());
  StorageClient c(h->reader());
  auto insts = [&](std::vector<Matcher> ms) {
    std::vector<std::string> out;
    for (auto& s : select(c, ms)) out.push_back(label(s, "instance"));
    std::sort(out.begin(), out.end());
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(insts({{MatchType::Equal, "job", "node"}}), (V{"a", "b"}));
  EXPECT_EQ(insts({{MatchType::NotEqual, "job", "node"}}), (V{"c", "line1\nline2"}));
  // Regexes are fully anchored: "node" does not match "nodes".
  EXPECT_EQ(insts({{MatchType::Regex, "job", "node"}}), (V{"a", "b"}));
  EXPECT_EQ(insts({{MatchType::Regex, "job", "node.*"}}), (V{"a", "b", "c"}));
  EXPECT_EQ(insts({{MatchType::Regex, "job", "nod|cadvisor"}}), (V{"line1\nline2"}));
  EXPECT_EQ(insts({{MatchType::NotRegex, "job", "node.*"}}), (V{"line1\nline2"}));
  // "." matches a newline, as in Prometheus.
  EXPECT_EQ(insts({{MatchType::Regex, "instance", "line1.line2"}}), (V{"line1\nline2"}));
  // An absent label is the empty string.
  EXPECT_EQ(insts({{MatchType::Equal, "env", ""}}), (V{"a", "line1\nline2"}));
  EXPECT_EQ(insts({{MatchType::NotEqual, "env", ""}}), (V{"b", "c"}));
  EXPECT_EQ(insts({{MatchType::NotEqual, "env", "prod"}}), (V{"a", "c", "line1\nline2"}));
  EXPECT_EQ(insts({{MatchType::Regex, "env", "prod|"}}), (V{"a", "b", "line1\nline2"}));
  EXPECT_EQ(insts({{MatchType::NotRegex, "env", "prod"}}), (V{"a", "c", "line1\nline2"}));
  EXPECT_EQ(insts({{MatchType::Regex, "env", ".+"}}), (V{"b", "c"}));
  EXPECT_EQ(insts({{MatchType::NotRegex, "env", ".*"}}), V{});
  EXPECT_EQ(insts({{MatchType::Equal, "nolabel", ""}}).size(), 4u);
  // Intersections.
  EXPECT_EQ(insts({{MatchType::Regex, "job", "node.*"}, {MatchType::NotEqual, "env", "dev"}}),
            (V{"a", "b"}));
  EXPECT_EQ(insts({{MatchType::Equal, "job", "node"}, {MatchType::Equal, "env", "dev"}}), V{});
  // A label value or metric nobody has selects nothing (not an error).
  EXPECT_EQ(insts({{MatchType::Equal, "job", "missing"}}), V{});
  EXPECT_EQ(insts({{MatchType::Equal, "__name__", "nonexistent_metric"}}), V{});
  EXPECT_EQ(insts({{MatchType::Equal, "job", "missing"}, {MatchType::Equal, "env", "prod"}}), V{});
  auto vals = c.label_values("instance", std::vector<Matcher>{{MatchType::Equal, "job", "node"}},
                             INT64_MIN, INT64_MAX);
  ASSERT_TRUE(vals.ok());
  EXPECT_EQ(*vals, (V{"a", "b"}));
  // A bad regex is an error, not a crash.
  auto bad = c.select(std::vector<Matcher>{{MatchType::Regex, "job", "("}}, INT64_MIN, INT64_MAX,
                      true, [](const moni::SeriesView&) { return true; });
  EXPECT_FALSE(bad.ok());
}

TEST(LmdbTsdb, LongLabelValuesAreIndexed) {
  TempDir dir;
  auto h = load(dir.str());
  ASSERT_TRUE(h);
  std::string long1(2000, 'x'), long2(2000, 'x');
  long2.back() = 'y';
  Batch b;
  b.add("m", {{"v", long1}}, 1, kT0);
  b.add("m", {{"v", long2}}, 2, kT0);
  ASSERT_TRUE(h->write(b).ok());
  StorageClient c(h->reader());
  auto s = select(c, {{MatchType::Equal, "v", long2}});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].vs[0], 2);
  auto vals = c.label_values("v", {}, INT64_MIN, INT64_MAX);
  ASSERT_TRUE(vals.ok());
  EXPECT_EQ(*vals, (std::vector<std::string>{long1, long2}));
}

TEST(LmdbTsdb, OutOfOrderAndDuplicatesAreRejectedPerSample) {
  TempDir dir;
  auto h = load(dir.str());
  ASSERT_TRUE(h);
  Batch b;
  b.add("m", {}, 1, kT0 + 1000);
  b.add("m", {}, 2, kT0 + 2000);
  ASSERT_TRUE(h->write(b).ok());
  Batch c2;
  c2.add("m", {}, 9, kT0 + 500);   // out of order
  c2.add("m", {}, 2, kT0 + 2000);  // identical duplicate: ignored
  c2.add("m", {}, 3, kT0 + 2000);  // duplicate timestamp, other value: rejected
  c2.add("m", {}, moni::stale_nan(), kT0 + 3000);
  c2.add("m", {}, std::numeric_limits<double>::quiet_NaN(), kT0 + 3000);  // differs from stale
  c2.add("other", {}, 1, kT0);
  ASSERT_TRUE(h->write(c2).ok());
  StorageClient c(h->reader());
  auto s = select(c, {{MatchType::Equal, "__name__", "m"}});
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].ts, (std::vector<int64_t>{kT0 + 1000, kT0 + 2000, kT0 + 3000}));
  EXPECT_EQ(s[0].vs[1], 2);
  EXPECT_TRUE(moni::is_stale_nan(s[0].vs[2]));
  EXPECT_EQ(metric(*h, "moni_tsdb_out_of_order_samples_total"), 1);
  EXPECT_EQ(metric(*h, "moni_tsdb_duplicate_samples_total", "action", "ignored"), 1);
  EXPECT_EQ(metric(*h, "moni_tsdb_duplicate_samples_total", "action", "rejected"), 2);
  EXPECT_EQ(metric(*h, "moni_tsdb_samples_appended_total"), 4);
}

TEST(LmdbTsdb, ConcurrentReadersDuringWrites) {
  TempDir dir;
  auto h = load(dir.str(), "map_size = \"1MiB\"\nsync = \"none\"");
  ASSERT_TRUE(h);
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::thread reader([&] {
    StorageClient c(h->reader());
    while (!done) {
      auto r = c.select(std::vector<Matcher>{{MatchType::Regex, "__name__", "m.*"}}, INT64_MIN,
                        INT64_MAX, true, [&](const moni::SeriesView& v) {
                          for (size_t i = 1; i < v.timestamps_ms.size(); ++i)
                            EXPECT_LT(v.timestamps_ms[i - 1], v.timestamps_ms[i]);
                          return true;
                        });
      EXPECT_TRUE(r.ok());
      ++reads;
    }
  });
  // Starts with a 1 MiB map: writing ~6 MB makes it grow several times.
  for (int i = 0; i < 200; ++i) {
    Batch b;
    for (int s = 0; s < 500; ++s)
      b.add("m" + std::to_string(s % 7), {{"s", std::to_string(s)}}, i * 1.5 + s, kT0 + i * 15000);
    auto r = h->write(b);
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_GT(metric(*h, "moni_tsdb_map_grows_total"), 0);
  EXPECT_EQ(metric(*h, "moni_tsdb_samples_appended_total"), 100000);
}

TEST(LmdbTsdb, RetentionByAgeDeletesOldChunksAndSeries) {
  TempDir dir;
  auto o = opts(dir.str());
  o.retention_ms = 3600000;  // 1h
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok());
  // "old" stops after 2h; "new" runs for 6h at 15s.
  for (int i = 0; i < 6 * 240; ++i) {
    Batch b;
    if (i < 480) b.add("old", {}, i, kT0 + i * 15000LL);
    b.add("new", {}, i, kT0 + i * 15000LL);
    ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  }
  ASSERT_TRUE((*db)->enforce_retention().ok());
  auto& st = (*db)->stats();
  EXPECT_GT(st.retention_chunks_age.load(), 0u);
  EXPECT_EQ(st.retention_series.load(), 1u);
  auto c = (*db)->select(std::vector<Matcher>{}, INT64_MIN, INT64_MAX, true);
  ASSERT_TRUE(c.ok());
  moni_series_view v{};
  auto r = (*c)->next(v);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(moni::find_label(v.labels, v.label_count, "__name__"), "new");
  // Only whole chunks go: what is left starts within a chunk of the cutoff.
  int64_t cutoff = kT0 + (6 * 240 - 1) * 15000LL - 3600000;
  EXPECT_GE(v.timestamps_ms[0], cutoff - 8 * 3600000LL);
  EXPECT_LT(v.timestamps_ms[0], cutoff + 1);
  EXPECT_EQ(v.timestamps_ms[v.sample_count - 1], kT0 + (6 * 240 - 1) * 15000LL);
  r = (*c)->next(v);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  // New samples for a deleted series start it afresh.
  Batch b;
  b.add("old", {}, 1, kT0 + 7 * 3600000LL);
  ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  EXPECT_EQ(st.series.load(), 2);
}

TEST(LmdbTsdb, RetentionBySizeKeepsTheNewestData) {
  TempDir dir;
  auto o = opts(dir.str());
  o.retention_ms = 0;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok());
  std::mt19937_64 rng(1);
  for (int i = 0; i < 1000; ++i) {
    Batch b;
    for (int s = 0; s < 100; ++s)
      b.add("m", {{"s", std::to_string(s)}}, std::bit_cast<double>(rng() >> 2), kT0 + i * 15000LL);
    ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  }
  ASSERT_TRUE((*db)->wait_background().ok());  // every cut chunk in the file
  uint64_t before = (*db)->used_bytes();
  moni::tsdb::Options o2 = o;
  (*db).reset();
  o2.retention_bytes = before / 2;
  db = moni::tsdb::Db::open(o2);
  ASSERT_TRUE(db.ok());
  ASSERT_TRUE((*db)->enforce_retention().ok());
  EXPECT_LE((*db)->used_bytes(), before / 2);
  EXPECT_GT((*db)->stats().retention_chunks_size.load(), 0u);
  auto c =
      (*db)->select(std::vector<Matcher>{{MatchType::Equal, "s", "5"}}, INT64_MIN, INT64_MAX, true);
  ASSERT_TRUE(c.ok());
  moni_series_view v{};
  auto r = (*c)->next(v);
  ASSERT_TRUE(r.ok() && *r);
  EXPECT_EQ(v.timestamps_ms[v.sample_count - 1], kT0 + 999 * 15000LL);
  EXPECT_GT(v.timestamps_ms[0], kT0);
}

TEST(LmdbTsdb, BackupWhileWritingAndRestore) {
  TempDir dir;
  auto h = load(dir.str(), "sync = \"none\"");
  ASSERT_TRUE(h);
  for (int i = 0; i < 300; ++i) {
    Batch b;
    b.describe("m", moni::MetricType::Counter, "help");
    b.add("m", {{"k", "v"}}, i, kT0 + i * 1000);
    ASSERT_TRUE(h->write(b).ok());
  }
  // A second process-like handle (read-only env, as `moni backup` opens it)
  // copies while the instance keeps writing.
  auto ro = opts(dir.str() + "/tsdb");
  ro.read_only = true;
  auto db = moni::tsdb::Db::open(ro);
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::thread writer([&] {
    for (int i = 300; i < 600; ++i) {
      Batch b;
      b.add("m", {{"k", "v"}}, i, kT0 + i * 1000);
      ASSERT_TRUE(h->write(b).ok());
    }
  });
  std::string bdir = dir.str() + "/bk";
  auto r = (*db)->backup_to(bdir);
  writer.join();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_FALSE((*db)->backup_to(bdir).ok()) << "refuses a directory holding a database";
  db->reset();

  // Restore into a fresh instance directory and query it.
  std::string target = dir.str() + "/restored/tsdb";
  ASSERT_TRUE(moni::tsdb::restore_backup(bdir, target, false).ok());
  auto h2 = load(dir.str() + "/restored");
  ASSERT_TRUE(h2);
  StorageClient c(h2->reader());
  auto s = select(c, {{MatchType::Equal, "k", "v"}});
  ASSERT_EQ(s.size(), 1u);
  ASSERT_GE(s[0].ts.size(), 300u);
  for (size_t i = 0; i < s[0].ts.size(); ++i) {
    EXPECT_EQ(s[0].ts[i], kT0 + int64_t(i) * 1000);
    EXPECT_EQ(s[0].vs[i], double(i));
  }
  auto md = c.metadata("m");
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(md->size(), 1u);
  // Restoring over a database with data needs --force.
  h2->stop();
  auto again = moni::tsdb::restore_backup(bdir, target, false);
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.error().message.find("--force"), std::string::npos);
  EXPECT_TRUE(moni::tsdb::restore_backup(bdir, target, true).ok());
  EXPECT_FALSE(moni::tsdb::restore_backup(dir.str() + "/nothing", target, true).ok());
}

TEST(LmdbTsdb, ScheduledBackupsKeepN) {
  TempDir dir;
  std::string bdir = dir.str() + "/backups";
  auto h = load(dir.str(), "[backup]\ninterval = \"300ms\"\ndir = \"" + bdir + "\"\nkeep = 2\n");
  ASSERT_TRUE(h);
  Batch b;
  b.add("m", {}, 1, kT0);
  ASSERT_TRUE(h->write(b).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_GE(metric(*h, "moni_tsdb_backups_total", "result", "success"), 2);
  h->stop();
  int n = 0;
  for (const auto& e : fs::directory_iterator(bdir)) {
    EXPECT_EQ(e.path().filename().string().rfind("backup-", 0), 0u) << e.path();
    EXPECT_TRUE(fs::exists(e.path() / "data.mdb"));
    ++n;
  }
  EXPECT_EQ(n, 2);
}

TEST(LmdbTsdb, ImportOpenMetricsWithTimestamps) {
  TempDir dir;
  std::string file = dir.str() + "/in.om";
  {
    std::ofstream f(file);
    f << "# TYPE http_requests counter\n# HELP http_requests Requests.\n";
    // File order is by series, not by time. 300 samples of a series that is
    // new in the batch make its head chunk cut within that batch.
    for (int i = 0; i < 300; ++i)
      f << "http_requests_total{code=\"200\"} " << i * 10 << " " << (1700000000 + i * 15) << "\n";
    for (int i = 0; i < 50; ++i)
      f << "http_requests_total{code=\"500\"} " << i << " " << (1700000000 + i * 15) << ".5\n";
    f << "# EOF\n";
  }
  {
    auto db = moni::tsdb::Db::open(opts(dir.str() + "/tsdb"));
    ASSERT_TRUE(db.ok());
    auto r = moni::tsdb::import_text_file(**db, file, 0);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, 350u);
  }
  auto h = load(dir.str());
  ASSERT_TRUE(h);
  StorageClient c(h->reader());
  auto s = select(c, {{MatchType::Equal, "code", "500"}});
  ASSERT_EQ(s.size(), 1u);
  ASSERT_EQ(s[0].ts.size(), 50u);
  EXPECT_EQ(s[0].ts[1], 1700000015500);
  EXPECT_EQ(s[0].vs[49], 49);
  auto s200 = select(c, {{MatchType::Equal, "code", "200"}});
  ASSERT_EQ(s200.size(), 1u);
  ASSERT_EQ(s200[0].ts.size(), 300u);
  EXPECT_EQ(s200[0].vs[299], 2990);
  auto md = c.metadata("http_requests");
  ASSERT_TRUE(md.ok());
  ASSERT_EQ(md->size(), 1u);
  EXPECT_EQ((*md)[0].type, moni::MetricType::Counter);
}

TEST(LmdbTsdb, DiskFullIsReportedAndAppendsResume) {
  TempDir dir;
  auto db = moni::tsdb::Db::open(opts(dir.str()));
  ASSERT_TRUE(db.ok());
  Batch first;
  first.add("m", {{"s", "0"}}, 1, kT0);
  ASSERT_TRUE((*db)->write(BatchView(first.view())).ok());
  // A file size limit stands in for a full disk (EFBIG like ENOSPC).
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  getrlimit(RLIMIT_FSIZE, &old);
  rlimit lim = old;
  lim.rlim_cur = (*db)->file_bytes() + 64 * 1024;
  setrlimit(RLIMIT_FSIZE, &lim);
  bool failed = false;
  std::string msg;
  int i = 1;
  for (; i < 400 && !failed; ++i) {
    Batch b;
    for (int s = 0; s < 200; ++s)
      b.add("m", {{"s", std::to_string(s)}, {"pad", std::string(100, 'p')}}, i, kT0 + i * 1000);
    auto r = (*db)->write(BatchView(b.view()));
    if (!r.ok()) {
      failed = true;
      msg = r.error().message;
    }
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  ASSERT_TRUE(failed);
  EXPECT_NE(msg.find("disk full"), std::string::npos) << msg;
  EXPECT_EQ((*db)->stats().write_errors_disk_full.load(), 1u);
  // The failed batch left nothing behind; the same batch now goes in.
  int failed_i = i - 1;
  Batch b;
  for (int s = 0; s < 200; ++s)
    b.add("m", {{"s", std::to_string(s)}, {"pad", std::string(100, 'p')}}, failed_i,
          kT0 + failed_i * 1000);
  auto r = (*db)->write(BatchView(b.view()));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->appended, 200u);
  db->reset();
  auto db2 = moni::tsdb::Db::open(opts(dir.str()));
  ASSERT_TRUE(db2.ok());
  auto c = (*db2)->select(std::vector<Matcher>{{MatchType::Equal, "s", "7"}}, INT64_MIN, INT64_MAX,
                          true);
  ASSERT_TRUE(c.ok());
  moni_series_view v{};
  auto n = (*c)->next(v);
  ASSERT_TRUE(n.ok() && *n);
  EXPECT_EQ(v.sample_count, static_cast<size_t>(failed_i));
  EXPECT_EQ(v.timestamps_ms[v.sample_count - 1], kT0 + failed_i * 1000);
}

TEST(LmdbTsdb, ConfigErrorsAreReported) {
  TempDir dir;
  auto h = PluginHarness::load(moni::testing::plugin_path("lmdb_tsdb"),
                               "sync = \"sometimes\"\nretention = \"15x\"\nbogus = 1\n", "tsdb",
                               dir.str());
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("sync must be one of"), std::string::npos) << m;
  EXPECT_NE(m.find("retention"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'bogus'"), std::string::npos) << m;
}

namespace {
}  // namespace

TEST(LmdbTsdb, HeadsAreRecoveredFromTheWalAfterReopen) {
  TempDir dir;
  auto o = opts(dir.str());
  o.head_chunk_samples = 10;
  o.checkpoint_records = 7;
  Dump want;
  auto add = [&](Batch& b, const std::string& name, int64_t t, double v) {
    b.add(name, {{"job", "x"}}, v, t);
    auto& e = want["__name__=" + name + ",job=x"];
    e.first.push_back(t);
    e.second.push_back(v);
  };
  for (int round = 0; round < 3; ++round) {
    auto db = moni::tsdb::Db::open(o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_TRUE(same(dump(**db), want)) << "round " << round;
    for (int i = 0; i < 23; ++i) {
      int64_t t = kT0 + (round * 23 + i) * 15000LL + i % 3;
      Batch b;
      add(b, "steady", t, round * 23 + i);
      add(b, "constant", t, 1);
      if (i < 4) add(b, "stops", t, 0.5 * i);  // its head is flushed when stale
      if (i % 5 == 0) add(b, "slow", t, std::nan(""));
      ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
    }
    ASSERT_TRUE((*db)->wait_background().ok());  // cut chunks are counted once stored
    EXPECT_GT((*db)->stats().chunks_closed.load(), 0u);
    EXPECT_TRUE(same(dump(**db), want));
    // Closed without flushing: the open heads are only in the WAL.
  }
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok());
  EXPECT_TRUE(same(dump(**db), want));
  EXPECT_EQ(want.size(), 4u);
}

TEST(LmdbTsdb, SeriesCacheFollowsChangedBatchOrder) {
  TempDir dir;
  auto db = moni::tsdb::Db::open(opts(dir.str()));
  ASSERT_TRUE(db.ok());
  std::vector<std::vector<std::string>> orders = {
      {"a", "b", "c"}, {"a", "b", "c"}, {"c", "a", "b"}, {"a", "d", "c"}, {"b", "c", "a"}};
  std::map<std::string, std::vector<double>> want;
  for (size_t i = 0; i < orders.size(); ++i) {
    Batch b;
    for (const auto& n : orders[i]) {
      double v = static_cast<double>(i * 10 + static_cast<size_t>(n[0] - 'a'));
      b.add(n, {{"i", "1"}}, v, kT0 + static_cast<int64_t>(i) * 15000);
      want[n].push_back(v);
    }
    ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  }
  auto got = dump(**db);
  ASSERT_EQ(got.size(), 4u);
  for (auto& [n, vs] : want) EXPECT_EQ(got["__name__=" + n + ",i=1"].second, vs) << n;
}

TEST(LmdbTsdb, OlderFormatIsRefusedWithAClearMessage) {
  TempDir dir;
  { ASSERT_TRUE(moni::tsdb::Db::open(opts(dir.str())).ok()); }
  // Rewrite the stored format version as format 1 had it.
  MDB_env* env = nullptr;
  ASSERT_EQ(mdb_env_create(&env), 0);
  mdb_env_set_maxdbs(env, 8);
  ASSERT_EQ(mdb_env_open(env, dir.str().c_str(), 0, 0644), 0);
  MDB_txn* txn = nullptr;
  MDB_dbi dbi;
  ASSERT_EQ(mdb_txn_begin(env, nullptr, 0, &txn), 0);
  ASSERT_EQ(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
  MDB_val k = moni::tsdb::mval("format"), v = moni::tsdb::mval("moni-lmdb-tsdb-1");
  ASSERT_EQ(mdb_put(txn, dbi, &k, &v, 0), 0);
  ASSERT_EQ(mdb_txn_commit(txn), 0);
  mdb_env_close(env);
  auto db = moni::tsdb::Db::open(opts(dir.str()));
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.error().message.find("moni-lmdb-tsdb-1"), std::string::npos) << db.error().message;
  EXPECT_NE(db.error().message.find("moni-lmdb-tsdb-2"), std::string::npos);
  EXPECT_NE(db.error().message.find("no converter"), std::string::npos);
}

TEST(LmdbTsdb, BackupIsPackedSmallerAndComplete) {
  TempDir dir;
  auto db = moni::tsdb::Db::open(opts(dir.str() + "/live"));
  ASSERT_TRUE(db.ok());
  std::mt19937_64 rng(5);
  // 80 series cut in the same batches: their chunks are encoded on two
  // threads (64 or more per batch).
  for (int i = 0; i < 600; ++i) {
    Batch b;
    for (int s = 0; s < 80; ++s)
      b.add("m", {{"s", std::to_string(s)}}, static_cast<double>(rng() % 1000),
            kT0 + i * 15000LL + static_cast<int64_t>(rng() % 3));
    ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  }
  auto before = dump(**db);
  std::string bdir = dir.str() + "/bk";
  ASSERT_TRUE((*db)->backup_to(bdir).ok());
  EXPECT_LT(fs::file_size(bdir + "/data.mdb"), (*db)->file_bytes() * 3 / 4)
      << "pages filled completely";
  EXPECT_TRUE(same(dump(**db), before)) << "flushing the heads changes nothing visible";
  auto o = opts(bdir);
  o.read_only = true;
  o.no_lock = true;
  auto copy = moni::tsdb::Db::open(o);
  ASSERT_TRUE(copy.ok()) << copy.error().message;
  EXPECT_EQ(before.size(), 80u);
  EXPECT_TRUE(same(dump(**copy), before));
  // The live database continues after the flush.
  Batch b;
  b.add("m", {{"s", "0"}}, 1, kT0 + 600 * 15000LL);
  ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  EXPECT_EQ(dump(**db)["__name__=m,s=0"].first.size(), 601u);
}

namespace {
// Deterministic values with NaN payloads, the staleness marker and infinities.
double bg_value(uint64_t k, int s) {
  uint64_t x = (k * 0x9E3779B97F4A7C15ULL) ^ (static_cast<uint64_t>(s) * 0xBF58476D1CE4E5B9ULL);
  x ^= x >> 31;
  x *= 0x94D049BB133111EBULL;
  if ((k + s) % 13 == 0) return std::bit_cast<double>(uint64_t{MONI_STALE_NAN_BITS});
  if ((k + s) % 11 == 0) return -std::numeric_limits<double>::infinity();
  if (s % 2 == 0) return static_cast<double>(k * 3 + s);
  return std::bit_cast<double>(x ^ (x >> 29));
}
}  // namespace

// Cut heads are stored by the background thread; until then their samples
// stay readable. A reader running beside the writer sees every sample
// acknowledged before its read, once, in order, bit for bit; the database
// holds exactly what was written after waiting, reopening and flushing.
TEST(LmdbTsdb, CutChunksAreReadableWhileStoredInTheBackground) {
  TempDir dir;
  auto o = opts(dir.str());
  o.head_chunk_samples = 4;  // a cut every 4 batches, 3 per batch for "burst"
  o.checkpoint_records = 6;
  constexpr int kSeries = 20, kBatches = 240, kBurst = 9;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::atomic<int> acked{0};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad{0};
  std::thread reader([&] {
    while (!done) {
      int before = acked.load();
      Dump d = dump(**db);
      for (const auto& [key, e] : d) {
        bool burst = key.find("burst") != std::string::npos;
        int s = burst ? kSeries : std::stoi(key.substr(key.find("s=") + 2));
        size_t need = static_cast<size_t>(before) * (burst ? kBurst : 1);
        bool ok = e.first.size() >= need && e.first.size() == e.second.size();
        for (size_t i = 0; ok && i < e.first.size(); ++i) {
          int64_t t = kT0 + static_cast<int64_t>(i) * 1000;
          ok = e.first[i] == t &&
               std::bit_cast<uint64_t>(e.second[i]) == std::bit_cast<uint64_t>(bg_value(i, s));
        }
        if (!ok) ++bad;
      }
      if (before > 0 && d.size() != kSeries + 1u) ++bad;
      ++reads;
    }
  });
  Dump want;
  for (int k = 0; k < kBatches; ++k) {
    Batch b;
    for (int s = 0; s < kSeries; ++s) {
      int64_t t = kT0 + k * 1000LL;
      b.add("bg", {{"s", std::to_string(s)}}, bg_value(k, s), t);
      auto& e = want["__name__=bg,s=" + std::to_string(s)];
      e.first.push_back(t);
      e.second.push_back(bg_value(k, s));
    }
    for (int j = 0; j < kBurst; ++j) {  // several cuts of one series in one batch
      uint64_t i = static_cast<uint64_t>(k) * kBurst + j;
      int64_t t = kT0 + static_cast<int64_t>(i) * 1000;
      b.add("burst", {}, bg_value(i, kSeries), t);
      auto& e = want["__name__=burst"];
      e.first.push_back(t);
      e.second.push_back(bg_value(i, kSeries));
    }
    auto r = (*db)->write(BatchView(b.view()));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->appended, static_cast<uint64_t>(kSeries + kBurst));
    acked = k + 1;
    if (k % 40 == 0) {
      EXPECT_TRUE(same(dump(**db), want)) << "after batch " << k;
    }
  }
  done = true;
  reader.join();
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ(bad.load(), 0);
  ASSERT_TRUE((*db)->wait_background().ok());
  EXPECT_GT((*db)->stats().chunks_closed.load(), uint64_t{kBatches / 4 * kSeries});
  EXPECT_TRUE(same(dump(**db), want));
  db->reset();
  auto db2 = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  EXPECT_TRUE(same(dump(**db2), want));
  ASSERT_TRUE((*db2)->flush_heads().ok());
  EXPECT_TRUE(same(dump(**db2), want));
  db2->reset();
  auto ro = o;
  ro.read_only = true;
  auto db3 = moni::tsdb::Db::open(ro);  // chunks only: no WAL replay
  ASSERT_TRUE(db3.ok()) << db3.error().message;
  EXPECT_TRUE(same(dump(**db3), want));
}

// The checkpoint counts collection cycles, not WAL records: with ten
// targets writing one batch each per cycle, heads still fill up to
// chunk_samples instead of being cut early as stale.
TEST(LmdbTsdb, CheckpointScalesWithBatchesPerCycle) {
  TempDir dir;
  auto o = opts(dir.str());
  o.head_chunk_samples = 40;
  o.checkpoint_records = 60;
  constexpr int kTargets = 10, kSeries = 30, kScrapes = 200;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  for (int k = 0; k < kScrapes; ++k)
    for (int t = 0; t < kTargets; ++t) {
      Batch b;
      for (int s = 0; s < kSeries; ++s)
        b.add("m", {{"instance", std::to_string(t)}, {"s", std::to_string(s)}}, k + s,
              kT0 + k * 15000LL + t);
      ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
    }
  ASSERT_TRUE((*db)->wait_background().ok());
  // 300 series x 200 samples in chunks of 40: 4 closed per series (the
  // 5th is the open head). Cut at 6 cycles (60 records), it would be ~33.
  uint64_t series = kTargets * kSeries;
  EXPECT_GE((*db)->stats().chunks_closed.load(), series * 4);
  EXPECT_LE((*db)->stats().chunks_closed.load(), series * 5);
  // All 300 heads cut in one round: encoded on two threads, stored whole.
  ASSERT_TRUE((*db)->flush_heads().ok());
  EXPECT_EQ((*db)->stats().chunks_closed.load(), series * 5);
  Dump d = dump(**db);
  ASSERT_EQ(d.size(), series);
  for (int t = 0; t < kTargets; ++t)
    for (int s = 0; s < kSeries; ++s) {
      const auto& e = d["__name__=m,instance=" + std::to_string(t) + ",s=" + std::to_string(s)];
      ASSERT_EQ(e.first.size(), static_cast<size_t>(kScrapes));
      for (int k = 0; k < kScrapes; ++k) {
        EXPECT_EQ(e.first[k], kT0 + k * 15000LL + t);
        EXPECT_EQ(e.second[k], k + s);
      }
    }
}

// A reload starts the changed instance before stopping the old one: both
// must work on one open database, or series ids and the WAL diverge.
TEST(LmdbTsdb, ReloadedInstanceSharesTheOpenDatabase) {
  TempDir dir;
  auto old_inst = load(dir.str(), "sync = \"none\"");
  ASSERT_TRUE(old_inst);
  auto write = [](PluginHarness& h, const std::string& job, int64_t t) {
    Batch b;
    for (int i = 0; i < 20; ++i)
      b.add("up", {{"job", job}, {"instance", "h" + std::to_string(i)}}, i, t);
    ASSERT_TRUE(h.write(b).ok());
  };
  write(*old_inst, "before", kT0);
  // The successor, with a changed option, starts while the old one runs.
  auto new_inst = load(dir.str(), "sync = \"none\"\nretention = \"30d\"\nchunk_samples = 120");
  ASSERT_TRUE(new_inst);
  bool warned = false;
  for (const auto& l : new_inst->logs())
    warned |= l.find("chunk_samples changed") != std::string::npos;
  EXPECT_TRUE(warned) << "a change that needs a restart is reported";
  write(*old_inst, "during_old", kT0 + 15000);
  write(*new_inst, "during_new", kT0 + 15000);
  old_inst->stop();
  old_inst.reset();
  write(*new_inst, "after", kT0 + 30000);
  auto check = [](PluginHarness& h) {
    StorageClient c(h.reader());
    for (const char* job : {"before", "during_old", "during_new", "after"}) {
      auto got = select(c, {{MatchType::Equal, "job", job}});
      ASSERT_EQ(got.size(), 20u) << job;
      for (const auto& s : got) {
        ASSERT_EQ(s.vs.size(), 1u) << job;
        EXPECT_EQ("h" + std::to_string(int(s.vs[0])), label(s, "instance")) << job;
      }
    }
  };
  check(*new_inst);
  new_inst->stop();
  new_inst.reset();
  auto reopened = load(dir.str());
  ASSERT_TRUE(reopened);
  check(*reopened);
}

// write() from several threads at once (one target per thread, batches in
// order within it, new series and metadata appearing mid-run, a head flush
// from another thread), with readers running select/next, label_names and
// label_values meanwhile. Readers see each series' samples as a gapless,
// bit-exact prefix at least as long as what its writer had acknowledged;
// every sample is there afterwards and after a reopen (WAL replay).
TEST(LmdbTsdb, ConcurrentWritersAndReaders) {
  TempDir dir;
  auto o = opts(dir.str());
  o.sync = moni::tsdb::SyncMode::Full;  // group commit
  o.head_chunk_samples = 8;             // cuts and background stores meanwhile
  o.checkpoint_records = 6;
  o.initial_map_size = 1 << 20;  // map growth under concurrent writers
  constexpr int kWriters = 4, kSeries = 30, kBatches = 60;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  // Writer w's series s exists from batch s (one new series per batch for
  // the first kSeries batches: series creation races with other writers).
  auto key = [](int w, int s) {
    return "__name__=cw_" + std::to_string(s % 3) + ",s=" + std::to_string(s) +
           ",w=" + std::to_string(w);
  };
  auto value = [](int w, int s, int k) { return bg_value(static_cast<uint64_t>(k), w * 100 + s); };
  std::atomic<int> acked[kWriters] = {};
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad{0};
  // `before`: what the writers had acknowledged before the dump was taken.
  auto check = [&](const Dump& d, const int* before, bool final) {
    for (int w = 0; w < kWriters; ++w)
      for (int s = 0; s < kSeries; ++s) {
        int need = before[w] - s;  // batches s..before-1 hold series s
        auto it = d.find(key(w, s));
        if (it == d.end()) {
          if (need > 0) ++bad;
          continue;
        }
        const auto& [ts, vs] = it->second;
        if (ts.size() != vs.size() || static_cast<int>(ts.size()) < need ||
            (final && static_cast<int>(ts.size()) != need)) {
          ++bad;
          continue;
        }
        for (size_t i = 0; i < ts.size(); ++i) {
          int k = s + static_cast<int>(i);
          if (ts[i] != kT0 + k * 1000LL ||
              std::bit_cast<uint64_t>(vs[i]) != std::bit_cast<uint64_t>(value(w, s, k))) {
            ++bad;
            break;
          }
        }
      }
  };
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r)
    readers.emplace_back([&, r] {
      while (!done) {
        if (r == 0) {
          int before[kWriters];
          for (int w = 0; w < kWriters; ++w) before[w] = acked[w].load();
          Dump d = dump(**db);
          check(d, before, false);
        } else {
          auto names = (*db)->label_names({}, INT64_MIN, INT64_MAX);
          auto ws = (*db)->label_values("w", {}, INT64_MIN, INT64_MAX);
          std::vector<Matcher> ms{{MatchType::Regex, "__name__", "cw_.*"}};
          auto ss = (*db)->label_values("s", ms, kT0, kT0 + kBatches * 1000LL);
          if (!names.ok() || !ws.ok() || !ss.ok() || ws->size() > kWriters || ss->size() > kSeries)
            ++bad;
        }
        ++reads;
      }
    });
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      for (int k = 0; k < kBatches; ++k) {
        Batch b;
        for (int s = 0; s <= std::min(k, kSeries - 1); ++s)
          b.add("cw_" + std::to_string(s % 3), {{"s", std::to_string(s)}, {"w", std::to_string(w)}},
                value(w, s, k), kT0 + k * 1000LL);
        if (k % 20 == w)
          b.describe("cw_" + std::to_string(w % 3), moni::MetricType::Gauge,
                     "help " + std::to_string(k), "");
        auto r = (*db)->write(BatchView(b.view()));
        if (!r.ok() || r->appended != b.size()) {
          ADD_FAILURE() << "writer " << w << " batch " << k << ": "
                        << (r.ok() ? "appended " + std::to_string(r->appended) : r.error().message);
          ++bad;
          return;
        }
        acked[w] = k + 1;
      }
    });
  std::thread flusher([&] {
    while (acked[0].load() < kBatches / 2)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    EXPECT_TRUE((*db)->flush_heads().ok());
  });
  for (auto& t : writers) t.join();
  flusher.join();
  done = true;
  for (auto& t : readers) t.join();
  EXPECT_GT(reads.load(), 2);
  EXPECT_EQ(bad.load(), 0);
  ASSERT_TRUE((*db)->wait_background().ok());
  int all[kWriters];
  std::fill(all, all + kWriters, kBatches);
  check(dump(**db), all, true);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ((*db)->stats().commits.load(), uint64_t{kWriters * kBatches});
  EXPECT_EQ((*db)->stats().series.load(), kWriters * kSeries);
  Dump before = dump(**db);
  db->reset();
  auto db2 = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  EXPECT_TRUE(same(dump(**db2), before));
  auto md = (*db2)->metadata("");
  ASSERT_TRUE(md.ok());
  EXPECT_EQ(md->size(), 3u);
}

// Batches of different shapes sharing series, written at the same time:
// a series belongs to one batch shape at a time (its batches change it
// without the writer mutex), so two shapes holding it take turns running
// exclusively and hand it over, while a third writer's own series keep
// running in parallel. Each round both sharing writers send the same
// samples: exactly one appends each, the other counts a duplicate. Every
// sample is there, bit for bit, before and after a reopen (WAL replay).
TEST(LmdbTsdb, WritersSharingSeriesInDifferentShapes) {
  TempDir dir;
  auto o = opts(dir.str());
  o.sync = moni::tsdb::SyncMode::None;
  o.head_chunk_samples = 8;  // cuts every few rounds, stored in the background
  o.checkpoint_records = 4;  // stale-head scans, which run exclusively
  constexpr int kShared = 40, kOwn = 25, kRounds = 60;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto value = [](int s, int k) { return bg_value(static_cast<uint64_t>(k), s); };
  // Writer 0: series [0, 30) ascending; writer 1: [10, 40) descending;
  // writer 2: series of its own.
  auto fill = [&](int w, int k, Batch& b) {
    b.clear();
    int64_t t = kT0 + k * 1000LL;
    if (w == 0)
      for (int s = 0; s < 30; ++s) b.add("sh", {{"s", std::to_string(s)}}, value(s, k), t);
    else if (w == 1)
      for (int s = kShared - 1; s >= 10; --s) b.add("sh", {{"s", std::to_string(s)}}, value(s, k), t);
    else
      for (int s = 0; s < kOwn; ++s) b.add("own", {{"s", std::to_string(s)}}, value(100 + s, k), t);
  };
  std::atomic<int> arrived{0};
  std::atomic<uint64_t> appended{0}, dups{0};
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < 3; ++w)
    ts.emplace_back([&, w] {
      Batch b;
      for (int k = 0; k < kRounds; ++k) {
        fill(w, k, b);
        auto r = (*db)->write(BatchView(b.view()));
        if (!r.ok() || r->out_of_order || r->duplicate_rejected || r->invalid ||
            r->appended + r->duplicate_ignored != b.size()) {
          ADD_FAILURE() << "writer " << w << " round " << k << ": "
                        << (r.ok() ? "appended " + std::to_string(r->appended) : r.error().message);
          ++bad;
        } else {
          appended += r->appended;
          dups += r->duplicate_ignored;
        }
        // Round k + 1 of the sharing writers starts when both sent round k.
        if (w < 2) {
          ++arrived;
          while (arrived.load() < 2 * (k + 1)) std::this_thread::yield();
        }
      }
    });
  for (auto& t : ts) t.join();
  ASSERT_EQ(bad.load(), 0);
  EXPECT_EQ(appended.load(), uint64_t{(kShared + kOwn) * kRounds});
  EXPECT_EQ(dups.load(), uint64_t{20 * kRounds});  // series [10, 30), once per round
  ASSERT_TRUE((*db)->wait_background().ok());
  auto check = [&](const Dump& d) {
    EXPECT_EQ(d.size(), static_cast<size_t>(kShared + kOwn));
    for (int s = 0; s < kShared + kOwn; ++s) {
      bool own = s >= kShared;
      int vs = own ? 100 + (s - kShared) : s;
      auto it = d.find(own ? "__name__=own,s=" + std::to_string(s - kShared)
                           : "__name__=sh,s=" + std::to_string(s));
      ASSERT_NE(it, d.end()) << s;
      const auto& [tv, vv] = it->second;
      ASSERT_EQ(tv.size(), static_cast<size_t>(kRounds)) << s;
      for (int k = 0; k < kRounds; ++k) {
        EXPECT_EQ(tv[static_cast<size_t>(k)], kT0 + k * 1000LL);
        EXPECT_EQ(std::bit_cast<uint64_t>(vv[static_cast<size_t>(k)]),
                  std::bit_cast<uint64_t>(value(vs, k)));
      }
    }
  };
  Dump before = dump(**db);
  check(before);
  db->reset();
  auto db2 = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  EXPECT_TRUE(same(dump(**db2), before));
}

// Batches of a known shape whose series it owns run without stopping the
// other writers, also with many more shapes (scrape targets) than a
// handful: only the first cycle, which creates the series, and the batches
// of shapes that change (here one target whose series count grows every
// cycle) are exclusive.
TEST(LmdbTsdb, ManyTargetsRunInParallelAfterTheirFirstCycle) {
  TempDir dir;
  auto db = moni::tsdb::Db::open(opts(dir.str()));
  ASSERT_TRUE(db.ok()) << db.error().message;
  constexpr int kTargets = 1000, kCycles = 4;
  Batch b;
  for (int c = 0; c < kCycles; ++c) {
    for (int t = 0; t < kTargets; ++t) {
      b.clear();
      for (int s = 0; s < 3; ++s)
        b.add("up", {{"instance", std::to_string(t)}, {"s", std::to_string(s)}}, c, kT0 + c * 15000LL);
      auto r = (*db)->write(BatchView(b.view()));
      ASSERT_TRUE(r.ok() && r->appended == 3) << t;
    }
    b.clear();
    for (int s = 0; s <= c; ++s) b.add("growing", {{"s", std::to_string(s)}}, c, kT0 + c * 15000LL);
    ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
    uint64_t excl = (*db)->stats().exclusive_commits.load();
    if (c == 0)
      EXPECT_EQ(excl, uint64_t{kTargets + 1});
    else
      EXPECT_EQ(excl, static_cast<uint64_t>(kTargets + 1 + c)) << "cycle " << c;
  }
  EXPECT_EQ((*db)->stats().commits.load(), uint64_t{(kTargets + 1) * kCycles});
}

// A batch running in parallel with others starts new heads (after a flush
// they are empty) with its WAL record; until it publishes them, nobody
// sees those heads, so the WAL must be kept from its record: here another
// target writes dozens of records, cutting its heads, while the first
// batch waits between its append and its publication. A copy of the
// directory taken afterwards, as a crash would leave it, holds the
// acknowledged batch.
TEST(LmdbTsdb, WalKeptForABatchBetweenItsAppendAndItsPublication) {
  TempDir dir, copy;
  auto o = opts(dir.str());
  o.sync = moni::tsdb::SyncMode::None;
  o.head_chunk_samples = 4;   // the other target's heads move on quickly
  o.checkpoint_records = 32;  // WAL segments of 16-32 records
  std::mutex m;
  std::condition_variable cv;
  bool waiting = false, go = false;
  std::atomic<std::thread::id> hold{};
  o.test_after_wal_append = [&](uint64_t) {
    if (std::this_thread::get_id() != hold.load()) return;
    std::unique_lock<std::mutex> l(m);
    waiting = true;
    cv.notify_all();
    // Bounded: should the other writer need the database exclusively (a
    // due scan for stale heads), it waits for this one.
    cv.wait_for(l, std::chrono::seconds(1), [&] { return go; });
  };
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  auto batch = [](const std::string& target, int k, Batch& b) {
    b.clear();
    for (int s = 0; s < 3; ++s)
      b.add("m", {{"s", std::to_string(s)}, {"target", target}}, k * 10.0 + s, kT0 + k * 15000LL);
  };
  Batch b;
  for (int k = 0; k < 6; ++k)
    for (const char* t : {"x", "y"}) {
      batch(t, k, b);
      ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
    }
  ASSERT_TRUE((*db)->flush_heads().ok());  // every head empty, the WAL dropped
  std::thread x([&] {
    hold = std::this_thread::get_id();
    Batch bx;
    batch("x", 6, bx);
    auto r = (*db)->write(BatchView(bx.view()));
    EXPECT_TRUE(r.ok() && r->appended == 3);
  });
  {
    std::unique_lock<std::mutex> l(m);
    ASSERT_TRUE(cv.wait_for(l, std::chrono::seconds(10), [&] { return waiting; }));
  }
  for (int k = 6; k < 90; ++k) {
    batch("y", k, b);
    ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  }
  ASSERT_TRUE((*db)->wait_background().ok());
  {
    std::lock_guard<std::mutex> l(m);
    go = true;
  }
  cv.notify_all();
  x.join();  // acknowledged
  ASSERT_TRUE((*db)->wait_background().ok());
  // The directory as a crash now would leave it (nothing is being written).
  for (const auto& e : fs::recursive_directory_iterator(dir.path)) {
    auto rel = fs::relative(e.path(), dir.path);
    if (e.is_directory())
      fs::create_directories(copy.path / rel);
    else if (e.path().filename() != "lock.mdb")
      fs::copy_file(e.path(), copy.path / rel, fs::copy_options::overwrite_existing);
  }
  auto o2 = opts(copy.str());
  auto db2 = moni::tsdb::Db::open(o2);
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  Dump d = dump(**db2);
  for (int s = 0; s < 3; ++s) {
    auto it = d.find("__name__=m,s=" + std::to_string(s) + ",target=x");
    ASSERT_NE(it, d.end());
    ASSERT_EQ(it->second.first.size(), 7u) << "series " << s;
    EXPECT_EQ(it->second.first.back(), kT0 + 6 * 15000LL);
    EXPECT_EQ(it->second.second.back(), 60.0 + s);
  }
}

// The plugin declares concurrent writes (ABI 1.2), and its write() taken
// from several threads through the plugin ABI stores every batch.
TEST(LmdbTsdb, PluginDeclaresAndTakesConcurrentWrites) {
  TempDir dir;
  auto h = load(dir.str(), "sync = \"full\"");
  ASSERT_TRUE(h);
  EXPECT_NE(h->descriptor().flags & MONI_PLUGIN_CONCURRENT_WRITE, 0u);
  constexpr int kThreads = 3, kBatches = 40, kSeries = 20;
  std::vector<std::thread> ts;
  std::atomic<int> failed{0};
  for (int w = 0; w < kThreads; ++w)
    ts.emplace_back([&, w] {
      for (int k = 0; k < kBatches; ++k) {
        Batch b;
        for (int s = 0; s < kSeries; ++s)
          b.add("pc", {{"s", std::to_string(s)}, {"target", std::to_string(w)}}, k * 2.5 + s,
                kT0 + k * 15000LL);
        if (!h->write(b).ok()) ++failed;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(metric(*h, "moni_tsdb_samples_appended_total"), kThreads * kBatches * kSeries);
  StorageClient c(h->reader());
  auto got = select(c, {{MatchType::Equal, "__name__", "pc"}});
  ASSERT_EQ(got.size(), static_cast<size_t>(kThreads * kSeries));
  for (const auto& s : got) {
    ASSERT_EQ(s.ts.size(), static_cast<size_t>(kBatches));
    int si = std::stoi(label(s, "s"));
    for (int k = 0; k < kBatches; ++k) EXPECT_EQ(s.vs[static_cast<size_t>(k)], k * 2.5 + si);
  }
}
