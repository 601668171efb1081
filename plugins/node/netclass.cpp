// netclass: the attributes of each network interface in <sysfs>/class/net
// as node_exporter 1.5's node_network_{up,info,mtu_bytes,speed_bytes,
// carrier*,flags,...}. An attribute the kernel refuses to give (carrier of
// a down link, speed of a virtual one) is left out for that interface.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <sys/stat.h>
#include <unordered_map>
#include <unistd.h>

namespace moni::node {
namespace {

struct Attr {
  std::string_view file, metric;
  MetricType type;
};
// In metric name order, as node_exporter's output.
constexpr Attr kAttrs[] = {
    {"addr_assign_type", "node_network_address_assign_type", MetricType::Gauge},
    {"carrier", "node_network_carrier", MetricType::Gauge},
    {"carrier_changes", "node_network_carrier_changes_total", MetricType::Counter},
    {"carrier_down_count", "node_network_carrier_down_changes_total", MetricType::Counter},
    {"carrier_up_count", "node_network_carrier_up_changes_total", MetricType::Counter},
    {"dev_id", "node_network_device_id", MetricType::Gauge},
    {"dormant", "node_network_dormant", MetricType::Gauge},
    {"flags", "node_network_flags", MetricType::Gauge},
    {"ifindex", "node_network_iface_id", MetricType::Gauge},
    {"iflink", "node_network_iface_link", MetricType::Gauge},
    {"link_mode", "node_network_iface_link_mode", MetricType::Gauge},
    {"mtu", "node_network_mtu_bytes", MetricType::Gauge},
    {"name_assign_type", "node_network_name_assign_type", MetricType::Gauge},
    {"netdev_group", "node_network_net_dev_group", MetricType::Gauge},
    {"type", "node_network_protocol_type", MetricType::Gauge},
    {"speed", "node_network_speed_bytes", MetricType::Gauge},
    {"tx_queue_len", "node_network_transmit_queue_length", MetricType::Gauge},
};
constexpr size_t kNumAttrs = std::size(kAttrs);
constexpr size_t kSpeed = 15;
constexpr std::string_view kInfo[] = {"address", "broadcast", "duplex", "ifalias", "operstate"};
constexpr size_t kNumInfo = std::size(kInfo);

// An integer as Go's strconv.ParseInt(s, 0, 64) reads it: 0x.. hex,
// 0.. octal, decimal otherwise, optional sign.
bool parse_int_auto(std::string_view s, int64_t& out) {
  char tmp[32];
  if (s.empty() || s.size() >= sizeof tmp) return false;
  s.copy(tmp, s.size());
  tmp[s.size()] = 0;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(tmp, &end, 0);
  if (errno != 0 || end != tmp + s.size()) return false;
  out = v;
  return true;
}

class Netclass : public SubCollector {
 public:
  explicit Netclass(const Options& o)
      : ignored_(o.netclass_ignored_devices), ignore_invalid_speed_(o.netclass_ignore_invalid_speed) {
    join(dir_, o.sysfs, "class/net");
  }

  ~Netclass() override {
    for (auto& [name, k] : open_) k.close_all();
  }

  Result<void> collect(Batch& out) override {
    ++cycle_;
    names_.clear();
    if (!dirs_.list(dir_, [&](std::string_view n) { names_.emplace_back(n); }))
      return io_error("netclass", dir_);
    std::sort(names_.begin(), names_.end());
    used_ = 0;
    for (const auto& n : names_) {
      if (!ignored_.empty() && ignored_.matches(n)) continue;
      join(path_, dir_, n);
      Kept& k = open_[n];
      k.cycle = cycle_;
      if (k.not_iface) continue;
      k.vanished = false;
      if (used_ == devs_.size()) devs_.emplace_back();
      Dev& d = devs_[used_];
      d.name = n;
      // A kept file of a device that went away (and maybe came back under
      // the same name) reads ENODEV: start over with fresh descriptors.
      if (!read_device(k, d) && !k.not_iface) {
        k.close_all();
        read_device(k, d);
      }
      if (k.dir >= 0) {
        ::close(k.dir);
        k.dir = -1;
      }
      if (!k.not_iface && !k.vanished) ++used_;
    }
    // Interfaces no longer listed: their descriptors are closed.
    for (auto it = open_.begin(); it != open_.end();) {
      if (it->second.cycle == cycle_) {
        ++it;
        continue;
      }
      it->second.close_all();
      it = open_.erase(it);
    }
    for (size_t a = 0; a < kNumAttrs; ++a) {
      if (a == kSpeed) emit_info_and_up(out);  // node_network_info sorts before mtu
      bool described = false;
      for (size_t i = 0; i < used_; ++i) {
        const Dev& d = devs_[i];
        if (!d.has[a]) continue;
        double v = d.v[a];
        if (a == kSpeed) {
          if (v < 0 && ignore_invalid_speed_) continue;
          v = static_cast<double>(static_cast<int64_t>(d.v[a]) * 1000 * 1000 / 8);  // Mbit/s
        }
        if (!described) {
          help_.assign("Network device property: ").append(kAttrs[a].metric.substr(13));
          describe(out, kAttrs[a].metric, kAttrs[a].type, help_);
          described = true;
        }
        add_sample(out, kAttrs[a].metric, {{"device", d.name}}, v);
      }
    }
    return {};
  }

 private:
  struct Dev {
    std::string name;
    double v[kNumAttrs] = {};
    bool has[kNumAttrs] = {};
    std::string info[kNumInfo];
  };

  static constexpr size_t kNumFiles = kNumAttrs + kNumInfo;
  // The attribute files of one interface, kept open and re-read with
  // pread (sysfs regenerates them; no path walk). A file that does not
  // exist is not looked for again until the interface is re-created.
  struct Kept {
    int dir = -1;
    int fd[kNumFiles];
    bool absent[kNumFiles] = {};
    bool not_iface = false;
    bool vanished = false;
    uint64_t cycle = 0;
    Kept() {
      for (int& f : fd) f = -1;
    }
    void close_all() {
      for (int& f : fd) {
        if (f >= 0) ::close(f);
        f = -1;
      }
      for (bool& a : absent) a = false;
      if (dir >= 0) ::close(dir);
      dir = -1;
    }
  };

  // Reads file `i` of the interface at path_; false when it is missing or
  // the kernel refuses it (EINVAL: carrier of a down link). Sets `gone`
  // when a kept descriptor's device went away.
  bool read_file(Kept& k, size_t i, std::string_view& out, bool& gone) {
    std::string_view name = i < kNumAttrs ? kAttrs[i].file : kInfo[i - kNumAttrs];
    if (k.fd[i] < 0) {
      if (k.absent[i]) return false;
      if (k.dir < 0) {
        // bonding_masters and other regular files are not interfaces.
        k.dir = ::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (k.dir < 0) {
          if (errno == ENOTDIR) k.not_iface = true;
          else k.vanished = true;  // removed since the listing
          return false;
        }
      }
      char rel[64];
      name.copy(rel, name.size());
      rel[name.size()] = 0;
      k.fd[i] = ::openat(k.dir, rel, O_RDONLY | O_CLOEXEC);
      if (k.fd[i] < 0) {
        k.absent[i] = true;
        return false;
      }
    }
    ssize_t n;
    do n = ::pread(k.fd[i], buf_, sizeof buf_, 0); while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == ENODEV || errno == ENOENT) gone = true;
      return false;
    }
    std::string_view text(buf_, static_cast<size_t>(n));
    out = trim(text.substr(0, text.find('\n')));
    return true;
  }

  // Fills `d` from its files; false when a kept descriptor's device is gone.
  bool read_device(Kept& k, Dev& d) {
    bool gone = false;
    std::string_view line;
    for (size_t a = 0; a < kNumAttrs; ++a) {
      int64_t v = 0;
      d.has[a] = read_file(k, a, line, gone) && parse_int_auto(line, v);
      d.v[a] = static_cast<double>(v);
      if (k.not_iface || k.vanished) return true;
    }
    for (size_t i = 0; i < kNumInfo; ++i) {
      if (read_file(k, kNumAttrs + i, line, gone)) d.info[i].assign(line);
      else d.info[i].clear();
    }
    return !gone;
  }

  void emit_info_and_up(Batch& out) {
    if (used_ == 0) return;
    describe(out, "node_network_info", MetricType::Gauge,
             "Non-numeric data from /sys/class/net/<iface>, value is always 1.");
    for (size_t i = 0; i < used_; ++i) {
      const Dev& d = devs_[i];
      add_sample(out, "node_network_info",
                 {{"address", d.info[0]},
                  {"broadcast", d.info[1]},
                  {"device", d.name},
                  {"duplex", d.info[2]},
                  {"ifalias", d.info[3]},
                  {"operstate", d.info[4]}},
                 1.0);
    }
    describe(out, "node_network_up", MetricType::Gauge,
             "Value is 1 if operstate is 'up', 0 otherwise.");
    for (size_t i = 0; i < used_; ++i)
      add_sample(out, "node_network_up", {{"device", devs_[i].name}},
                 devs_[i].info[4] == "up" ? 1.0 : 0.0);
  }

  const Pattern& ignored_;
  bool ignore_invalid_speed_;
  std::string dir_, help_;
  DirLister dirs_;
  std::vector<std::string> names_;
  std::vector<Dev> devs_;
  size_t used_ = 0;
  char buf_[4096];
  std::unordered_map<std::string, Kept> open_;
  uint64_t cycle_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_netclass(const Options& o) {
  return std::make_unique<Netclass>(o);
}
}  // namespace moni::node
