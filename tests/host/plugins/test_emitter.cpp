// A collector for the concurrent-delivery tests: emits `batches` batches of
// `samples` samples from each of `threads` threads at once (ABI 1.2), or
// from its own thread on an older host. Each sample is
// emitted{thread="k",batch="j",n="i"}, so a test can tell what arrived.
#include <latch>
#include <moni/sdk.hpp>
#include <string>
#include <thread>
#include <vector>

class TestEmitter : public moni::Collector {
 public:
  static constexpr std::string_view plugin_name = "test_emitter";
  static constexpr std::string_view plugin_version = "0.0.1";
  static constexpr std::string_view plugin_description = "emits from several threads";
  static constexpr std::string_view sample_config = "# threads = 4";

  TestEmitter(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "test_emitter");
    threads_ = static_cast<int>(r.integer("threads", 4, 1));
    batches_ = static_cast<int>(r.integer("batches", 3, 1));
    samples_ = static_cast<int>(r.integer("samples", 10, 1));
    r.finish();
  }

  moni::Result<void> collect(moni::Batch& out) override {
    std::atomic<bool> refused{false};
    auto emit_all = [&](int k, moni::Batch& b) {
      for (int j = 0; j < batches_; ++j) {
        for (int i = 0; i < samples_; ++i)
          b.add("emitted",
                {{"thread", std::to_string(k)}, {"batch", std::to_string(j)},
                 {"n", std::to_string(i)}},
                static_cast<double>(i));
        if (!b.emit()) refused = true;
      }
    };
    if (!ctx_.concurrent_emit()) {
      for (int k = 0; k < threads_; ++k) emit_all(k, out);
    } else {
      std::latch go(threads_);  // all threads start emitting together
      std::vector<std::thread> ts;
      for (int k = 0; k < threads_; ++k)
        ts.emplace_back([&, k] {
          moni::Batch b;
          b.share_emitter(out);
          go.arrive_and_wait();
          emit_all(k, b);
        });
      for (auto& t : ts) t.join();
    }
    if (refused) return moni::make_error("the host refused a batch");
    return {};
  }

 private:
  moni::Context& ctx_;
  int threads_, batches_, samples_;
};

MONI_EXPORT_PLUGIN(TestEmitter)
