// diskstats: node_disk_*{device} from <procfs>/diskstats (units converted
// like node_exporter: sectors -> bytes, ms -> seconds) and node_disk_info
// from udev's database (<udev_data>/b<major>:<minor>).
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <sys/stat.h>

namespace moni::node {
namespace {

constexpr double kSectorSize = 512;
constexpr double kMs = 0.001;

struct Family {
  std::string_view name;
  MetricType type;
  double scale;
  std::string_view help;
};
// Index i is the (i+1)-th counter after the device name in /proc/diskstats.
constexpr Family kFamilies[] = {
    {"node_disk_reads_completed_total", MetricType::Counter, 1,
     "The total number of reads completed successfully."},
    {"node_disk_reads_merged_total", MetricType::Counter, 1, "The total number of reads merged."},
    {"node_disk_read_bytes_total", MetricType::Counter, kSectorSize,
     "The total number of bytes read successfully."},
    {"node_disk_read_time_seconds_total", MetricType::Counter, kMs,
     "The total number of seconds spent by all reads."},
    {"node_disk_writes_completed_total", MetricType::Counter, 1,
     "The total number of writes completed successfully."},
    {"node_disk_writes_merged_total", MetricType::Counter, 1, "The number of writes merged."},
    {"node_disk_written_bytes_total", MetricType::Counter, kSectorSize,
     "The total number of bytes written successfully."},
    {"node_disk_write_time_seconds_total", MetricType::Counter, kMs,
     "This is the total number of seconds spent by all writes."},
    {"node_disk_io_now", MetricType::Gauge, 1, "The number of I/Os currently in progress."},
    {"node_disk_io_time_seconds_total", MetricType::Counter, kMs, "Total seconds spent doing I/Os."},
    {"node_disk_io_time_weighted_seconds_total", MetricType::Counter, kMs,
     "The weighted # of seconds spent doing I/Os."},
    {"node_disk_discards_completed_total", MetricType::Counter, 1,
     "The total number of discards completed successfully."},
    {"node_disk_discards_merged_total", MetricType::Counter, 1,
     "The total number of discards merged."},
    {"node_disk_discarded_sectors_total", MetricType::Counter, 1,
     "The total number of sectors discarded successfully."},
    {"node_disk_discard_time_seconds_total", MetricType::Counter, kMs,
     "This is the total number of seconds spent by all discards."},
    {"node_disk_flush_requests_total", MetricType::Counter, 1,
     "The total number of flush requests completed successfully"},
    {"node_disk_flush_requests_time_seconds_total", MetricType::Counter, kMs,
     "This is the total number of seconds spent by all flush requests."},
};
constexpr size_t kN = std::size(kFamilies);

// udev properties shown in node_disk_info, by label.
constexpr std::pair<std::string_view, std::string_view> kUdev[] = {
    {"model", "ID_MODEL"},       {"path", "ID_PATH"}, {"revision", "ID_REVISION"},
    {"serial", "ID_SERIAL_SHORT"}, {"wwn", "ID_WWN"}};
constexpr size_t kU = std::size(kUdev);

class Diskstats : public SubCollector {
 public:
  explicit Diskstats(const Options& o) : filter_(o.diskstats_devices), udev_(o.udev_data) {
    join(file_, o.procfs, "diskstats");
  }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("diskstats", file_);
    udev_changed_ = udev_generation();
    used_ = 0;
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view major = next_field(line), minor = next_field(line), name = next_field(line);
      if (name.empty() || filter_.ignored(name)) continue;
      if (used_ == disks_.size()) disks_.emplace_back();
      Disk& d = disks_[used_++];
      bool same_device = d.udev_read && d.major == major && d.minor == minor;
      d.name.assign(name);
      d.major.assign(major);
      d.minor.assign(minor);
      d.count = 0;
      for (std::string_view f = next_field(line); !f.empty() && d.count < kN; f = next_field(line)) {
        if (!parse_double(f, d.v[d.count]))
          return make_error("diskstats: invalid value for " + d.name + " in " + file_);
        ++d.count;
      }
      if (!same_device || udev_changed_) read_udev(d);
    }
    if (used_ == 0) return {};
    describe(out, "node_disk_info", MetricType::Gauge, "Info of /sys/block/<block_device>.");
    for (size_t i = 0; i < used_; ++i) {
      const Disk& d = disks_[i];
      LabelRef l[3 + kU] = {{"device", d.name}, {"major", d.major}, {"minor", d.minor}};
      for (size_t u = 0; u < kU; ++u) l[3 + u] = {kUdev[u].first, d.udev[u]};
      add_sample(out, "node_disk_info", std::span<const LabelRef>(l, 3 + kU), 1.0);
    }
    for (size_t f = 0; f < kN; ++f) {
      bool described = false;
      for (size_t i = 0; i < used_; ++i) {
        const Disk& d = disks_[i];
        if (d.count <= f) continue;
        if (!described) describe(out, kFamilies[f].name, kFamilies[f].type, kFamilies[f].help);
        described = true;
        add_sample(out, kFamilies[f].name, {{"device", d.name}}, d.v[f] * kFamilies[f].scale);
      }
    }
    return {};
  }

 private:
  struct Disk {
    std::string name, major, minor;
    std::string udev[kU];
    double v[kN] = {};
    size_t count = 0;
    bool udev_read = false;  // udev[] holds this major:minor's properties
  };
  struct UdevId {
    ino_t ino;
    time_t sec;
    long nsec;
    bool exists;
    bool operator==(const UdevId&) const = default;
  };
  UdevId udev_id_{};
  bool udev_changed_ = true;

  // udev replaces its database files by rename, which changes the
  // directory's mtime: one stat() per cycle instead of reading every disk's
  // file. True when the directory changed since the last cycle.
  bool udev_generation() {
    struct stat st;
    UdevId id{};
    if (::stat(udev_.c_str(), &st) == 0)
      id = {st.st_ino, st.st_mtim.tv_sec, st.st_mtim.tv_nsec, true};
    bool changed = !(id == udev_id_);
    udev_id_ = id;
    return changed;
  }

  // A missing udev database (containers, no udevd) leaves the labels empty.
  void read_udev(Disk& d) {
    d.udev_read = true;
    for (auto& u : d.udev) u.clear();
    join(path_, udev_, "b");
    path_.append(d.major).append(":").append(d.minor);
    std::string_view text;
    if (!udev_reader_.read(path_, text)) return;
    while (!text.empty()) {
      std::string_view line = next_line(text);
      if (!starts_with(line, "E:")) continue;
      line.remove_prefix(2);
      size_t eq = line.find('=');
      if (eq == std::string_view::npos) continue;
      for (size_t u = 0; u < kU; ++u)
        if (line.substr(0, eq) == kUdev[u].second) d.udev[u].assign(line.substr(eq + 1));
    }
  }

  const NameFilter& filter_;
  std::string udev_, file_;
  FileReader udev_reader_;
  std::vector<Disk> disks_;
  size_t used_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_diskstats(const Options& o) { return std::make_unique<Diskstats>(o); }
}  // namespace moni::node
