// filesystem: node_filesystem_*{device,fstype,mountpoint} for the mounts in
// <procfs>/1/mounts (or <procfs>/mounts), statfs'd at <rootfs>/<mountpoint>
// on a worker with a deadline.
#include "statfs_worker.hpp"
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <cstdint>
#include <linux/magic.h>
#include <poll.h>
#include <sys/vfs.h>

namespace moni::node {
namespace {

struct Family {
  std::string_view name, help;
};
constexpr Family kSize{"node_filesystem_size_bytes", "Filesystem size in bytes."};
constexpr Family kFree{"node_filesystem_free_bytes", "Filesystem free space in bytes."};
constexpr Family kAvail{"node_filesystem_avail_bytes",
                        "Filesystem space available to non-root users in bytes."};
constexpr Family kFiles{"node_filesystem_files", "Filesystem total file nodes."};
constexpr Family kFilesFree{"node_filesystem_files_free", "Filesystem total free file nodes."};
constexpr Family kReadonly{"node_filesystem_readonly", "Filesystem read-only status."};
constexpr Family kDeviceError{"node_filesystem_device_error",
                              "Whether an error occurred while getting statistics for the given "
                              "device."};

// /proc/mounts escapes blanks as octal; node_exporter decodes \040 and \011.
void unescape_mount_point(std::string_view in, std::string& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '\\' && in.substr(i, 4) == "\\040") {
      out += ' ';
      i += 3;
    } else if (in[i] == '\\' && in.substr(i, 4) == "\\011") {
      out += '\t';
      i += 3;
    } else {
      out += in[i];
    }
  }
}

// Filesystems whose statfs(2) answers from in-memory counters and cannot
// hang on a device or a server: statfs'd on the collecting thread, which
// saves two thread switches per cycle. Everything else (NFS, CIFS, FUSE,
// btrfs, vfat, ...) goes to the statfs thread with its deadline.
bool statfs_never_blocks(std::string_view fstype) {
  return fstype == "ext4" || fstype == "ext3" || fstype == "ext2" || fstype == "xfs" ||
         fstype == "tmpfs" || fstype == "ramfs";
}

bool has_option(std::string_view options, std::string_view opt) {
  while (!options.empty()) {
    size_t c = options.find(',');
    if (options.substr(0, c) == opt) return true;
    options.remove_prefix(c == std::string_view::npos ? options.size() : c + 1);
  }
  return false;
}

class Filesystem : public SubCollector {
 public:
  explicit Filesystem(const Options& o)
      : rootfs_(o.rootfs),
        mount_points_exclude_(o.mount_points_exclude),
        fs_types_exclude_(o.fs_types_exclude),
        timeout_(o.mount_timeout_ms) {
    join(mounts1_, o.procfs, "1/mounts");
    join(mounts_, o.procfs, "mounts");
    while (rootfs_.size() > 1 && rootfs_.back() == '/') rootfs_.pop_back();
  }

  Result<void> collect(Batch& out) override {
    if (!mounts_unchanged()) {
      auto r = parse_mounts();
      if (!r) return r;
    }
    stat_mounts();
    emit(out, kSize, [](const Mount& m) { return m.size; });
    emit(out, kFree, [](const Mount& m) { return m.free; });
    emit(out, kAvail, [](const Mount& m) { return m.avail; });
    emit(out, kFiles, [](const Mount& m) { return m.files; });
    emit(out, kFilesFree, [](const Mount& m) { return m.files_free; });
    emit(out, kReadonly, [](const Mount& m) { return m.readonly ? 1.0 : 0.0; });
    if (used_ > 0) describe(out, kDeviceError.name, MetricType::Gauge, kDeviceError.help);
    for (size_t i = 0; i < used_; ++i) {
      const Mount& m = mounts_v_[i];
      add_sample(out, kDeviceError.name,
              {{"device", m.device}, {"fstype", m.fstype}, {"mountpoint", m.mount_point}},
              m.error ? 1.0 : 0.0);
    }
    return {};
  }

 private:
  // The mount table is only re-read and parsed when it changed: procfs's
  // mounts files report a change as POLLPRI on a descriptor kept open. Any
  // other file (a fixture tree) is read every time.
  bool mounts_unchanged() {
    if (!parsed_from_ || !is_procfs_) return false;
    int fd = reader_.kept_fd(*parsed_from_);
    if (fd < 0) return false;
    struct pollfd p {fd, POLLPRI, 0};
    return ::poll(&p, 1, 0) == 0;
  }

  Result<void> parse_mounts() {
    std::string_view text;
    parsed_from_ = nullptr;
    const std::string* from = &mounts1_;
    if (!reader_.read(mounts1_, text, true)) {
      from = &mounts_;
      if (!reader_.read(mounts_, text, true)) return io_error("filesystem", mounts_);
    }
    struct statfs fs;
    int fd = reader_.kept_fd(*from);
    is_procfs_ = fd >= 0 && ::fstatfs(fd, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
    used_ = 0;
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view device = next_field(line), mp = next_field(line),
                       fstype = next_field(line), options = next_field(line);
      if (options.empty()) return make_error("filesystem: malformed line in " + *from);
      unescape_mount_point(mp, scratch_);
      strip_rootfs(scratch_);
      if (mount_points_exclude_.matches(scratch_) || fs_types_exclude_.matches(fstype)) continue;
      if (seen(device, scratch_, fstype)) continue;
      if (used_ == mounts_v_.size()) mounts_v_.emplace_back();
      Mount& m = mounts_v_[used_++];
      m.device.assign(device);
      m.mount_point.assign(scratch_);
      m.fstype.assign(fstype);
      m.readonly = has_option(options, "ro");
    }
    parsed_from_ = from;
    return {};
  }

  struct Mount {
    std::string device, mount_point, fstype;
    bool readonly = false, error = false;
    size_t job = 0;  // index into jobs_
    double size = 0, free = 0, avail = 0, files = 0, files_free = 0;
  };

  // Mount points under a non-"/" rootfs are reported relative to it.
  void strip_rootfs(std::string& mp) const {
    if (rootfs_ == "/" || mp.compare(0, rootfs_.size(), rootfs_) != 0) return;
    if (mp.size() > rootfs_.size() && mp[rootfs_.size()] != '/') return;
    mp.erase(0, rootfs_.size());
    if (mp.empty()) mp = "/";
  }

  bool seen(std::string_view device, std::string_view mp, std::string_view fstype) const {
    for (size_t i = 0; i < used_; ++i) {
      const Mount& m = mounts_v_[i];
      if (m.device == device && m.mount_point == mp && m.fstype == fstype) return true;
    }
    return false;
  }

  // statfs of local filesystems here, of every other non-stuck mount in one
  // hand-off to the worker.
  void stat_mounts() {
    size_t n = 0;
    for (size_t i = 0; i < used_; ++i) {
      Mount& m = mounts_v_[i];
      m.error = true;
      join(path_, rootfs_, m.mount_point);
      if (statfs_never_blocks(m.fstype)) {
        m.job = SIZE_MAX;
        struct statfs st;
        if (::statfs(path_.c_str(), &st) == 0) set_sizes(m, st);
        continue;
      }
      if (worker_.stuck(path_)) {
        m.job = SIZE_MAX;  // still blocked since an earlier cycle
        continue;
      }
      if (n == jobs_.size()) jobs_.emplace_back();
      jobs_[n].path.assign(path_);
      m.job = n++;
    }
    if (n > 0) worker_.stat_all(jobs_, n, timeout_);
    for (size_t i = 0; i < used_; ++i) {
      Mount& m = mounts_v_[i];
      if (m.job == SIZE_MAX || jobs_[m.job].outcome != StatfsWorker::Outcome::Ok) continue;
      set_sizes(m, jobs_[m.job].st);
    }
  }

  static void set_sizes(Mount& m, const struct statfs& st) {
    m.error = false;
    double bs = static_cast<double>(st.f_bsize);
    m.size = static_cast<double>(st.f_blocks) * bs;
    m.free = static_cast<double>(st.f_bfree) * bs;
    m.avail = static_cast<double>(st.f_bavail) * bs;
    m.files = static_cast<double>(st.f_files);
    m.files_free = static_cast<double>(st.f_ffree);
  }

  template <class F>
  void emit(Batch& out, const Family& fam, F value) {
    bool described = false;
    for (size_t i = 0; i < used_; ++i) {
      const Mount& m = mounts_v_[i];
      if (m.error) continue;  // only device_error is reported for a failed mount
      if (!described) describe(out, fam.name, MetricType::Gauge, fam.help);
      described = true;
      add_sample(out, fam.name, {{"device", m.device}, {"fstype", m.fstype}, {"mountpoint", m.mount_point}},
              value(m));
    }
  }

  std::string rootfs_, mounts1_, mounts_, scratch_;
  const std::string* parsed_from_ = nullptr;  // the file of the last complete parse
  bool is_procfs_ = false;
  const Pattern& mount_points_exclude_;
  const Pattern& fs_types_exclude_;
  std::chrono::milliseconds timeout_;
  StatfsWorker worker_;
  std::vector<StatfsWorker::Job> jobs_;
  std::vector<Mount> mounts_v_;
  size_t used_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_filesystem(const Options& o) { return std::make_unique<Filesystem>(o); }
}  // namespace moni::node
