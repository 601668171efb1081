// An output for host tests: buffers what it receives and appends one line
// per sample ("name value", or "name{a=\"1\"} value" with labels = true) to
// `path` only on flush, so a test can tell
// whether the host flushed before stopping. Serves GET <route> with the
// number of samples received (and whether a probed storage was found).
// GET <thread_route> answers "<calls> <thread name>"; once GET
// <thread_route>/slow was called, it sleeps `slow` first: a fast route that
// turns slow. GET <urls_route> answers the host's listen URLs as seen in
// start(), one per line.
#include <atomic>
#include <chrono>
#include <fstream>
#include <moni/sdk.hpp>
#include <mutex>
#include <string>
#include <thread>

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
    thread_route_ = r.string("thread_route", "");
    slow_ms_ = r.duration_ms("slow", 0);
    urls_route_ = r.string("urls_route", "");
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
    if (!urls_route_.empty()) {
      std::string urls;
      for (const auto& u : ctx_.listen_urls()) urls += u + "\n";
      auto r = ctx_.route(urls_route_, [urls](const moni::HttpRequest&, moni::HttpResponse& resp) {
        resp.body(urls);
      });
      if (!r) return r;
    }
    if (!thread_route_.empty()) {
      auto r =
          ctx_.route(thread_route_, [this](const moni::HttpRequest&, moni::HttpResponse& resp) {
            int64_t n = ++calls_;
            if (slow_) std::this_thread::sleep_for(std::chrono::milliseconds(slow_ms_));
            std::ifstream comm("/proc/thread-self/comm");
            std::string name;
            std::getline(comm, name);
            resp.body(std::to_string(n) + " " + name + "\n");
          });
      if (!r) return r;
      r = ctx_.route(thread_route_ + "/slow",
                     [this](const moni::HttpRequest&, moni::HttpResponse& resp) {
                       slow_ = true;
                       resp.body("slow\n");
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
  std::string path_, route_, thread_route_, urls_route_, pending_;
  int64_t slow_ms_ = 0;
  std::atomic<int64_t> calls_{0};
  std::atomic<bool> slow_{false};
  std::optional<std::string> probe_;
  bool storage_found_ = false;
  bool labels_ = false;
  std::mutex mu_;
  std::atomic<uint64_t> received_{0};
};

MONI_EXPORT_PLUGIN(TestSink)
