// A collector for host tests: emits test_value{instance=...} and can be told
// to fail, throw, sleep or return no instance, to exercise the host's guards,
// or to count its collections (count = true). sleep_after = N: sleeps only
// from its N+1-th collection on (a collector that turns slow).
#include <chrono>
#include <moni/sdk.hpp>
#include <stdexcept>
#include <thread>

class TestCollector : public moni::Collector {
 public:
  static constexpr std::string_view plugin_name = "test_collector";
  static constexpr std::string_view plugin_version = "0.0.1";
  static constexpr std::string_view plugin_description = "host test collector";
  static constexpr std::string_view sample_config = "# mode = \"ok\"";

  TestCollector(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "test_collector");
    mode_ = r.choice("mode", "ok", {"ok", "fail", "throw", "throw_create", "throw_start"});
    sleep_ms_ = r.duration_ms("sleep", 0);
    value_ = r.number("value", 1.0);
    count_ = r.boolean("count", false);
    sleep_after_ = r.integer("sleep_after", 0);
    r.finish();
    if (mode_ == "throw_create")
      throw std::runtime_error("test_collector: asked to throw in create");
  }
  moni::Result<void> start() override {
    if (mode_ == "throw_start") throw std::runtime_error("asked to throw in start");
    return {};
  }
  moni::Result<void> collect(moni::Batch& out) override {
    if (sleep_ms_ && calls_++ >= sleep_after_)
      std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    if (mode_ == "throw") throw std::runtime_error("asked to throw in collect");
    out.describe("test_value", moni::MetricType::Gauge, "A test value.");
    // count = true: the value is the number of collections so far.
    out.add("test_value", {{"instance", ctx_.instance_name()}},
            count_ ? static_cast<double>(++collections_) : value_);
    if (mode_ == "fail") return moni::make_error("asked to fail");
    return {};
  }

 private:
  moni::Context& ctx_;
  std::string mode_;
  int64_t sleep_ms_;
  double value_;
  bool count_;
  int64_t sleep_after_ = 0;
  int64_t calls_ = 0;
  uint64_t collections_ = 0;  // collect() calls are serialized by the host
};

MONI_EXPORT_PLUGIN(TestCollector)
