// arp: node_arp_entries{device}, the number of <procfs>/net/arp entries per
// interface (every line, as node_exporter 1.5 counts them).
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Arp : public SubCollector {
 public:
  explicit Arp(const Options& o) : filter_(o.arp_devices) { join(file_, o.procfs, "net/arp"); }

  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("arp", file_);
    next_line(text);  // header
    used_ = 0;
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view f[6];
      for (auto& x : f) x = next_field(line);
      if (f[5].empty()) continue;
      if (filter_.ignored(f[5])) continue;
      size_t i = 0;
      while (i < used_ && devs_[i].first != f[5]) ++i;
      if (i == used_) {
        if (used_ == devs_.size()) devs_.emplace_back();
        devs_[used_].first.assign(f[5]);
        devs_[used_++].second = 0;
      }
      devs_[i].second += 1;
    }
    if (used_ == 0) return {};
    describe(out, "node_arp_entries", MetricType::Gauge, "ARP entries by device");
    for (size_t i = 0; i < used_; ++i)
      add_sample(out, "node_arp_entries", {{"device", devs_[i].first}}, devs_[i].second);
    return {};
  }

 private:
  const NameFilter& filter_;
  std::string file_;
  std::vector<std::pair<std::string, double>> devs_;
  size_t used_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_arp(const Options& o) { return std::make_unique<Arp>(o); }
}  // namespace moni::node
