// selinux: node_selinux_enabled, and when enabled node_selinux_config_mode
// (SELINUX= of <rootfs>/etc/selinux/config: 1 enforcing, 0 permissive,
// -1 disabled) and node_selinux_current_mode (<sysfs>/fs/selinux/enforce).
// Enabled means selinuxfs answers at <sysfs>/fs/selinux (node_exporter 1.5
// asks libselinux's Go port, which also looks for other selinuxfs mounts).
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Selinux : public SubCollector {
 public:
  explicit Selinux(const Options& o) {
    join(enforce_, o.sysfs, "fs/selinux/enforce");
    join(config_, o.rootfs, "etc/selinux/config");
  }

  Result<void> collect(Batch& out) override {
    uint64_t enforce = 0;
    bool enabled = reader_.read_u64(enforce_, enforce);
    describe(out, "node_selinux_enabled", MetricType::Gauge,
             "SELinux is enabled, 1 is true, 0 is false");
    add_sample(out, "node_selinux_enabled", {}, enabled ? 1.0 : 0.0);
    if (!enabled) return {};
    double mode = -1;  // no config file: disabled, as libselinux reads it
    std::string_view text;
    if (reader_.read(config_, text)) {
      while (!text.empty()) {
        std::string_view line = trim(next_line(text));
        if (!starts_with(line, "SELINUX=")) continue;
        std::string_view v = trim(line.substr(8));
        mode = v == "enforcing" ? 1 : v == "permissive" ? 0 : -1;
      }
    }
    describe(out, "node_selinux_config_mode", MetricType::Gauge,
             "Configured SELinux enforcement mode");
    add_sample(out, "node_selinux_config_mode", {}, mode);
    describe(out, "node_selinux_current_mode", MetricType::Gauge,
             "Current SELinux enforcement mode");
    add_sample(out, "node_selinux_current_mode", {}, enforce == 1 ? 1.0 : 0.0);
    return {};
  }

 private:
  std::string enforce_, config_;
};

}  // namespace
std::unique_ptr<SubCollector> make_selinux(const Options& o) {
  return std::make_unique<Selinux>(o);
}
}  // namespace moni::node
