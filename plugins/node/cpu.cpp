// cpu: node_cpu_seconds_total{cpu,mode} and node_cpu_guest_seconds_total
// from the per-CPU lines of <procfs>/stat. Like node_exporter, counters that
// jump backwards (a kernel quirk with NO_HZ) keep their previous value, and a
// large backwards jump of idle is taken as a CPU hotplug that resets it.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <unistd.h>

namespace moni::node {
namespace {

constexpr std::string_view kModes[] = {"user", "nice",    "system",  "idle",
                                       "iowait", "irq",  "softirq", "steal"};
constexpr size_t kStatFields = 10;  // the 8 modes, guest, guest_nice
constexpr double kJumpBackSeconds = 3.0;

class Cpu : public SubCollector {
 public:
  explicit Cpu(const Options& o) : guest_(o.cpu_guest) {
    join(file_, o.procfs, "stat");
    stat_ = o.proc_stat ? o.proc_stat : std::make_shared<CycleFile>(file_);
    long hz = ::sysconf(_SC_CLK_TCK);
    user_hz_ = hz > 0 ? static_cast<double>(hz) : 100.0;
  }

  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!stat_->read(text)) return io_error("cpu", file_);
    for (auto& c : cpus_) c.present = false;
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line);
      if (key.size() <= 3 || !starts_with(key, "cpu")) continue;
      uint64_t id;
      if (!parse_u64(key.substr(3), id) || id > 65535)
        return make_error("cpu: invalid cpu line in " + file_);
      double v[kStatFields] = {};
      for (size_t i = 0; i < kStatFields; ++i) {
        std::string_view f = next_field(line);
        if (f.empty()) break;  // old kernels have fewer columns
        uint64_t ticks;
        if (!parse_u64(f, ticks)) return make_error("cpu: invalid value in " + file_);
        v[i] = static_cast<double>(ticks) / user_hz_;
      }
      if (id >= cpus_.size()) cpus_.resize(id + 1);
      update(cpus_[id], v);
    }

    describe(out, "node_cpu_seconds_total", MetricType::Counter,
                 "Seconds the CPUs spent in each mode.");
    for (size_t id = 0; id < cpus_.size(); ++id) {
      if (!cpus_[id].present) continue;
      label_of(id);
      for (size_t m = 0; m < std::size(kModes); ++m)
        add_sample(out, "node_cpu_seconds_total", {{"cpu", label_}, {"mode", kModes[m]}},
                cpus_[id].v[m]);
    }
    if (guest_) {
      describe(out, "node_cpu_guest_seconds_total", MetricType::Counter,
                   "Seconds the CPUs spent in guests (VMs) for each mode.");
      for (size_t id = 0; id < cpus_.size(); ++id) {
        if (!cpus_[id].present) continue;
        label_of(id);
        add_sample(out, "node_cpu_guest_seconds_total", {{"cpu", label_}, {"mode", "user"}},
                cpus_[id].v[8]);
        add_sample(out, "node_cpu_guest_seconds_total", {{"cpu", label_}, {"mode", "nice"}},
                cpus_[id].v[9]);
      }
    }
    return {};
  }

 private:
  std::shared_ptr<CycleFile> stat_;  // shared with the other reader of <procfs>/stat
  struct CpuState {
    double v[kStatFields] = {};
    bool seen = false;
    bool present = false;
  };

  static void update(CpuState& s, const double (&v)[kStatFields]) {
    s.present = true;
    if (!s.seen || s.v[3] - v[3] > kJumpBackSeconds) {
      for (size_t i = 0; i < kStatFields; ++i) s.v[i] = v[i];
      s.seen = true;
      return;
    }
    for (size_t i = 0; i < kStatFields; ++i)
      if (v[i] >= s.v[i]) s.v[i] = v[i];
  }

  void label_of(size_t id) {
    char buf[8];
    auto r = std::to_chars(buf, buf + sizeof buf, id);
    label_.assign(buf, r.ptr);
  }

  bool guest_;
  double user_hz_;
  std::string file_, label_;
  std::vector<CpuState> cpus_;
};

}  // namespace
std::unique_ptr<SubCollector> make_cpu(const Options& o) { return std::make_unique<Cpu>(o); }
}  // namespace moni::node
