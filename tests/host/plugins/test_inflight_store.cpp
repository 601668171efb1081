// A storage for the concurrent-delivery tests, built twice: as
// test_concurrent_store (flagged MONI_PLUGIN_CONCURRENT_WRITE) and as
// test_serial_store (no flags). write() sleeps `write_sleep` and counts the
// write() calls in flight; self_metrics() reports the most seen at once, the
// batches and samples received and the calls that broke the lifecycle
// (write() after stop(), stop()/flush() while a write() ran). stop() also
// appends that report to `path` when set.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <moni/sdk.hpp>
#include <string>
#include <thread>

#ifdef TEST_CONCURRENT_WRITE
#define TEST_STORE_NAME "test_concurrent_store"
#else
#define TEST_STORE_NAME "test_serial_store"
#endif

class InflightStore : public moni::Storage {
 public:
#ifdef TEST_CONCURRENT_WRITE
  static constexpr uint64_t plugin_flags = MONI_PLUGIN_CONCURRENT_WRITE;
#endif
  static constexpr std::string_view plugin_name = TEST_STORE_NAME;
  static constexpr std::string_view plugin_version = "0.0.1";
  static constexpr std::string_view plugin_description = "counts write() calls in flight";
  static constexpr std::string_view sample_config = "# write_sleep = \"20ms\"";

  InflightStore(moni::Context&, const moni::ConfigView& cfg) {
    moni::ConfigReader r(cfg, TEST_STORE_NAME);
    sleep_ms_ = r.duration_ms("write_sleep", 20);
    path_ = r.string("path", "");
    r.finish();
  }
  moni::Result<void> write(const moni::BatchView& b) override {
    if (stopped_) ++violations_;
    int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    batches_++;
    samples_ += b.size();
    --in_flight_;
    return {};
  }
  moni::Result<void> flush() override {
    if (in_flight_ != 0) ++violations_;
    return {};
  }
  void stop() override {
    if (in_flight_ != 0) ++violations_;
    stopped_ = true;
    if (!path_.empty()) std::ofstream(path_, std::ios::app) << report() << "\n";
  }
  void self_metrics(moni::Batch& out) override {
    auto stat = [&](std::string_view name, double v) { out.add("test_store", {{"stat", name}}, v); };
    stat("in_flight", in_flight_.load());
    stat("max_in_flight", max_in_flight_.load());
    stat("batches", static_cast<double>(batches_.load()));
    stat("samples", static_cast<double>(samples_.load()));
    stat("violations", violations_.load());
  }
  moni::Result<std::unique_ptr<moni::SeriesCursor>> select(std::span<const moni::Matcher>, int64_t,
                                                           int64_t, bool) override {
    return moni::make_error("not implemented");
  }
  moni::Result<std::vector<std::string>> label_names(std::span<const moni::Matcher>, int64_t,
                                                     int64_t) override {
    return std::vector<std::string>{};
  }
  moni::Result<std::vector<std::string>> label_values(std::string_view,
                                                      std::span<const moni::Matcher>, int64_t,
                                                      int64_t) override {
    return std::vector<std::string>{};
  }
  moni::Result<std::vector<moni::Metadata>> metadata(std::string_view) override {
    return std::vector<moni::Metadata>{};
  }

 private:
  std::string report() const {
    return "max_in_flight=" + std::to_string(max_in_flight_.load()) +
           " batches=" + std::to_string(batches_.load()) +
           " violations=" + std::to_string(violations_.load());
  }
  int64_t sleep_ms_;
  std::string path_;
  std::atomic<int> in_flight_{0}, max_in_flight_{0}, violations_{0};
  std::atomic<uint64_t> batches_{0}, samples_{0};
  std::atomic<bool> stopped_{false};
};

MONI_EXPORT_PLUGIN(InflightStore)
