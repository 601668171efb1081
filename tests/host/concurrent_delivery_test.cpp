// Concurrent delivery (ABI 1.2) through the host's own graph, in process: a
// collector emitting from several threads reaches a sink flagged
// MONI_PLUGIN_CONCURRENT_WRITE with overlapping write() calls, an unflagged
// sink one write() at a time, and stop()/flush() of a flagged sink wait for
// the writes in flight.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <moni/batch.hpp>
#include <string>
#include <thread>

#include "graph.hpp"
#include "host_config.hpp"
#include "plugin_loader.hpp"

using namespace moni::host;

namespace {

using Clock = std::chrono::steady_clock;

struct Built {
  PluginRegistry reg;
  PipelineCounters counters;
  std::unique_ptr<Graph> graph;
};

// A graph of test_emitter feeding `store_plugin` (instance "db"), started.
std::unique_ptr<Built> build(const std::string& store_plugin, const std::string& emitter_opts,
                             const std::string& store_opts) {
  auto b = std::make_unique<Built>();
  auto cfg = parse_config_text("[collectors.e]\nplugin = \"test_emitter\"\n" + emitter_opts +
                                   "\n[storage.db]\nplugin = \"" + store_plugin + "\"\n" +
                                   store_opts + "\n[pipelines.p]\ncollectors = [\"e\"]\n" +
                                   "sinks = [\"db\"]\n",
                               "t.toml");
  EXPECT_TRUE(cfg.ok()) << cfg.error().message;
  if (!cfg) return nullptr;
  b->reg.scan({HOST_CONCURRENT_PLUGIN_DIR});
  auto g = build_graph(std::move(*cfg), b->reg, "/tmp", nullptr, nullptr, b->counters);
  EXPECT_TRUE(g.ok()) << g.error().message;
  if (!g) return nullptr;
  b->graph = std::move(g.value());
  auto r = b->graph->start_new();
  EXPECT_TRUE(r.ok()) << r.error().message;
  if (!r) return nullptr;
  return b;
}

int append_stats(void* ctx, const moni_batch* b) {
  auto* m = static_cast<std::map<std::string, double>*>(ctx);
  for (size_t i = 0; i < b->sample_count; ++i)
    for (uint32_t k = 0; k < b->samples[i].label_count; ++k)
      if (moni::sv(b->samples[i].labels[k].name) == "stat")
        (*m)[std::string(moni::sv(b->samples[i].labels[k].value))] = b->samples[i].value;
  return MONI_OK;
}

// The store's counters (in_flight, max_in_flight, batches, samples, violations).
std::map<std::string, double> stats(Instance& store) {
  std::map<std::string, double> m;
  store.self_metrics(&append_stats, &m);
  return m;
}

}  // namespace

TEST(ConcurrentDelivery, LoaderReadsTheFlagsOfSdkPlugins) {
  auto c = load_plugin(HOST_CONCURRENT_PLUGIN_DIR "/moni-test_concurrent_store.so");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ((*c)->desc.flags, uint64_t{MONI_PLUGIN_CONCURRENT_WRITE});
  auto s = load_plugin(HOST_CONCURRENT_PLUGIN_DIR "/moni-test_serial_store.so");
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ((*s)->desc.flags, 0u);
}

TEST(ConcurrentDelivery, AFlaggedSinkGetsOverlappingWrites) {
  auto b = build("test_concurrent_store", "threads = 4\nbatches = 3\nsamples = 5",
                 "write_sleep = \"40ms\"");
  ASSERT_TRUE(b);
  Graph& g = *b->graph;
  Instance& db = *g.instances.at("db");
  EXPECT_EQ(db.flags(), uint64_t{MONI_PLUGIN_CONCURRENT_WRITE});
  auto t0 = Clock::now();
  double deliver_s = -1;
  auto r = g.run_collector(*g.jobs.at(0), 1000, &deliver_s);
  double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto s = stats(db);
  EXPECT_EQ(s["batches"], 12);
  EXPECT_EQ(s["samples"], 60);
  EXPECT_GE(s["max_in_flight"], 2) << "4 threads x 3 writes of 40 ms never overlapped";
  EXPECT_LE(s["max_in_flight"], 4);
  EXPECT_EQ(s["violations"], 0);
  EXPECT_EQ(b->counters.snapshot().at("p"), 60u);
  // Overlapping deliveries count once: never more than the collection's wall time.
  EXPECT_GT(deliver_s, 0.1);
  EXPECT_LE(deliver_s, wall);
  g.stop_except(nullptr);
}

TEST(ConcurrentDelivery, AnUnflaggedSinkGetsOneWriteAtATime) {
  auto b = build("test_serial_store", "threads = 4\nbatches = 3\nsamples = 5",
                 "write_sleep = \"10ms\"");
  ASSERT_TRUE(b);
  Graph& g = *b->graph;
  Instance& db = *g.instances.at("db");
  EXPECT_EQ(db.flags(), 0u);
  double deliver_s = -1;
  auto r = g.run_collector(*g.jobs.at(0), 1000, &deliver_s);
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto s = stats(db);
  EXPECT_EQ(s["batches"], 12);
  EXPECT_EQ(s["samples"], 60);
  EXPECT_EQ(s["max_in_flight"], 1) << "write() of an unflagged sink ran concurrently";
  EXPECT_EQ(s["violations"], 0);
  // 12 serialized writes of 10 ms each.
  EXPECT_GE(deliver_s, 0.12);
  g.stop_except(nullptr);
}

TEST(ConcurrentDelivery, StopAndFlushWaitForWritesInFlight) {
  std::string report = std::filesystem::temp_directory_path() /
                       ("moni-inflight-" + std::to_string(::getpid()) + ".txt");
  std::filesystem::remove(report);
  auto b = build("test_concurrent_store", "threads = 3\nbatches = 1\nsamples = 2",
                 "write_sleep = \"300ms\"\npath = \"" + report + "\"");
  ASSERT_TRUE(b);
  Graph& g = *b->graph;
  Instance& db = *g.instances.at("db");
  auto collecting =
      std::async(std::launch::async, [&] { return g.run_collector(*g.jobs.at(0), 1000); });
  // Wait until writes are in flight, then flush and stop as a reload or
  // shutdown does.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (stats(db)["in_flight"] < 1 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  ASSERT_GE(stats(db)["in_flight"], 1) << "no write started";
  auto t0 = Clock::now();
  ASSERT_TRUE(db.flush().ok());
  db.stop();
  double waited = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_TRUE(collecting.get().ok());
  EXPECT_GT(waited, 0.05) << "stop() did not wait for the writes in flight";
  // The plugin saw no flush()/stop() while a write() ran: its report,
  // written by stop(), says so, and every write that began had finished.
  std::ifstream f(report);
  std::string line;
  ASSERT_TRUE(std::getline(f, line)) << "stop() wrote no report to " << report;
  EXPECT_NE(line.find("violations=0"), std::string::npos) << line;
  EXPECT_EQ(line.find("batches=0"), std::string::npos) << line;
  std::filesystem::remove(report);
  g.stop_except(nullptr);
}
