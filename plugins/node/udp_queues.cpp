// udp_queues: node_udp_queues{ip,queue}, the bytes queued in the kernel for
// UDP sockets (sums of the tx_queue:rx_queue column of <procfs>/net/udp and
// udp6). A missing udp6 (IPv6 disabled) leaves out the v6 series; both
// missing fail the collector, as in node_exporter 1.5.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <cerrno>

namespace moni::node {
namespace {

class UdpQueues : public SubCollector {
 public:
  explicit UdpQueues(const Options& o) {
    join(v4_, o.procfs, "net/udp");
    join(v6_, o.procfs, "net/udp6");
  }

  Result<void> collect(Batch& out) override {
    double tx[2], rx[2];
    bool have[2];
    for (int i = 0; i < 2; ++i) {
      const std::string& path = i == 0 ? v4_ : v6_;
      std::string_view text;
      have[i] = reader_.read(path, text, true);
      if (!have[i]) {
        if (errno == ENOENT) continue;
        return io_error("udp_queues", path);
      }
      tx[i] = rx[i] = 0;
      next_line(text);  // header
      while (!text.empty()) {
        std::string_view line = next_line(text);
        std::string_view q;
        for (int k = 0; k < 5; ++k) q = next_field(line);  // sl local remote st tx:rx
        if (q.empty()) continue;
        size_t colon = q.find(':');
        uint64_t t, r;
        if (colon == std::string_view::npos || !parse_hex_u64(q.substr(0, colon), t) ||
            !parse_hex_u64(q.substr(colon + 1), r))
          return make_error("udp_queues: malformed line in " + path);
        tx[i] += static_cast<double>(t);
        rx[i] += static_cast<double>(r);
      }
    }
    if (!have[0] && !have[1]) return io_error("udp_queues", v4_);
    describe(out, "node_udp_queues", MetricType::Gauge,
             "Number of allocated memory in the kernel for UDP datagrams in bytes.");
    for (int i = 0; i < 2; ++i) {
      if (!have[i]) continue;
      std::string_view ip = i == 0 ? "v4" : "v6";
      add_sample(out, "node_udp_queues", {{"ip", ip}, {"queue", "tx"}}, tx[i]);
      add_sample(out, "node_udp_queues", {{"ip", ip}, {"queue", "rx"}}, rx[i]);
    }
    return {};
  }

 private:
  std::string v4_, v6_;
};

}  // namespace
std::unique_ptr<SubCollector> make_udp_queues(const Options& o) {
  return std::make_unique<UdpQueues>(o);
}
}  // namespace moni::node
