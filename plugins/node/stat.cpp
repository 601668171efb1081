// stat: boot time, context switches, forks, interrupts and process counts
// from <procfs>/stat.
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

struct Field {
  std::string_view key, name;
  MetricType type;
  std::string_view help;
};
constexpr Field kFields[] = {
    {"btime", "node_boot_time_seconds", MetricType::Gauge, "Node boot time, in unixtime."},
    {"ctxt", "node_context_switches_total", MetricType::Counter,
     "Total number of context switches."},
    {"processes", "node_forks_total", MetricType::Counter, "Total number of forks."},
    {"intr", "node_intr_total", MetricType::Counter, "Total number of interrupts serviced."},
    {"procs_blocked", "node_procs_blocked", MetricType::Gauge,
     "Number of processes blocked waiting for I/O to complete."},
    {"procs_running", "node_procs_running", MetricType::Gauge,
     "Number of processes in runnable state."},
};

class Stat : public SubCollector {
 public:
  explicit Stat(const Options& o) {
    join(file_, o.procfs, "stat");
    stat_ = o.proc_stat ? o.proc_stat : std::make_shared<CycleFile>(file_);
  }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!stat_->read(text)) return io_error("stat", file_);
    double values[std::size(kFields)];
    bool seen[std::size(kFields)] = {};
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line);
      for (size_t i = 0; i < std::size(kFields); ++i) {
        if (key != kFields[i].key) continue;
        if (!parse_double(next_field(line), values[i]))
          return make_error("stat: invalid " + std::string(key) + " in " + file_);
        seen[i] = true;
      }
    }
    for (size_t i = 0; i < std::size(kFields); ++i) {
      if (!seen[i]) return make_error("stat: no " + std::string(kFields[i].key) + " in " + file_);
      describe(out, kFields[i].name, kFields[i].type, kFields[i].help);
      add_sample(out, kFields[i].name, {}, values[i]);
    }
    return {};
  }

 private:
  std::shared_ptr<CycleFile> stat_;  // shared with the other reader of <procfs>/stat
  std::string file_;
};

}  // namespace
std::unique_ptr<SubCollector> make_stat(const Options& o) { return std::make_unique<Stat>(o); }
}  // namespace moni::node
