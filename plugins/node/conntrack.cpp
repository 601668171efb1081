// conntrack: node_nf_conntrack_entries{,_limit} from
// <procfs>/sys/net/netfilter and the node_nf_conntrack_stat_* sums over
// CPUs of <procfs>/net/stat/nf_conntrack. Without the netfilter module the
// files are missing and the collector fails, as node_exporter's does.
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

struct Stat {
  std::string_view column, metric, help;
};
constexpr Stat kStats[] = {
    {"drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."},
    {"early_drop", "node_nf_conntrack_stat_early_drop",
     "Number of dropped conntrack entries to make room for new ones, if maximum table size was "
     "reached."},
    {"found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful."},
    {"ignore", "node_nf_conntrack_stat_ignore",
     "Number of packets seen which are already connected to a conntrack entry."},
    {"insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."},
    {"insert_failed", "node_nf_conntrack_stat_insert_failed",
     "Number of entries for which list insertion was attempted but failed."},
    {"invalid", "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."},
    {"search_restart", "node_nf_conntrack_stat_search_restart",
     "Number of conntrack table lookups which had to be restarted due to hashtable resizes."},
};
constexpr size_t kNumStats = std::size(kStats);

class Conntrack : public SubCollector {
 public:
  explicit Conntrack(const Options& o) {
    join(count_, o.procfs, "sys/net/netfilter/nf_conntrack_count");
    join(max_, o.procfs, "sys/net/netfilter/nf_conntrack_max");
    join(stat_, o.procfs, "net/stat/nf_conntrack");
  }

  Result<void> collect(Batch& out) override {
    uint64_t count, max;
    if (!reader_.read_u64(count_, count, true)) return io_error("conntrack", count_);
    describe(out, "node_nf_conntrack_entries", MetricType::Gauge,
             "Number of currently allocated flow entries for connection tracking.");
    add_sample(out, "node_nf_conntrack_entries", {}, static_cast<double>(count));
    if (!reader_.read_u64(max_, max, true)) return io_error("conntrack", max_);
    describe(out, "node_nf_conntrack_entries_limit", MetricType::Gauge,
             "Maximum size of connection tracking table.");
    add_sample(out, "node_nf_conntrack_entries_limit", {}, static_cast<double>(max));

    std::string_view text;
    if (!reader_.read(stat_, text, true)) return io_error("conntrack", stat_);
    // The header names the columns (their set differs between kernels).
    std::string_view header = next_line(text);
    int col[kNumStats];
    for (size_t s = 0; s < kNumStats; ++s) col[s] = -1;
    int idx = 0;
    for (std::string_view f = next_field(header); !f.empty(); f = next_field(header), ++idx)
      for (size_t s = 0; s < kNumStats; ++s)
        if (f == kStats[s].column) col[s] = idx;
    uint64_t sum[kNumStats] = {};
    while (!text.empty()) {
      std::string_view line = next_line(text);
      if (trim(line).empty()) continue;
      uint64_t vals[64];
      int n = 0;
      for (std::string_view f = next_field(line); !f.empty() && n < 64; f = next_field(line)) {
        if (!parse_hex_u64(f, vals[n])) return make_error("conntrack: malformed line in " + stat_);
        ++n;
      }
      for (size_t s = 0; s < kNumStats; ++s)
        if (col[s] >= 0 && col[s] < n) sum[s] += vals[col[s]];
    }
    for (size_t s = 0; s < kNumStats; ++s) {
      if (col[s] < 0) continue;
      describe(out, kStats[s].metric, MetricType::Gauge, kStats[s].help);
      add_sample(out, kStats[s].metric, {}, static_cast<double>(sum[s]));
    }
    return {};
  }

 private:
  std::string count_, max_, stat_;
};

}  // namespace
std::unique_ptr<SubCollector> make_conntrack(const Options& o) {
  return std::make_unique<Conntrack>(o);
}
}  // namespace moni::node
