// cpufreq: node_cpu_{,scaling_}frequency{,_min,_max}_hertz from
// <sysfs>/devices/system/cpu/cpuN/cpufreq, where the kernel has them.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace moni::node {
namespace {

struct Family {
  std::string_view file, name, help;
};
constexpr Family kFamilies[] = {
    {"cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current cpu thread frequency in hertz."},
    {"cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz."},
    {"cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz."},
    {"scaling_cur_freq", "node_cpu_scaling_frequency_hertz",
     "Current scaled cpu thread frequency in hertz."},
    {"scaling_max_freq", "node_cpu_scaling_frequency_max_hertz",
     "Maximum scaled cpu thread frequency in hertz."},
    {"scaling_min_freq", "node_cpu_scaling_frequency_min_hertz",
     "Minimum scaled cpu thread frequency in hertz."},
};
constexpr size_t kN = std::size(kFamilies);

class Cpufreq : public SubCollector {
 public:
  explicit Cpufreq(const Options& o) {
    join(dir_, o.sysfs, "devices/system/cpu");
    join(present_, dir_, "present");
  }
  Result<void> collect(Batch& out) override {
    // The cpuN directories are those of the present CPUs: while
    // <cpu>/present reads the same, the last listing stands (a small sysfs
    // read instead of reading the whole directory). Without the file
    // (older kernels, fixture trees) the directory is listed every time.
    std::string_view present;
    bool same_cpus =
        reader_.read(present_, present, true) && listed_ && present == last_present_;
    if (!same_cpus) {
      last_present_.assign(present);
      listed_ = false;
      used_ = 0;
      if (!dirs_.list(dir_, [&](std::string_view name) {
            uint64_t id;
            if (name.size() <= 3 || !starts_with(name, "cpu") || !parse_u64(name.substr(3), id))
              return;
            if (used_ == cpus_.size()) cpus_.emplace_back();
            cpus_[used_++].name.assign(name.substr(3));
          }, true))
        return io_error("cpufreq", dir_);
      listed_ = !present.empty();
    }
    for (size_t c = 0; c < used_; ++c) {
      auto& cpu = cpus_[c];
      rel_.assign("cpu").append(cpu.name).append("/cpufreq");
      // Relative to the directory just listed: a two-component lookup
      // instead of a walk from the root (a VM without a cpufreq driver pays
      // this for every CPU on every cycle).
      int dfd = dirs_.fd();
      int rc = dfd >= 0 ? ::faccessat(dfd, rel_.c_str(), F_OK, 0)
                        : ::access(join(path_, dir_, rel_).c_str(), F_OK);
      if (rc != 0) {  // no driver: one syscall, not six
        for (bool& h : cpu.has) h = false;
        continue;
      }
      for (size_t f = 0; f < kN; ++f) {
        join(path_, dir_, "cpu");
        path_.append(cpu.name).append("/cpufreq/").append(kFamilies[f].file);
        uint64_t khz;
        cpu.has[f] = reader_.read_u64(path_, khz);
        cpu.hz[f] = static_cast<double>(khz) * 1000.0;
        // Absent files (no cpufreq driver, or cpuinfo_cur_freq readable by
        // root only) are skipped like node_exporter does.
      }
    }
    for (size_t f = 0; f < kN; ++f) {
      bool described = false;
      for (size_t c = 0; c < used_; ++c) {
        if (!cpus_[c].has[f]) continue;
        if (!described) describe(out, kFamilies[f].name, MetricType::Gauge, kFamilies[f].help);
        described = true;
        add_sample(out, kFamilies[f].name, {{"cpu", cpus_[c].name}}, cpus_[c].hz[f]);
      }
    }
    return {};
  }

 private:
  struct CpuFreq {
    std::string name;
    double hz[kN] = {};
    bool has[kN] = {};
  };
  std::string dir_, rel_, present_, last_present_;
  bool listed_ = false;  // cpus_ holds the listing made while present read last_present_
  DirLister dirs_;
  std::vector<CpuFreq> cpus_;
  size_t used_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_cpufreq(const Options& o) { return std::make_unique<Cpufreq>(o); }
}  // namespace moni::node
