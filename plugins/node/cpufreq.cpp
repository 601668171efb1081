// cpufreq: node_cpu_{,scaling_}frequency{,_min,_max}_hertz from
// <sysfs>/devices/system/cpu/cpuN/cpufreq, where the kernel has them.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/utsname.h>
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
    join(policies_, dir_, "cpufreq");
    policy_layout_ = kernel_has_policy_dirs();
  }
  ~Cpufreq() override {
    if (policies_fd_ >= 0) ::close(policies_fd_);
  }
  Result<void> collect(Batch& out) override {
    // The cpuN directories are listed again only when the directory's link
    // count changed (a CPU was added or removed: a subdirectory more or
    // less), an fstat of the kept descriptor instead of reading the
    // directory. Where the count says nothing it is listed every time.
    unsigned long cpu_links = dir_links(dirs_.fd());
    bool same_cpus = cpu_links != 0 && cpu_links == listed_links_;
    // Counts are taken before looking: what appears while we look changes
    // them for the next cycle.
    unsigned long policy_links = policy_layout_ ? dir_links(policies_fd()) : 0;
    if (!same_cpus) {
      listed_links_ = 0;
      used_ = 0;
      if (!dirs_.list(dir_, [&](std::string_view name) {
            uint64_t id;
            if (name.size() <= 3 || !starts_with(name, "cpu") || !parse_u64(name.substr(3), id))
              return;
            if (used_ == cpus_.size()) cpus_.emplace_back();
            cpus_[used_++].name.assign(name.substr(3));
          }, true))
        return io_error("cpufreq", dir_);
      listed_links_ = cpu_links;  // 0 (not open before the first listing): list again
    }
    // Without a cpufreq driver no cpuN/cpufreq exists, and looking for it
    // costs one path lookup per CPU per cycle. Since Linux 4.4 a driver's
    // policies are directories under cpu/cpufreq/ (cpuN/cpufreq links to
    // one), so that directory's link count changes when one appears: while
    // it and the CPUs are as they were when no CPU had cpufreq, none has.
    bool no_driver = policy_links != 0 && same_cpus && none_ && policy_links == none_links_;
    bool any = false;
    for (size_t c = 0; c < used_ && !no_driver; ++c) {
      auto& cpu = cpus_[c];
      rel_.assign("cpu").append(cpu.name).append("/cpufreq");
      // Relative to the directory just listed: a two-component lookup
      // instead of a walk from the root.
      int dfd = dirs_.fd();
      int rc = dfd >= 0 ? ::faccessat(dfd, rel_.c_str(), F_OK, 0)
                        : ::access(join(path_, dir_, rel_).c_str(), F_OK);
      if (rc != 0) {  // no driver: one syscall, not six
        for (bool& h : cpu.has) h = false;
        continue;
      }
      any = true;
      for (size_t f = 0; f < kN; ++f) {
        join(path_, dir_, "cpu");
        path_.append(cpu.name).append("/cpufreq/").append(kFamilies[f].file);
        uint64_t khz;
        // Kept open (sysfs attributes of a policy, re-read with pread, no
        // path walk): a policy that goes away fails the read, which drops
        // the descriptor, and the sweep below closes those of CPUs whose
        // cpufreq directory is gone.
        cpu.has[f] = reader_.read_u64(path_, khz, true);
        cpu.hz[f] = static_cast<double>(khz) * 1000.0;
        // Absent files (no cpufreq driver, or cpuinfo_cur_freq readable by
        // root only) are skipped like node_exporter does.
      }
    }
    if (!no_driver) {  // (with no_driver every cpus_[c].has is still false)
      none_ = !any;
      none_links_ = policy_links;
      if (any || read_any_) reader_.sweep();
      read_any_ = any;
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

  // Whether this kernel keeps cpufreq policies in cpu/cpufreq/policyN
  // (Linux 4.4 on; before, a policy was a directory inside one cpuN).
  static bool kernel_has_policy_dirs() {
    struct utsname u;
    if (::uname(&u) != 0) return false;
    std::string_view r(u.release);
    size_t dot = r.find('.');
    uint64_t major = 0, minor = 0;
    if (dot == std::string_view::npos || !parse_u64(r.substr(0, dot), major)) return false;
    r.remove_prefix(dot + 1);
    size_t end = 0;
    while (end < r.size() && r[end] >= '0' && r[end] <= '9') ++end;
    if (!parse_u64(r.substr(0, end), minor)) return false;
    return major > 4 || (major == 4 && minor >= 4);
  }

  // cpu/cpufreq, kept open once it exists.
  int policies_fd() {
    if (policies_fd_ < 0)
      policies_fd_ = ::open(policies_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return policies_fd_;
  }

  std::string dir_, rel_, policies_;
  DirLister dirs_;
  std::vector<CpuFreq> cpus_;
  size_t used_ = 0;
  unsigned long listed_links_ = 0;  // cpu/'s link count when cpus_ was listed; 0: list again
  bool policy_layout_ = false;
  int policies_fd_ = -1;
  bool none_ = false;        // the last look found cpufreq for no CPU...
  unsigned long none_links_ = 0;   // ...while cpu/cpufreq had this link count
  bool read_any_ = false;    // frequency files were read last cycle
};

}  // namespace
std::unique_ptr<SubCollector> make_cpufreq(const Options& o) { return std::make_unique<Cpufreq>(o); }
}  // namespace moni::node
