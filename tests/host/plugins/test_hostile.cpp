// Emits samples Prometheus would refuse next to good ones, for the host's
// sample check. Built twice: as the collector test_hostile, and (with
// TEST_HOSTILE_PROCESSOR) as the processor test_hostile_processor, which
// passes its input through and adds the same set. Every sample carries
// by=<instance name>, so the two sets are distinct series.
//   good (4):         hostile_good{path="/"}, hostile_good{path="/mnt/Grüße ✓ 😀"},
//                     hostile_good:ratio, hostile_good_unsorted (labels given unsorted)
//   invalid_utf8 (3): hostile_bad_utf8 with path = ff fe, an overlong '/', a surrogate
//   invalid_name (6): hostile-bad, 0hostile, labels dev-ice and a:b, no __name__,
//                     hostile_dup with the label x twice
// and metadata: hostile_good's HELP is not UTF-8, the family hostile-bad.
#include <moni/sdk.hpp>
#include <string>

#ifdef TEST_HOSTILE_PROCESSOR
#define TEST_HOSTILE_NAME "test_hostile_processor"
using Base = moni::Processor;
#else
#define TEST_HOSTILE_NAME "test_hostile"
using Base = moni::Collector;
#endif

class Hostile : public Base {
 public:
  static constexpr std::string_view plugin_name = TEST_HOSTILE_NAME;
  static constexpr std::string_view plugin_version = "0.0.1";
  static constexpr std::string_view plugin_description = "emits invalid names and labels";
  static constexpr std::string_view sample_config = "";

  Hostile(moni::Context& ctx, const moni::ConfigView& cfg) : by_(ctx.instance_name()) {
    moni::ConfigReader r(cfg, TEST_HOSTILE_NAME);
    r.finish();
  }

#ifdef TEST_HOSTILE_PROCESSOR
  moni::Result<void> process(const moni::BatchView& in, moni::Batch& out) override {
    for (const auto& m : in.metadata())
      out.describe(moni::sv(m.family), static_cast<moni::MetricType>(m.type), moni::sv(m.help),
                   moni::sv(m.unit));
    for (auto s : in)
      out.add_sorted(s.raw().labels, s.raw().label_count, s.value(), s.timestamp_ms());
    int64_t ts = in.size() ? in[0].timestamp_ms() : 0;
    out.set_default_timestamp(ts);
    emit(out);
    return {};
  }
#else
  moni::Result<void> collect(moni::Batch& out) override {
    emit(out);
    return {};
  }
#endif

 private:
  void emit(moni::Batch& out) {
    const std::string_view by = by_;
    out.describe("hostile_good", moni::MetricType::Gauge,
                 "Good samples next to bad ones; this HELP is not UTF-8: \xff.");
    out.describe("hostile-bad", moni::MetricType::Gauge, "A family whose name is invalid.");
    out.add("hostile_good", {{"by", by}, {"path", "/"}}, 1);
    out.add("hostile_good",
            {{"by", by},
             {"path",
              "/mnt/Gr\xc3\xbc\xc3\x9f"
              "e \xe2\x9c\x93 \xf0\x9f\x98\x80"}},
            2);
    out.add("hostile_good:ratio", {{"by", by}}, 3);
    out.add("hostile_bad_utf8", {{"by", by}, {"path", "/mnt/\xff\xfe"}}, 4);
    out.add("hostile_bad_utf8", {{"by", by}, {"path", "\xc0\xaf"}}, 5);
    out.add("hostile_bad_utf8", {{"by", by}, {"path", "\xed\xa0\x80"}}, 6);
    out.add("hostile-bad", {{"by", by}}, 7);
    out.add("0hostile", {{"by", by}}, 8);
    out.add("hostile_bad_label", {{"by", by}, {"dev-ice", "sda"}}, 9);
    out.add("hostile_bad_label", {{"by", by}, {"a:b", "x"}}, 10);
    const moni::LabelRef nameless[] = {{"by", by}, {"job", "x"}};
    out.add_sorted(nameless, 11, out.default_timestamp());
    // add_sorted trusts its caller: these break the ABI's promise.
    const moni::LabelRef unsorted[] = {
        {"zone", "a"}, {"__name__", "hostile_good_unsorted"}, {"by", by}};
    out.add_sorted(unsorted, 12, out.default_timestamp());
    const moni::LabelRef dup[] = {{"__name__", "hostile_dup"}, {"by", by}, {"x", "1"}, {"x", "2"}};
    out.add_sorted(dup, 13, out.default_timestamp());
  }

  std::string by_;
};

MONI_EXPORT_PLUGIN(Hostile)
