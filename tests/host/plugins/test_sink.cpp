// An output for host tests: buffers what it receives and appends one line
// per sample ("name value", or "name{a=\"1\"} value" with labels = true) to
// `path` only on flush, so a test can tell
// whether the host flushed before stopping. Serves GET <route> with the
// number of samples received (and whether a probed storage was found).
#include <atomic>
#include <fstream>
#include <moni/sdk.hpp>
#include <mutex>
#include <string>

class TestSink : public moni::Output {
 public:
  static constexpr std::string_view plugin_name = "test_sink";
  static constexpr std::string_view plugin_version = "0.0.2";
  static constexpr std::string_view plugin_description = "host test sink";
  static constexpr std::string_view sample_config = "# path = \"/tmp/out\"";

  TestSink(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "test_sink");
    path_ = r.required_string("path");
    route_ = r.string("route", "");
    probe_ = r.optional_string("probe_storage");
    labels_ = r.boolean("labels", false);
    r.finish();
  }
  moni::Result<void> start() override {
    // host_api.storage(): found only for a started storage instance; an
    // empty name finds the only one.
    if (probe_) storage_found_ = ctx_.storage(*probe_).has_value();
    if (!route_.empty()) {
      auto r = ctx_.route(route_, [this](const moni::HttpRequest&, moni::HttpResponse& resp) {
        resp.body(std::to_string(received_.load()) + " storage=" + (storage_found_ ? "1" : "0") +
                  "\n");
      });
      if (!r) return r;
    }
    return {};
  }
  moni::Result<void> write(const moni::BatchView& batch) override {
    std::lock_guard l(mu_);
    for (auto s : batch) {
      pending_ += s.name();
      if (labels_) {
        std::string ls;
        for (const auto& l : s.labels())
          if (moni::sv(l.name) != "__name__")
            ls += (ls.empty() ? "" : ",") + std::string(moni::sv(l.name)) + "=\"" +
                  std::string(moni::sv(l.value)) + "\"";
        pending_ += "{" + ls + "}";
      }
      pending_ += " " + std::to_string(s.value()) + "\n";
      received_++;
    }
    return {};
  }
  moni::Result<void> flush() override {
    std::lock_guard l(mu_);
    std::ofstream f(path_, std::ios::app);
    f << pending_;
    pending_.clear();
    if (!f) return moni::make_error("cannot write " + path_);
    return {};
  }
  void self_metrics(moni::Batch& out) override {
    out.describe("moni_test_sink_received_total", moni::MetricType::Counter, "Samples received.");
    out.add("moni_test_sink_received_total", {{"instance", ctx_.instance_name()}},
            static_cast<double>(received_.load()));
  }
  moni::Result<void> command(std::string_view, std::span<const std::string_view>) override {
    return moni::make_error("not a storage");
  }

 private:
  moni::Context& ctx_;
  std::string path_, route_, pending_;
  std::optional<std::string> probe_;
  bool storage_found_ = false;
  bool labels_ = false;
  std::mutex mu_;
  std::atomic<uint64_t> received_{0};
};

MONI_EXPORT_PLUGIN(TestSink)
