// The SDK seen from a plugin: batches, config reading, durations, and the
// example plugin driven through the real ABI by the test harness.
#include <gtest/gtest.h>

#include "plugin_harness.hpp"

using moni::testing::PluginHarness;
using moni::testing::plugin_path;

TEST(Duration, ParsesPrometheusDurations) {
  EXPECT_EQ(*moni::parse_duration_ms("15s"), 15000);
  EXPECT_EQ(*moni::parse_duration_ms("1m30s"), 90000);
  EXPECT_EQ(*moni::parse_duration_ms("100ms"), 100);
  EXPECT_EQ(*moni::parse_duration_ms("2d"), 2 * 86400000LL);
  EXPECT_FALSE(moni::parse_duration_ms("15").ok());
  // Each term fits but their sum does not: refused, not wrapped negative.
  EXPECT_FALSE(moni::parse_duration_ms("292471208y292471208w").ok());
  EXPECT_EQ(*moni::parse_duration_ms("292y"), 292 * 365 * 86400000LL);
  EXPECT_FALSE(moni::parse_duration_ms("1s1m").ok());
  EXPECT_FALSE(moni::parse_duration_ms("5x").ok());
  EXPECT_FALSE(moni::parse_duration_ms("").ok());
  EXPECT_EQ(moni::format_duration_ms(90000), "1m30s");
}

TEST(Bytes, ParsesUnits) {
  EXPECT_EQ(*moni::parse_bytes("512MiB"), 512ULL << 20);
  // Powers of 1024 whatever the spelling, as Prometheus reads its sizes.
  EXPECT_EQ(*moni::parse_bytes("10GB"), 10ULL << 30);
  EXPECT_EQ(*moni::parse_bytes("10GiB"), 10ULL << 30);
  EXPECT_EQ(*moni::parse_bytes("1KB"), 1024ULL);
  EXPECT_EQ(*moni::parse_bytes("2EB"), 2ULL << 60);
  EXPECT_FALSE(moni::parse_bytes("16EB").ok());  // over 2^64
  EXPECT_FALSE(moni::parse_bytes("10gb").ok());
  EXPECT_EQ(*moni::parse_bytes("4096"), 4096ULL);
  EXPECT_FALSE(moni::parse_bytes("12XB").ok());
  EXPECT_FALSE(moni::parse_bytes("-1").ok());
}

TEST(Batch, SortsLabelsDropsEmptyAndKeepsLastDuplicate) {
  moni::Batch b;
  b.set_default_timestamp(1000);
  b.add("m", {{"z", "1"}, {"a", "2"}, {"empty", ""}, {"a", "3"}}, 1.5);
  const moni_batch& v = b.view();
  ASSERT_EQ(v.sample_count, 1u);
  const moni_sample& s = v.samples[0];
  ASSERT_EQ(s.label_count, 3u);
  EXPECT_EQ(moni::sv(s.labels[0].name), "__name__");
  EXPECT_EQ(moni::sv(s.labels[0].value), "m");
  EXPECT_EQ(moni::sv(s.labels[1].name), "a");
  EXPECT_EQ(moni::sv(s.labels[1].value), "3");
  EXPECT_EQ(moni::sv(s.labels[2].name), "z");
  EXPECT_EQ(s.timestamp_ms, 1000);
  EXPECT_EQ(s.value, 1.5);
}

TEST(Batch, StaleMarkerIsDistinctFromNaN) {
  EXPECT_TRUE(moni::is_stale_nan(moni::stale_nan()));
  EXPECT_FALSE(moni::is_stale_nan(std::nan("")));
}

TEST(ExamplePlugin, CollectsThroughTheAbi) {
  auto h = PluginHarness::load(plugin_path("hello"), "value = 7.5\ngreeting = \"there\"\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  EXPECT_EQ(moni::sv(p.descriptor().name), "hello");
  EXPECT_EQ(p.descriptor().kind, MONI_KIND_COLLECTOR);
  ASSERT_TRUE(p.start().ok());
  auto b = p.collect(123000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  const auto* v = b->one("hello_value");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->value, 7.5);
  EXPECT_EQ(v->label("greeting"), "there");
  EXPECT_EQ(v->timestamp_ms, 123000);
  ASSERT_NE(b->meta("hello_value"), nullptr);
  EXPECT_EQ(b->meta("hello_value")->type, moni::MetricType::Gauge);
  auto b2 = p.collect(124000);
  EXPECT_EQ(b2->one("hello_collections_total")->value, 2.0);
}

TEST(ExamplePlugin, ReportsEveryConfigErrorWithPosition) {
  auto h = PluginHarness::load(plugin_path("hello"),
                               "value = \"x\"\ncolour = 1\ngreeting = 3\n");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("test.toml:1:9: hello: value must be a number, got string"), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:3:12: hello: greeting must be a string, got integer"), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:2:10: hello: unknown option 'colour'"), std::string::npos) << m;
}

// Context::listen_urls() on a host of ABI 1.2 and on an older one, whose
// struct ends before the field (the SDK must not read past it).
namespace {
int two_urls(void*, moni_str_fn fn, void* user) {
  fn(user, moni::ms("http://127.0.0.1:9095"));
  fn(user, moni::ms("https://[::1]:9443"));
  return 2;
}
}  // namespace

TEST(Context, ListenUrlsFromANewHostAndNoneFromAnOldOne) {
  moni_host_api api{};
  api.struct_size = sizeof(moni_host_api);
  api.abi_major = MONI_ABI_MAJOR;
  api.abi_minor = 2;
  api.listen_urls = &two_urls;
  moni::Context ctx(&api);
  EXPECT_EQ(ctx.listen_urls(),
            (std::vector<std::string>{"http://127.0.0.1:9095", "https://[::1]:9443"}));
  EXPECT_TRUE(ctx.concurrent_emit());
  // A 1.1 host: the struct ends after collect_now.
  api.struct_size = offsetof(moni_host_api, listen_urls);
  api.abi_minor = 1;
  EXPECT_TRUE(ctx.listen_urls().empty());
  EXPECT_FALSE(ctx.concurrent_emit());
}

// plugin_flags: the descriptor's flags come from the class's optional member.
namespace {
struct FlaggedSink : moni::Output {
  static constexpr uint64_t plugin_flags = MONI_PLUGIN_CONCURRENT_WRITE;
  static constexpr std::string_view plugin_name = "flagged";
  static constexpr std::string_view plugin_version = "1";
  static constexpr std::string_view plugin_description = "";
  static constexpr std::string_view sample_config = "";
  FlaggedSink(moni::Context&, const moni::ConfigView&) {}
};
struct PlainSink : moni::Output {
  static constexpr std::string_view plugin_name = "plain";
  static constexpr std::string_view plugin_version = "1";
  static constexpr std::string_view plugin_description = "";
  static constexpr std::string_view sample_config = "";
  PlainSink(moni::Context&, const moni::ConfigView&) {}
};
}  // namespace

TEST(Descriptor, FlagsComeFromPluginFlags) {
  const moni_plugin_descriptor* f = moni::detail::entry<FlaggedSink>(nullptr);
  EXPECT_EQ(f->flags, uint64_t{MONI_PLUGIN_CONCURRENT_WRITE});
  EXPECT_EQ(f->abi_minor, MONI_ABI_MINOR);
  EXPECT_EQ(f->struct_size, sizeof(moni_plugin_descriptor));
  EXPECT_EQ(moni::detail::entry<PlainSink>(nullptr)->flags, 0u);
}
