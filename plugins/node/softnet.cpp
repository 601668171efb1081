// softnet: node_softnet_{processed,dropped,times_squeezed}_total{cpu} from
// <procfs>/net/softnet_stat (hex columns; one line per CPU, labelled by its
// line number as node_exporter 1.5 does).
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Softnet : public SubCollector {
 public:
  explicit Softnet(const Options& o) { join(file_, o.procfs, "net/softnet_stat"); }

  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("softnet", file_);
    used_ = 0;
    while (!text.empty()) {
      std::string_view line = next_line(text);
      if (trim(line).empty()) continue;
      if (used_ == rows_.size()) rows_.emplace_back();
      Row& r = rows_[used_];
      for (double& v : r.v) {
        std::string_view f = next_field(line);
        uint64_t x = 0;
        if (!parse_hex_u64(f, x)) return make_error("softnet: malformed line in " + file_);
        v = static_cast<double>(x);
      }
      r.cpu = std::to_string(used_);
      ++used_;
    }
    static constexpr std::string_view kNames[] = {"node_softnet_processed_total",
                                                  "node_softnet_dropped_total",
                                                  "node_softnet_times_squeezed_total"};
    static constexpr std::string_view kHelp[] = {
        "Number of processed packets", "Number of dropped packets",
        "Number of times processing packets ran out of quota"};
    if (used_ == 0) return {};
    for (size_t c = 0; c < 3; ++c) {
      describe(out, kNames[c], MetricType::Counter, kHelp[c]);
      for (size_t i = 0; i < used_; ++i)
        add_sample(out, kNames[c], {{"cpu", rows_[i].cpu}}, rows_[i].v[c]);
    }
    return {};
  }

 private:
  struct Row {
    std::string cpu;
    double v[3] = {};
  };
  std::string file_;
  std::vector<Row> rows_;
  size_t used_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_softnet(const Options& o) {
  return std::make_unique<Softnet>(o);
}
}  // namespace moni::node
