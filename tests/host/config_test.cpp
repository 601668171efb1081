// Config validation: every error as file:line:column, all reported at once,
// before anything starts; plugin-level errors (unknown plugin, kind, the
// plugin's own options) through the real test plugins.
#include <gtest/gtest.h>

#include "graph.hpp"
#include "host_config.hpp"
#include "plugin_loader.hpp"

using namespace moni::host;

namespace {

std::string parse_error(const std::string& text) {
  auto r = parse_config_text(text, "t.toml");
  return r.ok() ? std::string("(no error)") : r.error().message;
}

// Parses, then builds (creating every instance) with the test plugins.
std::string build_error(const std::string& text) {
  auto cfg = parse_config_text(text, "t.toml");
  if (!cfg) return "parse: " + cfg.error().message;
  PluginRegistry reg;
  reg.scan({HOST_TEST_PLUGIN_DIR});
  PipelineCounters counters;
  auto g = build_graph(std::move(*cfg), reg, "/tmp", nullptr, nullptr, counters);
  return g.ok() ? std::string("(no error)") : g.error().message;
}

#define EXPECT_HAS(haystack, needle)                                                            \
  EXPECT_NE((haystack).find(needle), std::string::npos) << "missing: " << (needle) << "\nin:\n" \
                                                        << (haystack)

}  // namespace

TEST(Config, DefaultsAndOverrides) {
  auto r = parse_config_text(R"(
[collectors.a]
plugin = "test_collector"
[collectors.b]
plugin = "test_collector"
interval = "1m"
timeout = "10s"
jitter = "5s"
[pipelines.p]
collectors = ["a", "b", "self"]
)",
                             "t.toml");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->listen, "127.0.0.1:9095");
  const InstanceConfig* a = r->instance("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->interval_ms, 15000);
  EXPECT_EQ(a->timeout_ms, 15000);
  EXPECT_EQ(a->where, "t.toml:2:1");
  const InstanceConfig* b = r->instance("b");
  EXPECT_EQ(b->interval_ms, 60000);
  EXPECT_EQ(b->timeout_ms, 10000);
  EXPECT_EQ(b->jitter_ms, 5000);
  ASSERT_NE(r->instance("self"), nullptr);
  EXPECT_TRUE(r->instance("self")->builtin_self);
}

TEST(Config, ReportsEveryStructuralErrorWithItsPosition) {
  std::string e = parse_error(R"([host]
listen = 5
bogus = true
[collectors.a]
plugin = "test_collector"
interval = "5x"
[storage.s]
plugin = "test_store"
[pipelines.p]
collectors = ["a", "zzz"]
sinks = ["a"]
forward = ["q"]
[pipelines.q]
forward = ["p"]
extra = 1
[alerts]
)");
  EXPECT_HAS(e, "t.toml:2:10: host.listen must be a string, got integer\n");
  EXPECT_HAS(e, "t.toml:3:9: unknown option 'host.bogus'\n");
  EXPECT_HAS(e, "t.toml:6:12: collectors.a.interval: ");
  EXPECT_HAS(e,
             "t.toml:10:20: pipelines.p.collectors[1]: unknown instance 'zzz' (declare it as "
             "[collectors.zzz])");
  EXPECT_HAS(e,
             "t.toml:11:10: pipelines.p.sinks[0]: 'a' is a collector instance, expected a "
             "storage or an output");
  EXPECT_HAS(e, "t.toml:14:12: pipelines.q.forward: cycle p -> q -> p");
  EXPECT_HAS(e, "t.toml:15:9: unknown option 'pipelines.q.extra'");
  EXPECT_HAS(e, "t.toml:16:1: unknown table 'alerts'");
}

TEST(Config, TomlSyntaxErrorsCarryTheirPosition) {
  std::string e = parse_error("[host]\nlisten = \"127.0.0.1:1\"\n[collectors.a\n");
  EXPECT_TRUE(e.starts_with("t.toml:3:")) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;
}

TEST(Config, ChecksHostKeysOfInstances) {
  std::string e = parse_error(R"([collectors.a]
plugin = "x"
interval = "10s"
timeout = "20s"
jitter = "10s"
[outputs.o]
plugin = "y"
interval = "1s"
[collectors.b]
plugin = 3
[outputs.b]
)");
  EXPECT_HAS(e, "t.toml:4:11: collectors.a.timeout must be > 0 and <= interval (10s)");
  EXPECT_HAS(e, "t.toml:5:10: collectors.a.jitter must be < interval (10s)");
  EXPECT_HAS(e, "t.toml:8:12: outputs.o: 'interval' applies to collectors only");
  EXPECT_HAS(e, "t.toml:10:10: collectors.b.plugin must be a string, got integer");
  EXPECT_HAS(e, "t.toml:11:1: duplicate instance name 'b' (also declared at t.toml:9:1)");
}

TEST(Config, SelfIsBuiltInAndReserved) {
  EXPECT_EQ(parse_error("[collectors.self]\ninterval = \"5s\"\n"), "(no error)");
  std::string e = parse_error("[collectors.self]\ncolour = 1\n[outputs.x]\nplugin = \"self\"\n");
  EXPECT_HAS(e, "t.toml:2:10: unknown option 'collectors.self.colour'");
  EXPECT_HAS(e, "t.toml:3:1: outputs.x: 'self' is the built-in collector");
}

TEST(Config, PluginErrorsUnknownPluginAndWrongKind) {
  std::string e = build_error(R"([collectors.a]
plugin = "nope"
[storage.s]
plugin = "test_sink"
path = "/tmp/x"
[collectors.test_collector]
)");
  EXPECT_HAS(e,
             "t.toml:2:10: collectors.a: unknown plugin 'nope': no plugin named 'nope' (no "
             "loadable moni-nope.so in " HOST_TEST_PLUGIN_DIR);
  EXPECT_HAS(e,
             "t.toml:4:10: storage.s: plugin 'test_sink' is an output plugin, not a storage; "
             "declare it as [outputs.s]");
  EXPECT_HAS(e, "); available: test_collector, test_processor, test_sink, test_store");
  EXPECT_EQ(e.find("collectors.test_collector"), std::string::npos)
      << "plugin defaults to the name:\n"
      << e;
}

TEST(Config, PluginCreateErrorsKeepTheirPositions) {
  std::string e = build_error(R"([collectors.a]
plugin = "test_collector"
mode = "weird"
colour = "red"
[outputs.o]
plugin = "test_sink"
[collectors.t]
plugin = "test_collector"
mode = "throw_create"
)");
  EXPECT_HAS(e, "t.toml:3:8: test_collector: mode must be one of \"ok\", \"fail\"");
  EXPECT_HAS(e, "t.toml:4:10: test_collector: unknown option 'colour'");
  EXPECT_HAS(e, "test_sink: missing required option 'path'");
  EXPECT_HAS(e, "test_collector: asked to throw in create");
}

TEST(Config, ValidConfigBuildsPipelinesWithForwards) {
  auto cfg = parse_config_text(R"([collectors.a]
plugin = "test_collector"
[outputs.o]
plugin = "test_sink"
path = "/tmp/never-written"
[pipelines.p]
collectors = ["a", "self"]
sinks = ["o"]
forward = ["q"]
[pipelines.q]
sinks = ["o"]
)",
                               "t.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  PluginRegistry reg;
  reg.scan({HOST_TEST_PLUGIN_DIR});
  PipelineCounters counters;
  auto g = build_graph(std::move(*cfg), reg, "/tmp", nullptr, nullptr, counters);
  ASSERT_TRUE(g.ok()) << g.error().message;
  ASSERT_EQ((*g)->pipelines.size(), 2u);
  ASSERT_EQ((*g)->jobs.size(), 2u);
  EXPECT_EQ((*g)->pipelines[0]->forwards.size(), 1u);
  EXPECT_EQ((*g)->storage(""), nullptr);
}

TEST(Config, ListenAddresses) {
  std::string h;
  uint16_t p = 0;
  EXPECT_TRUE(split_listen("127.0.0.1:9095", h, p));
  EXPECT_EQ(h, "127.0.0.1");
  EXPECT_EQ(p, 9095);
  EXPECT_TRUE(split_listen("[::1]:80", h, p));
  EXPECT_EQ(h, "::1");
  EXPECT_FALSE(split_listen("::1:80", h, p));
  EXPECT_FALSE(split_listen("127.0.0.1", h, p));
  EXPECT_FALSE(split_listen("127.0.0.1:70000", h, p));
}

TEST(Config, TheOnlyStartedStorageIsFoundByEmptyName) {
  auto cfg = parse_config_text("[storage.db]\nplugin = \"test_store\"\n", "t.toml");
  ASSERT_TRUE(cfg.ok()) << cfg.error().message;
  PluginRegistry reg;
  reg.scan({HOST_TEST_PLUGIN_DIR});
  PipelineCounters counters;
  auto g = build_graph(std::move(*cfg), reg, "/tmp", nullptr, nullptr, counters);
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ((*g)->storage(""), nullptr) << "not started yet";
  ASSERT_TRUE((*g)->start_new().ok());
  EXPECT_NE((*g)->storage(""), nullptr);
  EXPECT_EQ((*g)->storage(""), (*g)->storage("db"));
  EXPECT_EQ((*g)->storage("other"), nullptr);
  (*g)->stop_except(nullptr);
  EXPECT_EQ((*g)->storage("db"), nullptr) << "not after stop";
}
