// loadavg: node_load1/5/15 from <procfs>/loadavg.
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Loadavg : public SubCollector {
 public:
  explicit Loadavg(const Options& o) { join(file_, o.procfs, "loadavg"); }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("loadavg", file_);
    static constexpr std::string_view names[] = {"node_load1", "node_load5", "node_load15"};
    static constexpr std::string_view helps[] = {"1m load average.", "5m load average.",
                                                 "15m load average."};
    double v[3];
    for (double& x : v)
      if (!parse_double(next_field(text), x)) return make_error("loadavg: malformed " + file_);
    for (int i = 0; i < 3; ++i) {
      describe(out, names[i], MetricType::Gauge, helps[i]);
      add_sample(out, names[i], {}, v[i]);
    }
    return {};
  }

 private:
  std::string file_;
};

}  // namespace
std::unique_ptr<SubCollector> make_loadavg(const Options& o) { return std::make_unique<Loadavg>(o); }
}  // namespace moni::node
