// A processor for host tests: increments the label "hops" of every sample
// (absent counts as 0) and drops samples whose value equals `drop_value`.
#include <moni/sdk.hpp>
#include <string>
#include <vector>

class TestProcessor : public moni::Processor {
 public:
  static constexpr std::string_view plugin_name = "test_processor";
  static constexpr std::string_view plugin_version = "0.0.4";
  static constexpr std::string_view plugin_description = "host test processor";
  static constexpr std::string_view sample_config = "# drop_value = 13.0";

  TestProcessor(moni::Context&, const moni::ConfigView& cfg) {
    moni::ConfigReader r(cfg, "test_processor");
    drop_ = r.number("drop_value", -1);
    r.finish();
  }
  moni::Result<void> process(const moni::BatchView& in, moni::Batch& out) override {
    for (const auto& m : in.metadata())
      out.describe(moni::sv(m.family), static_cast<moni::MetricType>(m.type), moni::sv(m.help));
    for (auto s : in) {
      if (s.value() == drop_) continue;
      std::vector<moni::LabelRef> labels;
      std::string hops = std::to_string(std::atoi(std::string(s.label("hops")).c_str()) + 1);
      for (const auto& l : s.labels()) {
        auto n = moni::sv(l.name);
        if (n != "__name__" && n != "hops") labels.push_back({n, moni::sv(l.value)});
      }
      labels.push_back({"hops", hops});
      out.add(s.name(), labels, s.value(), s.timestamp_ms());
    }
    return {};
  }

 private:
  double drop_;
};

MONI_EXPORT_PLUGIN(TestProcessor)
