// netdev: node_network_{receive,transmit}_*_total{device} from
// <procfs>/net/dev, plus receive_nohandler from
// <sysfs>/class/net/<dev>/statistics/rx_nohandler (node_exporter 1.5 reads
// it over netlink).
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

constexpr std::string_view kColumns[] = {
    "receive_bytes",   "receive_packets",  "receive_errs",   "receive_drop",
    "receive_fifo",    "receive_frame",    "receive_compressed", "receive_multicast",
    "transmit_bytes",  "transmit_packets", "transmit_errs",  "transmit_drop",
    "transmit_fifo",   "transmit_colls",   "transmit_carrier", "transmit_compressed"};
constexpr size_t kNoHandler = std::size(kColumns);  // one more column from sysfs
constexpr size_t kNumCols = kNoHandler + 1;

class Netdev : public SubCollector {
 public:
  explicit Netdev(const Options& o) : filter_(o.netdev_devices), sysfs_(o.sysfs) {
    join(file_, o.procfs, "net/dev");
  }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("netdev", file_);
    used_ = 0;
    next_line(text);  // two header lines
    next_line(text);
    while (!text.empty()) {
      std::string_view line = next_line(text);
      size_t colon = line.rfind(':');  // counters never contain ':'
      if (colon == std::string_view::npos) continue;
      std::string_view name = trim(line.substr(0, colon));
      if (name.empty() || filter_.ignored(name)) continue;
      if (used_ == devs_.size()) devs_.emplace_back();
      Dev& d = devs_[used_++];
      d.name.assign(name);
      std::string_view rest = line.substr(colon + 1);
      for (size_t i = 0; i < kNoHandler; ++i)
        if (!parse_double(next_field(rest), d.v[i]))
          return make_error("netdev: malformed line for " + d.name + " in " + file_);
      join(path_, sysfs_, "class/net/");
      path_.append(d.name).append("/statistics/rx_nohandler");
      uint64_t nh;
      // Kept open: a device that goes away fails the read and is looked up
      // by name again next time.
      d.has_nohandler = reader_.read_u64(path_, nh, true);
      d.v[kNoHandler] = static_cast<double>(nh);
    }
    reader_.sweep();  // closes the files of devices that are gone
    if (used_ == 0) return {};
    // Families in name order, like node_exporter's output.
    for (size_t col : order_) {
      bool described = false;
      for (size_t i = 0; i < used_; ++i) {
        const Dev& d = devs_[i];
        if (col == kNoHandler && !d.has_nohandler) continue;
        std::string_view stat = col == kNoHandler ? "receive_nohandler" : kColumns[col];
        if (!described) {
          name_.assign("node_network_").append(stat).append("_total");
          help_.assign("Network device statistic ").append(stat).append(".");
          describe(out, name_, MetricType::Counter, help_);
          described = true;
        }
        add_sample(out, name_, {{"device", d.name}}, d.v[col]);
      }
    }
    return {};
  }

 private:
  struct Dev {
    std::string name;
    double v[kNumCols] = {};
    bool has_nohandler = false;
  };
  const NameFilter& filter_;
  std::string sysfs_, file_, name_, help_;
  std::vector<Dev> devs_;
  size_t used_ = 0;
  static constexpr size_t order_[kNumCols] = {0, 6, 3, 2, 4, 5, 7, kNoHandler, 1,
                                              8, 14, 13, 15, 11, 10, 12, 9};
};

}  // namespace
std::unique_ptr<SubCollector> make_netdev(const Options& o) { return std::make_unique<Netdev>(o); }
}  // namespace moni::node
