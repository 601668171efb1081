// An out-of-tree example collector: emits a configurable gauge and a counter
// of its own collections. Build it against an installed moni-dev:
//   cmake -S . -B build -DCMAKE_PREFIX_PATH=/usr && cmake --build build
#include <moni/sdk.hpp>

#include <string>

class HelloCollector : public moni::Collector {
 public:
  static constexpr std::string_view plugin_name = "hello";
  static constexpr std::string_view plugin_version = "1.0.0";
  static constexpr std::string_view plugin_description = "example: emits hello_value and hello_collections_total";
  static constexpr std::string_view sample_config = R"(# value = 42.0        # the gauge hello_value reports
# greeting = "world"  # the value of its label "greeting")";

  HelloCollector(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "hello");
    value_ = r.number("value", 42.0);
    greeting_ = r.string("greeting", "world");
    r.finish();  // throws moni::ConfigError listing every bad or unknown key
  }

  moni::Result<void> collect(moni::Batch& out) override {
    ++collections_;
    out.describe("hello_value", moni::MetricType::Gauge, "A configured value.");
    out.add("hello_value", {{"greeting", greeting_}}, value_);
    out.describe("hello_collections_total", moni::MetricType::Counter, "Collections so far.");
    out.add("hello_collections_total", {}, static_cast<double>(collections_));
    return {};
  }

 private:
  moni::Context& ctx_;
  double value_;
  std::string greeting_;
  uint64_t collections_ = 0;
};

MONI_EXPORT_PLUGIN(HelloCollector)
