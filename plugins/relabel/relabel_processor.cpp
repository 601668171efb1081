// The relabel processor: Prometheus relabel_configs applied to every sample
// of a pipeline's batches.
#include "relabel_rules.hpp"

#include <moni/sdk.hpp>

#include <atomic>

namespace {

/// Thread-safety: process() may run on several threads at once (flagged
/// MONI_PLUGIN_CONCURRENT_PROCESS): the rules are immutable after the
/// constructor (RE2 matching is const and thread-safe), the scratch label
/// set is per thread, and the counters are atomics (also for self_metrics()).
class RelabelProcessor : public moni::Processor {
 public:
  static constexpr uint64_t plugin_flags = MONI_PLUGIN_CONCURRENT_PROCESS;
  static constexpr std::string_view plugin_name = "relabel";
  static constexpr std::string_view plugin_version = MONI_VERSION_STRING;
  static constexpr std::string_view plugin_description =
      "Prometheus relabeling (replace, keep, drop, labelmap, labeldrop, labelkeep, hashmod, ...)";
  static constexpr std::string_view sample_config = R"TOML(# [[processors.<name>.relabel_configs]]
# source_labels = ["__name__"]   # joined with separator
# separator = ";"
# regex = "(.*)"                 # RE2, fully anchored
# action = "replace"             # replace keep drop keepequal dropequal hashmod
#                                # labelmap labeldrop labelkeep lowercase uppercase
# target_label = ""
# replacement = "$1"
# modulus = 0                    # hashmod only)TOML";

  RelabelProcessor(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "relabel[" + std::string(ctx.instance_name()) + "]");
    rules_ = moni::relabel::parse_rules(r, "relabel_configs");
    r.finish();
  }

  moni::Result<void> process(const moni::BatchView& in, moni::Batch& out) override {
    for (const auto& m : in.metadata())
      out.describe(moni::sv(m.family), static_cast<moni::MetricType>(m.type), moni::sv(m.help),
                   moni::sv(m.unit));
    size_t dropped = 0;
    // Per thread, so that concurrent calls share nothing and a warm thread
    // allocates nothing per sample.
    thread_local moni::relabel::LabelSet ls;
    thread_local std::vector<moni::LabelRef> refs;
    for (const auto& s : in.samples()) {
      ls.resize(s.label_count);
      for (uint32_t i = 0; i < s.label_count; ++i) {
        ls[i].name.assign(moni::sv(s.labels[i].name));
        ls[i].value.assign(moni::sv(s.labels[i].value));
      }
      if (!moni::relabel::apply(rules_, ls) ||
          !std::binary_search(ls.begin(), ls.end(), moni::Label{"__name__", {}},
                              [](const moni::Label& a, const moni::Label& b) { return a.name < b.name; })) {
        ++dropped;
        continue;
      }
      refs.clear();
      for (const auto& l : ls) refs.push_back({l.name, l.value});
      out.add_sorted(refs, s.value, s.timestamp_ms);
    }
    in_ += in.size();
    dropped_ += dropped;
    return {};
  }

  void self_metrics(moni::Batch& out) override {
    std::string_view inst = ctx_.instance_name();
    out.describe("moni_relabel_samples_in_total", moni::MetricType::Counter,
                 "Samples received by the relabel processor.");
    out.add("moni_relabel_samples_in_total", {{"instance_name", inst}},
            static_cast<double>(in_.load()));
    out.describe("moni_relabel_samples_dropped_total", moni::MetricType::Counter,
                 "Samples dropped by keep/drop rules or left without a metric name.");
    out.add("moni_relabel_samples_dropped_total", {{"instance_name", inst}},
            static_cast<double>(dropped_.load()));
  }

 private:
  moni::Context& ctx_;
  std::vector<moni::relabel::Rule> rules_;  // not modified after the constructor
  std::atomic<uint64_t> in_{0}, dropped_{0};
};

}  // namespace

MONI_EXPORT_PLUGIN(RelabelProcessor)
