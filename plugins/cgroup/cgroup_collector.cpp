// The cgroup collector: cAdvisor's container_* families for every cgroup of
// a v2, v1 or hybrid host, with names and images from the container runtimes'
// state on disk. See README.md for options and metrics.
#include <dirent.h>
#include <fcntl.h>
#include <re2/re2.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <moni/sdk.hpp>
#include <moni/text_format.hpp>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "cgroup_layout.hpp"
#include "cgroup_stats.hpp"
#include "cgroup_watch.hpp"
#include "container_id.hpp"
#include "file_reader.hpp"
#include "runtime_metadata.hpp"

namespace moni_cgroup {
namespace {

using moni::LabelRef;
using moni::MetricType;

struct Family {
  std::string_view name;
  MetricType type;
  std::string_view help;
};

// Names, types and HELP texts as cAdvisor exposes them.
constexpr Family kFamilies[] = {
    {"container_last_seen", MetricType::Gauge, "Last time a container was seen by the exporter"},
    {"container_start_time_seconds", MetricType::Gauge,
     "Start time of the container since unix epoch in seconds."},
    {"container_cpu_usage_seconds_total", MetricType::Counter,
     "Cumulative cpu time consumed in seconds."},
    {"container_cpu_user_seconds_total", MetricType::Counter,
     "Cumulative user cpu time consumed in seconds."},
    {"container_cpu_system_seconds_total", MetricType::Counter,
     "Cumulative system cpu time consumed in seconds."},
    {"container_cpu_cfs_periods_total", MetricType::Counter,
     "Number of elapsed enforcement period intervals."},
    {"container_cpu_cfs_throttled_periods_total", MetricType::Counter,
     "Number of throttled period intervals."},
    {"container_cpu_cfs_throttled_seconds_total", MetricType::Counter,
     "Total time duration the container has been throttled."},
    {"container_spec_cpu_period", MetricType::Gauge, "CPU period of the container."},
    {"container_spec_cpu_quota", MetricType::Gauge, "CPU quota of the container."},
    {"container_spec_cpu_shares", MetricType::Gauge, "CPU share of the container."},
    {"container_memory_usage_bytes", MetricType::Gauge,
     "Current memory usage in bytes, including all memory regardless of when it was accessed"},
    {"container_memory_working_set_bytes", MetricType::Gauge, "Current working set in bytes."},
    {"container_memory_rss", MetricType::Gauge, "Size of RSS in bytes."},
    {"container_memory_cache", MetricType::Gauge, "Number of bytes of page cache memory."},
    {"container_memory_swap", MetricType::Gauge, "Container swap usage in bytes."},
    {"container_memory_max_usage_bytes", MetricType::Gauge,
     "Maximum memory usage recorded in bytes"},
    {"container_memory_mapped_file", MetricType::Gauge, "Size of memory mapped files in bytes."},
    {"container_memory_kernel_usage", MetricType::Gauge,
     "Size of kernel memory allocated in bytes."},
    {"container_memory_total_active_file_bytes", MetricType::Gauge,
     "Current total active file in bytes."},
    {"container_memory_total_inactive_file_bytes", MetricType::Gauge,
     "Current total inactive file in bytes."},
    {"container_memory_failures_total", MetricType::Counter,
     "Cumulative count of memory allocation failures."},
    {"container_memory_failcnt", MetricType::Counter, "Number of memory usage hits limits"},
    {"container_oom_events_total", MetricType::Counter,
     "Count of out of memory events observed for the container"},
    {"container_spec_memory_limit_bytes", MetricType::Gauge, "Memory limit for the container."},
    {"container_spec_memory_swap_limit_bytes", MetricType::Gauge,
     "Memory swap limit for the container."},
    {"container_spec_memory_reservation_limit_bytes", MetricType::Gauge,
     "Memory reservation limit for the container."},
    {"container_fs_reads_bytes_total", MetricType::Counter, "Cumulative count of bytes read"},
    {"container_fs_writes_bytes_total", MetricType::Counter, "Cumulative count of bytes written"},
    {"container_fs_reads_total", MetricType::Counter, "Cumulative count of reads completed"},
    {"container_fs_writes_total", MetricType::Counter, "Cumulative count of writes completed"},
    {"container_blkio_device_usage_total", MetricType::Counter, "Blkio Device bytes usage"},
    {"container_fs_usage_bytes", MetricType::Gauge,
     "Number of bytes that are consumed by the container on this filesystem."},
    {"container_fs_limit_bytes", MetricType::Gauge,
     "Number of bytes that can be consumed by the container on this filesystem."},
    {"container_fs_inodes_free", MetricType::Gauge, "Number of available Inodes"},
    {"container_fs_inodes_total", MetricType::Gauge, "Number of Inodes"},
    {"container_network_receive_bytes_total", MetricType::Counter,
     "Cumulative count of bytes received"},
    {"container_network_receive_packets_total", MetricType::Counter,
     "Cumulative count of packets received"},
    {"container_network_receive_errors_total", MetricType::Counter,
     "Cumulative count of errors encountered while receiving"},
    {"container_network_receive_packets_dropped_total", MetricType::Counter,
     "Cumulative count of packets dropped while receiving"},
    {"container_network_transmit_bytes_total", MetricType::Counter,
     "Cumulative count of bytes transmitted"},
    {"container_network_transmit_packets_total", MetricType::Counter,
     "Cumulative count of packets transmitted"},
    {"container_network_transmit_errors_total", MetricType::Counter,
     "Cumulative count of errors encountered while transmitting"},
    {"container_network_transmit_packets_dropped_total", MetricType::Counter,
     "Cumulative count of packets dropped while transmitting"},
    {"container_processes", MetricType::Gauge, "Number of processes running inside the container."},
    {"container_threads", MetricType::Gauge, "Number of threads running inside the container"},
    {"container_threads_max", MetricType::Gauge,
     "Maximum number of threads allowed inside the container, infinity if value is zero"},
    {"container_pressure_cpu_stalled_seconds_total", MetricType::Counter,
     "Total time duration no tasks in the container could make progress due to CPU congestion."},
    {"container_pressure_cpu_waiting_seconds_total", MetricType::Counter,
     "Total time duration tasks in the container have waited due to CPU congestion."},
    {"container_pressure_memory_stalled_seconds_total", MetricType::Counter,
     "Total time duration no tasks in the container could make progress due to memory "
     "congestion."},
    {"container_pressure_memory_waiting_seconds_total", MetricType::Counter,
     "Total time duration tasks in the container have waited due to memory congestion."},
    {"container_pressure_io_stalled_seconds_total", MetricType::Counter,
     "Total time duration no tasks in the container could make progress due to IO congestion."},
    {"container_pressure_io_waiting_seconds_total", MetricType::Counter,
     "Total time duration tasks in the container have waited due to IO congestion."},
};

// Memory limits above this are "unlimited" (the kernel rounds page counts),
// reported as 0 like cAdvisor does.
constexpr uint64_t kMaxMemory = uint64_t{1} << 62;
// Limits (quota, period, shares, memory limit) are re-read every this many
// collections, and on first sight: they rarely change, and skipping their
// files is a sixth of the reads. This is the polling fallback for cgroups
// without an inotify watch.
constexpr uint64_t kSpecEvery = 4;
// With a watch on each of its directories (and its limit files) a cgroup's
// limits are re-read when a limit file is written, and every this many
// collections regardless
// (a controller switched on or off adds or removes files without an event);
// known leaves are listed again on a new subdirectory, and re-checked as
// often.
constexpr uint64_t kSpecSafetyEvery = 64;
// Files a cgroup lacked (PSI outside the unified mirror, memory.peak on old
// kernels, ...) are tried again every this many collections.
constexpr uint64_t kProbeEvery = 16;
// Time one collection may spend measuring writable layers (`disk`).
constexpr std::chrono::milliseconds kFsBudget{250};
// Attempts to find a container's runtime metadata before giving up on it
// (its state file may appear a moment after its cgroup).
constexpr int kMetaAttempts = 10;
// The walk lists cgroups down to this depth; deeper subtrees are counted
// (moni_cgroup_errors_total{reason="too_deep"}) and not reported.
constexpr int kMaxDepth = 64;
// Problems with cgroup files or names are logged at most this often (they
// are counted in moni_cgroup_errors_total every time).
constexpr int64_t kErrorLogEveryMs = 600000;

std::string sanitize_label_name(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      c = '_';
  return out;
}

// Default budget of kept-open cgroup files (see README: "Kept-open files").
constexpr int64_t kDefaultMaxOpenFiles = 8192;
// The files whose writes change what container_spec_* reports, by the v1
// controller whose hierarchy holds them (-1: the v2 tree). cpu.weight.nice
// rewrites cpu.weight.
struct LimitFile {
  const char* name;
  int controller;
};
constexpr LimitFile kLimitFiles[] = {
    {"cpu.max", -1},
    {"cpu.weight", -1},
    {"cpu.weight.nice", -1},
    {"memory.max", -1},
    {"memory.high", -1},
    {"memory.swap.max", -1},
    {"pids.max", -1},
    {"cpu.cfs_quota_us", kCpu},
    {"cpu.cfs_period_us", kCpu},
    {"cpu.shares", kCpu},
    {"memory.limit_in_bytes", kMemory},
    {"memory.memsw.limit_in_bytes", kMemory},
    {"memory.soft_limit_in_bytes", kMemory},
    {"pids.max", kPids},
};

// Default budget of inotify watches (one per cgroup directory and limit file).
constexpr int64_t kDefaultMaxWatches = 65536;

struct Options {
  std::string root, mountinfo, procfs, sysfs;
  std::string docker_root, containers_storage, containerd_state;
  bool docker_only = false;
  bool container_labels = true;
  MetricGroups groups;
  int64_t max_open_files = kDefaultMaxOpenFiles;
  int64_t max_watches = kDefaultMaxWatches;
  int64_t fs_usage_interval_ms = 60000;
  std::vector<std::unique_ptr<RE2>> include, exclude;
};

// A container's writable layer and what its last measurement found.
struct FsUsage {
  bool resolved = false;  // the layer's directory was looked up
  std::string dir;        // empty: unknown runtime or storage driver
  int64_t measured_ms = 0;
  bool ok = false;
  uint64_t usage = 0, limit = 0, inodes_total = 0, inodes_free = 0;
  uint32_t major = 0, minor = 0;
};

// A cgroup's limits, read every kSpecEvery collections.
struct Spec {
  std::optional<uint64_t> cpu_quota, cpu_period, cpu_shares;
  std::optional<uint64_t> mem_limit, mem_swap_limit, mem_reservation, threads_max;
};

// One cgroup seen by the walk; kept across cycles while it exists.
struct Entry {
  const std::string* id = nullptr;  // the map key: "/", "/docker/<id>", ...
  Entry* parent = nullptr;
  uint64_t seen = 0;  // cycle it was last seen in
  unsigned mask = 0;  // v1 hierarchies holding it (this cycle)
  bool accepted = false;
  bool bad_path = false;  // not valid UTF-8: never reported
  bool too_deep = false;  // its subdirectories are past kMaxDepth
  Runtime runtime = Runtime::None;
  std::string container_id;
  int meta_attempts = 0;
  bool meta_found = false;
  std::string name, image;
  std::vector<std::pair<std::string, std::string>> labels;  // sanitized container_label_*
  int64_t start_time_s = 0;
  // Limits as last read (cycle spec_cycle; 0: never).
  uint64_t spec_cycle = 0;
  uint64_t probe_cycle = 0;  // files found absent were last tried then
  Spec spec;
  // This cycle's process counts (walk of the counting hierarchy).
  bool procs_read = false, procs_counted = false;
  uint64_t procs_own = 0, procs_total = 0;
  uint64_t first_pid = 0;
  // The network namespace (inode) of netns_pid, looked up when the first
  // process changes and every kSpecEvery collections.
  uint64_t netns_pid = 0, netns = 0;
  uint64_t netns_cycle = 0;
  // Hierarchies (bit per index) where the last stat saw no subdirectories.
  unsigned leaf_mask = 0;
  // Hierarchies holding the cgroup this cycle, and those whose watch was
  // added this cycle (a stat made before it cannot prove a leaf).
  unsigned hmask = 0, new_watch = 0;
  // Inotify watch of its directory in each hierarchy; -1: none (polled).
  std::array<int, kControllerCount> wd{-1, -1, -1, -1, -1};
  std::vector<int> file_wds;  // watches of its limit files
  // A file of the cgroup was written since its limits were last read.
  bool spec_dirty = false;
  // The directory's inode in each hierarchy: a new one means the cgroup was
  // removed and made again under the same name (a restarted service).
  std::array<uint64_t, kControllerCount> dir_ino{};
  CgroupFds fds;
  std::unique_ptr<FsUsage> fs;
};

// One network namespace's counters, parsed once per collection however many
// cgroups share it (a Kubernetes pod's containers).
struct Netns {
  uint64_t cycle = 0;  // collection the counters were read in
  bool ok = false;
  std::vector<NetInterface> ifaces;
};

// "net:[4026531840]" -> 4026531840; 0 when malformed.
uint64_t netns_inode(std::string_view link) {
  size_t b = link.find('[');
  uint64_t v = 0;
  if (b == std::string_view::npos || !parse_u64(link.substr(b + 1, link.size() - b - 2), v))
    return 0;
  return v;
}

}  // namespace

/// Thread-safety: collect() is never run concurrently with itself (host
/// contract); self_metrics() reads only the atomics collect() publishes.
class CgroupCollector : public moni::Collector {
 public:
  static constexpr std::string_view plugin_name = "cgroup";
  static constexpr std::string_view plugin_version = "0.1.0";
  static constexpr std::string_view plugin_description =
      "cAdvisor-compatible container_* metrics from cgroup v1/v2/hybrid hierarchies";
  static constexpr std::string_view sample_config =
      R"(# root = "/sys/fs/cgroup"           # where the cgroup hierarchies are mounted
# mountinfo = "/proc/self/mountinfo" # mount table the layout is detected from
# procfs = "/proc"                   # for network namespaces of container processes
# sysfs = "/sys"                     # for block device names
# docker_root = "/var/lib/docker"    # Docker's data root (containers/<id>/config.v2.json)
# containers_storage = "/var/lib/containers/storage"  # Podman's storage root
# containerd_state = "/run/containerd"  # containerd's state dir (OCI bundles)
# docker_only = false                # only the root cgroup and Docker containers
# include = []                       # regexes (RE2, unanchored) on the cgroup path
# exclude = []                       # regexes on the cgroup path; exclude wins
# container_labels = true            # container_label_* from Docker labels
# disable_metrics = []               # of "memory", "oom_event", "diskIO", "network",
#                                    #    "process", "pressure" (cAdvisor's names)
# enable_metrics = []                # of "percpu", "disk" (off by default)
# max_open_files = 8192              # cgroup files kept open between collections
# max_watches = 65536                # inotify watches on cgroup directories (0: poll)
# fs_usage_interval = "1m"           # how often "disk" re-measures writable layers)";

  CgroupCollector(moni::Context& ctx, const moni::ConfigView& cfg) : ctx_(ctx) {
    moni::ConfigReader r(cfg, "cgroup");
    opt_.root = r.string("root", "/sys/fs/cgroup");
    opt_.mountinfo = r.string("mountinfo", "/proc/self/mountinfo");
    opt_.procfs = r.string("procfs", "/proc");
    opt_.sysfs = r.string("sysfs", "/sys");
    opt_.docker_root = r.string("docker_root", "/var/lib/docker");
    opt_.containers_storage = r.string("containers_storage", "/var/lib/containers/storage");
    opt_.containerd_state = r.string("containerd_state", "/run/containerd");
    opt_.docker_only = r.boolean("docker_only", false);
    opt_.groups.network = r.boolean("network", true);
    opt_.container_labels = r.boolean("container_labels", true);
    read_groups(r);
    opt_.max_open_files = r.integer("max_open_files", kDefaultMaxOpenFiles, 0, 1 << 24);
    opt_.max_watches = r.integer("max_watches", kDefaultMaxWatches, 0, 1 << 24);
    opt_.fs_usage_interval_ms = r.duration_ms("fs_usage_interval", 60000);
    compile_patterns(r, "include", opt_.include);
    compile_patterns(r, "exclude", opt_.exclude);
    while (!opt_.root.empty() && opt_.root.size() > 1 && opt_.root.back() == '/')
      opt_.root.pop_back();
    r.finish();
  }

  moni::Result<void> start() override {
    std::string_view text;
    if (!reader_.read(opt_.mountinfo.c_str(), text))
      return moni::make_error("cgroup: cannot read the mount table \"" + opt_.mountinfo +
                              "\": " + std::strerror(errno) + " (set `mountinfo`)");
    auto layout = detect_layout(text, opt_.root);
    if (!layout)
      return moni::make_error("cgroup: " + layout.error().message + " " + opt_.mountinfo +
                              " (set `mountinfo` and `root`)");
    layout_ = std::move(*layout);
    close_all();
    entries_.clear();
    watched_.clear();
    trees_.clear();
    // Watches count against the user's fs.inotify.max_user_watches, shared
    // with every other program of that user: take at most half.
    size_t max_watches = static_cast<size_t>(opt_.max_watches);
    std::string_view limit;
    uint64_t v = 0;
    if (reader_.read((opt_.procfs + "/sys/fs/inotify/max_user_watches").c_str(), limit) &&
        parse_u64(limit, v))
      max_watches = std::min<size_t>(max_watches, static_cast<size_t>(v / 2));
    watch_ = std::make_unique<CgroupWatch>(max_watches);
    if (procfs_fd_ != AT_FDCWD) ::close(procfs_fd_);
    procfs_fd_ = ::open(opt_.procfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (procfs_fd_ < 0) procfs_fd_ = AT_FDCWD;  // absolute paths, as before
    // Kept-open files share the process's descriptor limit with the host and
    // other plugins: use at most half of the soft limit.
    size_t budget = static_cast<size_t>(opt_.max_open_files);
    struct rlimit rl {};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
      budget = std::min<size_t>(budget, static_cast<size_t>(rl.rlim_cur / 2));
    stats_reader_ = std::make_unique<StatsReader>(layout_, opt_.groups, budget);
    metadata_ = std::make_unique<RuntimeMetadata>(opt_.docker_root, opt_.containers_storage,
                                                  opt_.containerd_state);
    // v1: every controller hierarchy is walked (a cgroup may exist in some
    // only), each directory once (co-mounted controllers share one).
    for (auto& h : hierarchies_)
      if (h.root_fd >= 0) ::close(h.root_fd);
    hierarchies_.clear();
    if (layout_.mode == CgroupLayout::Mode::V2) {
      hierarchies_.push_back({layout_.unified, 0});
    } else {
      for (int c : {kPids, kCpuacct, kCpu, kMemory, kBlkio}) {
        const std::string& dir = layout_.v1[c];
        if (dir.empty()) continue;
        bool dup = false;
        for (auto& h : hierarchies_)
          if (h.dir == dir) {
            h.mask |= 1u << c;
            dup = true;
          }
        if (!dup) hierarchies_.push_back({dir, 1u << c});
      }
    }
    if (hierarchies_.empty())
      return moni::make_error("cgroup: no usable cgroup hierarchy under " + opt_.root);
    trees_.assign(hierarchies_.size(), Tree{});
    std::vector<std::string> unopened;
    replay_stack_.reserve(kMaxDepth + 1);  // walks stop at kMaxDepth
    for (auto& h : hierarchies_) {
      for (int c = 0; c < kControllerCount; ++c)
        if (h.mask & (1u << c)) {
          h.procs_controller = c;
          break;
        }
      if (h.root_fd >= 0) ::close(h.root_fd);
      h.root_fd = ::open(h.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
      if (h.root_fd < 0) unopened.push_back(h.dir + ": " + std::strerror(errno));
    }
    // A hierarchy the mount table names but `root` does not hold (a typo in
    // `root`, cgroupfs not bind-mounted into moni's container) would
    // otherwise collect nothing, silently.
    if (!unopened.empty()) {
      std::string dirs;
      for (const auto& u : unopened) dirs += (dirs.empty() ? "" : ", ") + u;
      if (unopened.size() == hierarchies_.size())
        return moni::make_error("cgroup: cannot open the cgroup hierarchies " + dirs +
                                " (root = \"" + opt_.root +
                                "\"; set `root` to where they are mounted)");
      ctx_.warn("cgroup: cannot open " + dirs + "; its cgroups are not reported");
    }
    if (procfs_fd_ == AT_FDCWD && opt_.groups.network)
      ctx_.warn("cgroup: cannot open procfs \"" + opt_.procfs +
                "\": no network metrics (set `procfs`)");
    ctx_.info("cgroup: " + std::string(layout_.mode_name()) + " layout under " + opt_.root);
    return {};
  }

  ~CgroupCollector() override {
    close_all();
    if (procfs_fd_ != AT_FDCWD) ::close(procfs_fd_);
    for (auto& h : hierarchies_)
      if (h.root_fd >= 0) ::close(h.root_fd);
  }

  moni::Result<void> collect(moni::Batch& out) override {
    if (!stats_reader_) return moni::make_error("cgroup: collect before start");
    ++cycle_;
    apply_watch_events();
    cycle_list_.clear();
    for (size_t h = 0; h < hierarchies_.size(); ++h) {
      if (hierarchies_[h].root_fd < 0) continue;
      Tree& t = trees_[h];
      if (t.valid && cycle_ % kSpecSafetyEvery != 1) {
        replay(h);
        continue;
      }
      // A full walk, recorded for replay: valid when every directory in it
      // was already watched before it was listed or stat'ed.
      t.nodes.clear();
      t.valid = watch_->enabled();
      path_ = hierarchies_[h].dir;
      walk(h, path_.size(), nullptr, false, 0, hierarchies_[h].root_fd, ".", false, 0);
    }
    // Forget cgroups that are gone (closing their files): their series
    // simply stop.
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (it->second.seen == cycle_) {
        ++it;
        continue;
      }
      stats_reader_->close(it->second.fds);
      unwatch(it->second);
      it = entries_.erase(it);
      for (Tree& t : trees_) t.valid = false;  // they may point at it
    }

    for (const auto& f : kFamilies) out.describe(f.name, f.type, f.help);
    ts_ = out.default_timestamp();
    now_s_ = std::floor(static_cast<double>(ts_) / 1000.0);
    host_netns_ = 0;
    set_pid_path(1, "/ns/net");
    if (opt_.groups.network && read_link(link_)) host_netns_ = netns_inode(link_);
    emitted_ = 0;
    fs_deadline_ = std::chrono::steady_clock::now() + kFsBudget;
    for (Entry* e : cycle_list_) emit(*e, out);
    // Namespaces no cgroup used this time are forgotten.
    for (auto it = netns_.begin(); it != netns_.end();)
      it = it->second.cycle == cycle_ ? std::next(it) : netns_.erase(it);
    published_containers_.store(emitted_, std::memory_order_relaxed);
    published_tracked_.store(entries_.size(), std::memory_order_relaxed);
    published_open_.store(stats_reader_->open_files(), std::memory_order_relaxed);
    published_watches_.store(watch_->watches(), std::memory_order_relaxed);
    report_errors();
    return {};
  }

  void self_metrics(moni::Batch& out) override {
    out.describe("moni_cgroup_containers", MetricType::Gauge,
                 "Cgroups reported in the last collection.");
    out.add("moni_cgroup_containers", {},
            static_cast<double>(published_containers_.load(std::memory_order_relaxed)));
    out.describe("moni_cgroup_tracked_cgroups", MetricType::Gauge,
                 "Cgroups whose state the collector keeps between collections.");
    out.add("moni_cgroup_tracked_cgroups", {},
            static_cast<double>(published_tracked_.load(std::memory_order_relaxed)));
    out.describe("moni_cgroup_open_files", MetricType::Gauge,
                 "Cgroup files the collector keeps open between collections.");
    out.add("moni_cgroup_open_files", {},
            static_cast<double>(published_open_.load(std::memory_order_relaxed)));
    out.describe("moni_cgroup_watches", MetricType::Gauge,
                 "Cgroup directories the collector watches with inotify.");
    out.add("moni_cgroup_watches", {},
            static_cast<double>(published_watches_.load(std::memory_order_relaxed)));
    out.describe("moni_cgroup_errors_total", MetricType::Counter,
                 "Cgroup files whose values were skipped (malformed_file, unreadable_file) and "
                 "cgroups not reported (invalid_utf8_path, too_deep).");
    const std::pair<std::string_view, const std::atomic<uint64_t>*> errors[] = {
        {"invalid_utf8_path", &published_bad_paths_},
        {"malformed_file", &published_malformed_},
        {"too_deep", &published_too_deep_},
        {"unreadable_file", &published_unreadable_}};
    for (const auto& [reason, n] : errors)
      out.add("moni_cgroup_errors_total", {{"reason", reason}},
              static_cast<double>(n->load(std::memory_order_relaxed)));
  }

 private:
  struct Hierarchy {
    std::string dir;
    unsigned mask;              // v1 controllers in it (0 for v2)
    int procs_controller = -1;  // whose cgroup.procs slot is used (-1: unified)
    int root_fd = -1;           // kept open for the walk
  };

  // Publishes the error counts, and logs them when they grew (at most every
  // kErrorLogEveryMs: a broken file is skipped every collection).
  void report_errors() {
    const StatsReader::Errors& r = stats_reader_->errors();
    published_malformed_.store(r.malformed, std::memory_order_relaxed);
    published_unreadable_.store(r.unreadable, std::memory_order_relaxed);
    published_bad_paths_.store(bad_paths_, std::memory_order_relaxed);
    published_too_deep_.store(too_deep_, std::memory_order_relaxed);
    uint64_t total = r.malformed + r.unreadable + bad_paths_ + too_deep_;
    if (total == logged_errors_ || (logged_ms_ != 0 && ts_ - logged_ms_ < kErrorLogEveryMs)) return;
    std::string m = "cgroup: since start " + std::to_string(r.malformed) + " malformed and " +
                    std::to_string(r.unreadable) +
                    " unreadable cgroup file reads (their values skipped), " +
                    std::to_string(bad_paths_) + " cgroups with a path not valid UTF-8 and " +
                    std::to_string(too_deep_) + " subtrees deeper than " +
                    std::to_string(kMaxDepth) + " levels (not reported); ";
    // The newest example: a file problem if the reader's count moved.
    uint64_t file_errors = r.malformed + r.unreadable;
    m += file_errors != logged_file_errors_ && !r.example.empty() ? r.example : example_;
    logged_file_errors_ = file_errors;
    logged_errors_ = total;
    logged_ms_ = ts_;
    ctx_.warn(m);
  }

  void close_all() {
    if (!stats_reader_) return;
    for (auto& [id, e] : entries_) stats_reader_->close(e.fds);
  }

  // Applies the inotify events queued since the last collection.
  void apply_watch_events() {
    if (!watch_->enabled()) return;
    bool complete = watch_->drain(events_);
    for (const auto& ev : events_) {
      auto it = watched_.find(ev.wd);
      if (it == watched_.end()) continue;  // a watch already removed
      Entry& e = *it->second.entry;
      int h = it->second.h;
      switch (ev.change) {
        case CgroupWatch::Change::kFileWritten:
          e.spec_dirty = true;
          break;
        case CgroupWatch::Change::kFileReplaced:
          // A watched file may be the one replaced (test trees only): watch
          // everything of the cgroup afresh at the next full walk.
          e.spec_dirty = true;
          unwatch(e);  // erases `it`
          for (Tree& t : trees_) t.valid = false;
          break;
        case CgroupWatch::Change::kSubdirAdded:
          e.leaf_mask &= ~(1u << h);
          trees_[size_t(h)].valid = false;
          break;
        case CgroupWatch::Change::kSubdirRemoved:
          trees_[size_t(h)].valid = false;
          break;
        case CgroupWatch::Change::kGone:
          watch_->dropped();
          if (it->second.file) {
            std::erase(e.file_wds, ev.wd);
            e.spec_dirty = true;
          } else {
            e.wd[h] = -1;
            e.leaf_mask &= ~(1u << h);
            trees_[size_t(h)].valid = false;
          }
          watched_.erase(it);
          break;
      }
    }
    // Events were lost: everything watched is read and listed afresh.
    if (!complete) {
      for (auto& [id, e] : entries_) {
        e.spec_dirty = true;
        e.leaf_mask = 0;
      }
      for (Tree& t : trees_) t.valid = false;
    }
  }

  // Watches the directory in path_, the cgroup `e` in hierarchy `h`, and
  // its limit files there.
  void watch_dir(Entry& e, int h) {
    int wd = watch_->add_dir(path_.c_str());
    if (wd < 0) return;
    auto [it, added] = watched_.try_emplace(wd, Watched{&e, h, false});
    if (!added) {
      // The same directory seen twice (a doubled mount): the first owner
      // keeps the watch, this one polls.
      watch_->dropped();
      return;
    }
    e.wd[h] = wd;
    e.new_watch |= 1u << h;
    // The limit files of the hierarchy's controllers. One the cgroup lacks
    // (controller not enabled) is not watched: it can only appear by a
    // controller being switched on, covered by the re-read every
    // kSpecSafetyEvery collections.
    const unsigned mask = hierarchies_[size_t(h)].mask;
    size_t len = path_.size();
    for (const LimitFile& f : kLimitFiles) {
      if (mask == 0 ? f.controller >= 0 : f.controller < 0 || !(mask & (1u << f.controller)))
        continue;
      path_.push_back('/');
      path_.append(f.name);
      int fwd = watch_->add_file(path_.c_str());
      path_.resize(len);
      if (fwd < 0) continue;
      if (!watched_.try_emplace(fwd, Watched{&e, h, true}).second) {
        watch_->dropped();
        continue;
      }
      e.file_wds.push_back(fwd);
    }
  }

  void unwatch(Entry& e) {
    for (int& wd : e.wd) {
      if (wd < 0) continue;
      watch_->remove(wd);
      watched_.erase(wd);
      wd = -1;
    }
    for (int wd : e.file_wds) {
      watch_->remove(wd);
      watched_.erase(wd);
    }
    e.file_wds.clear();
    e.new_watch = 0;
  }

  // Every directory of `e` this cycle has a watch: its limits need no polling.
  static bool watched(const Entry& e) {
    if (e.hmask == 0) return false;
    for (int h = 0; h < kControllerCount; ++h)
      if ((e.hmask & (1u << h)) && e.wd[h] < 0) return false;
    return true;
  }

  // cAdvisor's --disable_metrics / --enable_metrics group names.
  void read_groups(moni::ConfigReader& r) {
    moni::ConfigView dis = r.table_view().get("disable_metrics");
    for (const auto& g : r.strings("disable_metrics", {})) {
      if (g == "memory")
        opt_.groups.memory = false;
      else if (g == "oom_event")
        opt_.groups.oom_event = false;
      else if (g == "diskIO")
        opt_.groups.disk_io = false;
      else if (g == "network")
        opt_.groups.network = false;
      else if (g == "process")
        opt_.groups.process = false;
      else if (g == "pressure")
        opt_.groups.pressure = false;
      else if (g == "percpu" || g == "disk")
        continue;  // off unless enabled
      else
        r.error(dis, "disable_metrics: unknown metric group \"" + g +
                         "\" (known: memory, oom_event, diskIO, network, process, pressure, "
                         "percpu, disk)");
    }
    moni::ConfigView en = r.table_view().get("enable_metrics");
    for (const auto& g : r.strings("enable_metrics", {})) {
      if (g == "percpu")
        opt_.groups.percpu = true;
      else if (g == "disk")
        opt_.groups.disk = true;
      else
        r.error(en, "enable_metrics: unknown or always-on metric group \"" + g +
                        "\" (off by default: percpu, disk)");
    }
  }

  static void compile_patterns(moni::ConfigReader& r, std::string_view key,
                               std::vector<std::unique_ptr<RE2>>& out) {
    moni::ConfigView node = r.table_view().get(key);
    for (const auto& p : r.strings(key, {})) {
      auto re = std::make_unique<RE2>(p, RE2::Quiet);
      if (!re->ok()) {
        r.error(node, std::string(key) + ": invalid regex \"" + p + "\": " + re->error());
        continue;
      }
      out.push_back(std::move(re));
    }
  }

  // Visits the directory in path_ and its subdirectories; returns the number
  // of processes in the subtree (of cgroups whose processes are wanted).
  // `parent_fd`/`name` locate it relative to its parent's open directory;
  // `leaf` (a link count of 2: no subdirectories) spares listing it, which
  // is most of the walk's cost for hundreds of containers.
  uint64_t walk(size_t h, size_t base_len, Entry* parent, bool parent_wants, int depth,
                int parent_fd, const char* name, bool leaf, uint64_t ino) {
    if (path_.size() == base_len)
      id_.assign("/");
    else
      id_.assign(path_, base_len, std::string::npos);
    Entry& e = touch(id_, parent);
    if (ino != 0) {
      if (e.dir_ino[h] != 0 && e.dir_ino[h] != ino) recreated(e);
      e.dir_ino[h] = ino;
    }
    const unsigned hbit = 1u << h;
    e.hmask |= hbit;
    // Watched before its limits are read and before its leaf state is
    // trusted, so that no write or new subdirectory falls between the two.
    if (e.wd[h] < 0 && watch_->enabled()) watch_dir(e, int(h));
    Tree& tree = trees_[h];
    tree.nodes.push_back({&e, uint32_t(depth)});
    if (e.wd[h] < 0 || (e.new_watch & hbit)) tree.valid = false;
    e.mask |= hierarchies_[h].mask;
    bool wants = e.accepted || parent_wants;
    DIR* d = nullptr;
    if (!leaf && depth >= kMaxDepth && !e.too_deep) {
      e.too_deep = true;  // counted once while it exists
      ++too_deep_;
      example_ = "cgroup " + *e.id + " is " + std::to_string(depth) +
                 " levels deep: its subdirectories are not walked";
    }
    if (!leaf && depth < kMaxDepth) {
      int fd = ::openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd >= 0 && !(d = ::fdopendir(fd))) ::close(fd);
      if (!d) tree.valid = false;  // its subdirectories are unknown
    }
    uint64_t total = own_procs(e, h, wants);
    if (d) {
      int fd = ::dirfd(d);
      // A cgroup with no subdirectories (link count 2) is not listed. Known
      // leaves skip even the stat: a watched one until inotify reports a
      // new subdirectory in it (and every kSpecSafetyEvery collections), an
      // unwatched one between re-checks every kSpecEvery collections, so a
      // cgroup made below it appears late by at most that many collections.
      bool recheck = cycle_ % kSpecEvery == 1;
      bool recheck_watched = cycle_ % kSpecSafetyEvery == 1;
      while (dirent* de = ::readdir(d)) {
        if (de->d_name[0] == '.' &&
            (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
          continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
        size_t len = path_.size();
        path_.push_back('/');
        path_.append(de->d_name);
        bool child_leaf;
        auto known = recheck_watched ? entries_.end()
                                     : entries_.find(std::string_view(path_).substr(base_len));
        if (known != entries_.end() && (known->second.leaf_mask & hbit) && de->d_type == DT_DIR &&
            (known->second.wd[h] >= 0 || !recheck)) {
          child_leaf = true;
        } else {
          struct stat st {};
          if (::fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
            path_.resize(len);
            continue;
          }
          child_leaf = st.st_nlink == 2;
        }
        total += walk(h, base_len, &e, wants, depth + 1, fd, de->d_name, child_leaf, de->d_ino);
        path_.resize(len);
      }
      ::closedir(d);
    }
    if (!leaf)
      e.leaf_mask &= ~hbit;
    else if (!(e.new_watch & hbit))
      e.leaf_mask |= hbit;
    if (wants && !e.procs_counted) {
      e.procs_counted = true;
      e.procs_total = total;
    }
    return total;
  }

  // cgroup.procs is read once per cycle, in the first hierarchy holding the
  // cgroup; subtree totals come from that hierarchy's walk. Its first
  // process also locates the network namespace. Returns the cgroup's own
  // process count where wanted.
  uint64_t own_procs(Entry& e, size_t h, bool wants) {
    if (!(opt_.groups.process ? wants : e.accepted && opt_.groups.network)) return 0;
    if (!e.procs_read) {
      e.procs_read = true;
      std::string_view text;
      std::string_view rel = *e.id == "/" ? std::string_view() : std::string_view(*e.id);
      if (stats_reader_->read_procs(rel, hierarchies_[h].procs_controller, e.fds, text)) {
        e.procs_own = count_lines(text);
        if (e.procs_own > 0) parse_u64(text.substr(0, text.find('\n')), e.first_pid);
      }
    }
    return e.procs_own;
  }

  // The walk of hierarchy `h` without listing or stat'ing anything: the
  // tree recorded by the last full walk, which inotify says is unchanged
  // (no subdirectory made, removed or renamed in any of its directories).
  // Visits the same cgroups in the same order as walk() would.
  void replay(size_t h) {
    const unsigned hbit = 1u << h;
    replay_stack_.clear();
    auto finish = [&] {
      ReplayFrame f = replay_stack_.back();
      replay_stack_.pop_back();
      if (f.wants && !f.entry->procs_counted) {
        f.entry->procs_counted = true;
        f.entry->procs_total = f.total;
      }
      if (!replay_stack_.empty()) replay_stack_.back().total += f.total;
    };
    for (const TreeNode& n : trees_[h].nodes) {
      while (!replay_stack_.empty() && replay_stack_.back().depth >= n.depth) finish();
      Entry& e = *n.entry;
      mark_seen(e, false);
      e.hmask |= hbit;
      e.mask |= hierarchies_[h].mask;
      bool parent_wants = !replay_stack_.empty() && replay_stack_.back().wants;
      bool wants = e.accepted || parent_wants;
      replay_stack_.push_back({&e, n.depth, wants, own_procs(e, h, wants)});
    }
    while (!replay_stack_.empty()) finish();
  }

  // A cgroup made again under a known name: its kept-open files belong to
  // the old one, its limits and start time are read afresh.
  void recreated(Entry& e) {
    stats_reader_->close(e.fds);
    unwatch(e);
    e.spec_cycle = e.probe_cycle = 0;
    e.netns_pid = 0;
    e.leaf_mask = 0;
    if (!e.meta_found || e.start_time_s == 0) e.start_time_s = cgroup_mtime();
  }

  // The entry of cgroup `id`, created on first sight; marks it seen.
  Entry& touch(const std::string& id, Entry* parent) {
    auto [it, inserted] = entries_.try_emplace(id);
    Entry& e = it->second;
    if (inserted) {
      e.id = &it->first;
      e.parent = parent;
      ContainerRef ref = classify(id);
      e.runtime = ref.runtime;
      e.container_id.assign(ref.id);
      e.start_time_s = cgroup_mtime();
      // Its id would be a label value, and Prometheus refuses a whole scrape
      // for one that is not UTF-8 (cAdvisor's client drops such series too).
      if (!moni::text::detail::valid_utf8(id)) {
        e.bad_path = true;
        ++bad_paths_;
        example_ = "cgroup path not valid UTF-8: ";
        for (unsigned char c : id) {
          char hex[8];
          if (c >= 0x20 && c < 0x7f) {
            example_.push_back(char(c));
          } else {
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            example_.append(hex);
          }
        }
      }
    }
    mark_seen(e, inserted);
    return e;
  }

  // First visit of `e` in this cycle: per-cycle state reset, metadata looked
  // up while unknown, and the cgroup queued for emit() when accepted.
  void mark_seen(Entry& e, bool inserted) {
    if (e.seen != cycle_) {
      e.seen = cycle_;
      e.mask = 0;
      e.hmask = e.new_watch = 0;
      e.procs_counted = e.procs_read = false;
      e.procs_own = e.procs_total = e.first_pid = 0;
      if (e.runtime != Runtime::None && !e.meta_found && e.meta_attempts < kMetaAttempts) {
        ++e.meta_attempts;
        resolve_metadata(e);
        e.accepted = accept(e);
      } else if (inserted) {
        e.accepted = accept(e);
      }
      if (e.accepted) cycle_list_.push_back(&e);
    }
  }

  void resolve_metadata(Entry& e) {
    ContainerMeta m = metadata_->lookup(e.runtime, e.container_id);
    if (!m.found) return;
    e.meta_found = true;
    if (e.runtime == Runtime::UnknownHex) e.runtime = m.runtime;
    e.name = std::move(m.name);
    e.image = std::move(m.image);
    if (m.created_s > 0) e.start_time_s = m.created_s;
    e.labels.clear();
    if (opt_.container_labels) {
      for (auto& [k, v] : m.labels)
        e.labels.emplace_back("container_label_" + sanitize_label_name(k), std::move(v));
      // Keys that sanitize alike ("a.b", "a-b") keep one value, the last.
      std::stable_sort(e.labels.begin(), e.labels.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      auto last = std::unique(e.labels.rbegin(), e.labels.rend(),
                              [](const auto& a, const auto& b) { return a.first == b.first; });
      e.labels.erase(e.labels.begin(), last.base());
    }
  }

  bool accept(const Entry& e) const {
    const std::string& id = *e.id;
    if (e.bad_path) return false;
    if (opt_.docker_only && id != "/" && e.runtime != Runtime::Docker) return false;
    if (!opt_.include.empty()) {
      bool any = false;
      for (const auto& re : opt_.include)
        if (RE2::PartialMatch(id, *re)) {
          any = true;
          break;
        }
      if (!any) return false;
    }
    for (const auto& re : opt_.exclude)
      if (RE2::PartialMatch(id, *re)) return false;
    return true;
  }

  // cAdvisor's creation time of a plain cgroup: the older of the directory's
  // mtime and that of a file rarely modified after creation.
  int64_t cgroup_mtime() {
    struct stat st {};
    int64_t t = 0;
    if (::stat(path_.c_str(), &st) == 0) t = st.st_mtim.tv_sec;
    size_t len = path_.size();
    path_.append(layout_.mode == CgroupLayout::Mode::V2 ? "/cgroup.events"
                                                        : "/cgroup.clone_children");
    if (::stat(path_.c_str(), &st) == 0 && (t == 0 || st.st_mtim.tv_sec < t)) t = st.st_mtim.tv_sec;
    path_.resize(len);
    return t;
  }

  // The link at pid_path_ (relative to procfs_fd_).
  bool read_link(std::string& out) {
    char buf[128];
    ssize_t n = ::readlinkat(procfs_fd_, pid_path_.c_str(), buf, sizeof buf);
    if (n <= 0) return false;
    out.assign(buf, static_cast<size_t>(n));
    return true;
  }

  // Samples go in with labels already sorted (add_sorted): the base labels
  // of a container are sorted once, an extra label is slotted in place.
  void put(moni::Batch& out, std::string_view metric, double v) {
    labels_[0].value = metric;
    out.add_sorted(std::span<const LabelRef>(labels_.data(), labels_.size()), v, ts_);
  }
  // Several extra labels, `extra` sorted by name, merged into the base ones.
  void put_extra(moni::Batch& out, std::string_view metric, std::span<const LabelRef> extra,
                 double v) {
    with_extra_.clear();
    with_extra_.push_back({moni::kMetricNameLabel, metric});
    size_t j = 0;
    for (size_t i = 1; i < labels_.size(); ++i) {
      while (j < extra.size() && extra[j].name < labels_[i].name) {
        if (!extra[j].value.empty()) with_extra_.push_back(extra[j]);
        ++j;
      }
      with_extra_.push_back(labels_[i]);
    }
    for (; j < extra.size(); ++j)
      if (!extra[j].value.empty()) with_extra_.push_back(extra[j]);
    out.add_sorted(std::span<const LabelRef>(with_extra_.data(), with_extra_.size()), v, ts_);
  }
  void put2(moni::Batch& out, std::string_view metric, std::string_view n1, std::string_view v1,
            std::string_view n2, std::string_view v2, double v) {
    LabelRef extra[2] = {{n1, v1}, {n2, v2}};
    put_extra(out, metric, extra, v);
  }
  void put(moni::Batch& out, std::string_view metric, std::string_view name, std::string_view value,
           double v) {
    with_extra_.clear();
    with_extra_.push_back({moni::kMetricNameLabel, metric});
    bool placed = value.empty();
    for (size_t i = 1; i < labels_.size(); ++i) {
      if (!placed && name < labels_[i].name) {
        with_extra_.push_back({name, value});
        placed = true;
      }
      with_extra_.push_back(labels_[i]);
    }
    if (!placed) with_extra_.push_back({name, value});
    out.add_sorted(std::span<const LabelRef>(with_extra_.data(), with_extra_.size()), v, ts_);
  }

  static double limit_of(uint64_t v) { return v > kMaxMemory ? 0.0 : static_cast<double>(v); }

  void emit(Entry& e, moni::Batch& out) {
    std::string_view rel = *e.id == "/" ? std::string_view() : std::string_view(*e.id);
    CgroupStats& s = stats_;
    const uint64_t spec_every = watched(e) ? kSpecSafetyEvery : kSpecEvery;
    bool spec = e.spec_cycle == 0 || e.spec_dirty || cycle_ - e.spec_cycle >= spec_every;
    bool probe = e.probe_cycle == 0 || cycle_ - e.probe_cycle >= kProbeEvery;
    stats_reader_->read(rel, e.mask, spec, probe, e.fds, s);
    if (!s.any) return;  // vanished between the walk and now
    if (probe) e.probe_cycle = cycle_;
    if (spec) {
      // Spread the limit reads of cgroups first seen together over the
      // following collections instead of repeating one costly collection.
      e.spec_cycle =
          e.spec_cycle != 0 ? cycle_ : cycle_ - std::hash<std::string_view>{}(rel) % spec_every;
      e.spec_dirty = false;
      e.spec = Spec{s.cpu_quota,      s.cpu_period,      s.cpu_shares, s.mem_limit,
                    s.mem_swap_limit, s.mem_reservation, s.threads_max};
    } else {
      s.cpu_quota = e.spec.cpu_quota;
      s.cpu_period = e.spec.cpu_period;
      s.cpu_shares = e.spec.cpu_shares;
      s.mem_limit = e.spec.mem_limit;
      s.mem_swap_limit = e.spec.mem_swap_limit;
      s.mem_reservation = e.spec.mem_reservation;
      s.threads_max = e.spec.threads_max;
    }
    ++emitted_;

    labels_.clear();
    labels_.push_back({moni::kMetricNameLabel, {}});
    labels_.push_back({"id", *e.id});
    // An empty label is an absent one in Prometheus.
    if (!e.name.empty()) labels_.push_back({"name", e.name});
    if (!e.image.empty()) labels_.push_back({"image", e.image});
    for (const auto& [k, v] : e.labels)
      if (!v.empty()) labels_.push_back({k, v});
    std::sort(labels_.begin() + 1, labels_.end(),
              [](const LabelRef& a, const LabelRef& b) { return a.name < b.name; });

    put(out, "container_last_seen", now_s_);
    if (e.start_time_s > 0) put(out, "container_start_time_seconds", double(e.start_time_s));

    // As cAdvisor: per-CPU series replace the total where the kernel has them
    // (v1 with percpu enabled); zero counters are left out.
    bool percpu = false;
    for (size_t i = 0; i < s.percpu_ns.size(); ++i) {
      if (s.percpu_ns[i] == 0) continue;
      char cpu[16];
      int n = std::snprintf(cpu, sizeof cpu, "cpu%02zu", i);
      put(out, "container_cpu_usage_seconds_total", "cpu", std::string_view(cpu, size_t(n)),
          double(s.percpu_ns[i]) / 1e9);
      percpu = true;
    }
    if (!percpu && s.cpu_total_s && *s.cpu_total_s > 0)
      put(out, "container_cpu_usage_seconds_total", "cpu", "total", *s.cpu_total_s);
    if (s.cpu_user_s) put(out, "container_cpu_user_seconds_total", *s.cpu_user_s);
    if (s.cpu_system_s) put(out, "container_cpu_system_seconds_total", *s.cpu_system_s);
    bool limited = s.cpu_quota && *s.cpu_quota != 0;
    if (limited) {
      if (s.cfs_periods) put(out, "container_cpu_cfs_periods_total", double(*s.cfs_periods));
      if (s.cfs_throttled_periods)
        put(out, "container_cpu_cfs_throttled_periods_total", double(*s.cfs_throttled_periods));
      if (s.cfs_throttled_s)
        put(out, "container_cpu_cfs_throttled_seconds_total", *s.cfs_throttled_s);
    }
    if (s.cpu_period) put(out, "container_spec_cpu_period", double(*s.cpu_period));
    if (limited) put(out, "container_spec_cpu_quota", double(*s.cpu_quota));
    if (s.cpu_shares) put(out, "container_spec_cpu_shares", double(*s.cpu_shares));

    if (s.mem_usage) {
      put(out, "container_memory_usage_bytes", double(*s.mem_usage));
      uint64_t ws = *s.mem_usage;
      if (s.mem_inactive_file) ws = ws < *s.mem_inactive_file ? 0 : ws - *s.mem_inactive_file;
      put(out, "container_memory_working_set_bytes", double(ws));
    }
    if (s.mem_max_usage) put(out, "container_memory_max_usage_bytes", double(*s.mem_max_usage));
    if (s.mem_rss) put(out, "container_memory_rss", double(*s.mem_rss));
    if (s.mem_cache) put(out, "container_memory_cache", double(*s.mem_cache));
    if (s.mem_mapped_file) put(out, "container_memory_mapped_file", double(*s.mem_mapped_file));
    if (s.mem_kernel) put(out, "container_memory_kernel_usage", double(*s.mem_kernel));
    if (s.mem_active_file)
      put(out, "container_memory_total_active_file_bytes", double(*s.mem_active_file));
    if (s.mem_inactive_file)
      put(out, "container_memory_total_inactive_file_bytes", double(*s.mem_inactive_file));
    if (s.mem_swap) put(out, "container_memory_swap", double(*s.mem_swap));
    if (s.pgfault || s.pgmajfault) {
      put2(out, "container_memory_failures_total", "failure_type", "pgfault", "scope", "container",
           double(s.pgfault.value_or(0)));
      put2(out, "container_memory_failures_total", "failure_type", "pgmajfault", "scope",
           "container", double(s.pgmajfault.value_or(0)));
      put2(out, "container_memory_failures_total", "failure_type", "pgfault", "scope", "hierarchy",
           double(s.total_pgfault.value_or(0)));
      put2(out, "container_memory_failures_total", "failure_type", "pgmajfault", "scope",
           "hierarchy", double(s.total_pgmajfault.value_or(0)));
    }
    if (s.mem_failcnt) put(out, "container_memory_failcnt", double(*s.mem_failcnt));
    if (s.oom_kills) put(out, "container_oom_events_total", double(*s.oom_kills));
    if (s.mem_limit) put(out, "container_spec_memory_limit_bytes", limit_of(*s.mem_limit));
    if (s.mem_swap_limit)
      put(out, "container_spec_memory_swap_limit_bytes", limit_of(*s.mem_swap_limit));
    if (s.mem_reservation)
      put(out, "container_spec_memory_reservation_limit_bytes", limit_of(*s.mem_reservation));

    for (const IoDevice& d : s.io) {
      std::string_view dev = device_name(d.major, d.minor);
      put(out, "container_fs_reads_bytes_total", "device", dev, double(d.read_bytes));
      put(out, "container_fs_writes_bytes_total", "device", dev, double(d.write_bytes));
      if (d.has_ops) {
        put(out, "container_fs_reads_total", "device", dev, double(d.reads));
        put(out, "container_fs_writes_total", "device", dev, double(d.writes));
      }
      emit_blkio(out, dev, d);
    }
    if (opt_.groups.disk) emit_fs_usage(e, out);

    if (opt_.groups.process) {
      if (e.procs_counted) put(out, "container_processes", double(e.procs_total));
      if (s.threads) put(out, "container_threads", double(*s.threads));
      if (s.threads_max) put(out, "container_threads_max", double(*s.threads_max));
    }

    static constexpr std::string_view kPsi[3][2] = {
        {"container_pressure_cpu_waiting_seconds_total",
         "container_pressure_cpu_stalled_seconds_total"},
        {"container_pressure_memory_waiting_seconds_total",
         "container_pressure_memory_stalled_seconds_total"},
        {"container_pressure_io_waiting_seconds_total",
         "container_pressure_io_stalled_seconds_total"}};
    for (int i = 0; i < 3; ++i) {
      if (s.psi[i].some_us) put(out, kPsi[i][0], double(*s.psi[i].some_us) / 1e6);
      if (s.psi[i].full_us) put(out, kPsi[i][1], double(*s.psi[i].full_us) / 1e6);
    }

    if (opt_.groups.network) emit_network(e, out);
  }

  // container_blkio_device_usage_total{device,major,minor,operation}.
  void emit_blkio(moni::Batch& out, std::string_view dev, const IoDevice& d) {
    static constexpr std::string_view kOps[IoDevice::kOps] = {"Read",  "Write",   "Sync",
                                                              "Async", "Discard", "Total"};
    char major[12], minor[12];
    auto ma = std::to_chars(major, major + sizeof major, d.major);
    auto mi = std::to_chars(minor, minor + sizeof minor, d.minor);
    std::string_view maj(major, size_t(ma.ptr - major)), min(minor, size_t(mi.ptr - minor));
    for (int i = 0; i < IoDevice::kOps; ++i) {
      if (!(d.op_mask & (1u << i))) continue;
      LabelRef extra[4] = {{"device", dev}, {"major", maj}, {"minor", min}, {"operation", kOps[i]}};
      put_extra(out, "container_blkio_device_usage_total", extra, double(d.op_bytes[i]));
    }
  }

  // Network counters of the cgroup's own network namespace, read through one
  // of its processes and parsed once per namespace per collection; the root
  // cgroup reports the host's. Cgroups sharing the host's namespace are
  // skipped, as cAdvisor does for non-containers.
  void emit_network(Entry& e, moni::Batch& out) {
    bool root = *e.id == "/";
    uint64_t ns = host_netns_;
    if (!root) {
      if (host_netns_ == 0 || e.first_pid == 0) return;
      // The namespace of a process rarely changes: looked up again when the
      // first process changes, and every kSpecEvery collections.
      if (e.first_pid != e.netns_pid || cycle_ - e.netns_cycle >= kSpecEvery) {
        e.netns_pid = e.first_pid;
        e.netns_cycle = cycle_;
        e.netns = 0;
        set_pid_path(e.first_pid, "/ns/net");
        if (read_link(link_)) e.netns = netns_inode(link_);
      }
      ns = e.netns;
      if (ns == 0 || ns == host_netns_) return;
    }
    Netns& n = netns_[ns];
    if (n.cycle != cycle_) {
      n.cycle = cycle_;
      // Opened afresh each time: an open /proc/<pid>/net/dev would keep the
      // namespace (and its interfaces) alive after the container is gone.
      if (root)
        set_pid_path(1, "/net/dev");
      else
        set_pid_path(e.first_pid, "/net/dev");
      std::string_view text;
      // false: the process exited
      n.ok = stats_reader_->read_path_at(procfs_fd_, pid_path_.c_str(), text);
      if (n.ok) StatsReader::parse_netdev(text, n.ifaces);
    }
    if (!n.ok) return;
    for (const NetInterface& i : n.ifaces) {
      std::string_view name = i.view();
      put(out, "container_network_receive_bytes_total", "interface", name, double(i.rx_bytes));
      put(out, "container_network_receive_packets_total", "interface", name, double(i.rx_packets));
      put(out, "container_network_receive_errors_total", "interface", name, double(i.rx_errors));
      put(out, "container_network_receive_packets_dropped_total", "interface", name,
          double(i.rx_dropped));
      put(out, "container_network_transmit_bytes_total", "interface", name, double(i.tx_bytes));
      put(out, "container_network_transmit_packets_total", "interface", name, double(i.tx_packets));
      put(out, "container_network_transmit_errors_total", "interface", name, double(i.tx_errors));
      put(out, "container_network_transmit_packets_dropped_total", "interface", name,
          double(i.tx_dropped));
    }
  }

  void set_pid_path(uint64_t pid, std::string_view suffix) {
    char digits[24];
    auto r = std::to_chars(digits, digits + sizeof digits, pid);
    // Relative to procfs_fd_ when open: two path components fewer per
    // lookup (one per container and collection for net/dev).
    pid_path_.clear();
    if (procfs_fd_ == AT_FDCWD) {
      pid_path_.assign(opt_.procfs);
      pid_path_.push_back('/');
    }
    pid_path_.append(digits, r.ptr);
    pid_path_.append(suffix);
  }

  // container_fs_{usage,limit}_bytes and inodes of a Docker container's
  // writable layer (overlay2): a walk of its upper directory, as du, repeated
  // every fs_usage_interval. Expensive: off unless enabled.
  void emit_fs_usage(Entry& e, moni::Batch& out) {
    if (e.runtime != Runtime::Docker) return;
    if (!e.fs) e.fs = std::make_unique<FsUsage>();
    FsUsage& f = *e.fs;
    if (!f.resolved) {
      f.resolved = true;
      f.dir = docker_upper_dir(e.container_id);
    }
    if (f.dir.empty()) return;
    // du of big layers is slow: past kFsBudget in one collection the rest
    // keep their last figures and are measured in a later one.
    if ((f.measured_ms == 0 || ts_ - f.measured_ms >= opt_.fs_usage_interval_ms) &&
        std::chrono::steady_clock::now() < fs_deadline_) {
      f.measured_ms = ts_;
      f.ok = measure_fs(f);
    }
    if (!f.ok) return;
    std::string_view dev = device_name(f.major, f.minor);
    put(out, "container_fs_usage_bytes", "device", dev, double(f.usage));
    put(out, "container_fs_limit_bytes", "device", dev, double(f.limit));
    put(out, "container_fs_inodes_total", "device", dev, double(f.inodes_total));
    put(out, "container_fs_inodes_free", "device", dev, double(f.inodes_free));
  }

  // <docker_root>/overlay2/<mount-id>/diff, the mount id from the layer
  // store; empty when Docker does not use overlay2 or the id is unknown.
  std::string docker_upper_dir(const std::string& id) {
    std::string_view text;
    std::string p = opt_.docker_root + "/image/overlay2/layerdb/mounts/" + id + "/mount-id";
    if (!stats_reader_->read_path(p.c_str(), text)) return {};
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    if (text.empty() || text.find('/') != std::string_view::npos) return {};
    return opt_.docker_root + "/overlay2/" + std::string(text) + "/diff";
  }

  // du of f.dir (blocks of each inode once, not crossing filesystems) and
  // statvfs of its filesystem.
  static bool measure_fs(FsUsage& f) {
    struct stat st {};
    struct statvfs vfs {};
    if (::stat(f.dir.c_str(), &st) != 0 || ::statvfs(f.dir.c_str(), &vfs) != 0) return false;
    f.major = major(st.st_dev);
    f.minor = minor(st.st_dev);
    f.limit = uint64_t(vfs.f_blocks) * vfs.f_frsize;
    f.inodes_total = vfs.f_files;
    f.inodes_free = vfs.f_ffree;
    f.usage = 0;
    std::unordered_set<uint64_t> seen;  // hard-linked inodes count once
    int fd = ::open(f.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    f.usage = uint64_t(st.st_blocks) * 512;
    du(fd, st.st_dev, seen, f.usage, 0);
    return true;
  }
  static void du(int dirfd, dev_t dev, std::unordered_set<uint64_t>& seen, uint64_t& total,
                 int depth) {
    DIR* d = ::fdopendir(dirfd);
    if (!d) {
      ::close(dirfd);
      return;
    }
    while (dirent* de = ::readdir(d)) {
      if (de->d_name[0] == '.' &&
          (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
        continue;
      struct stat st {};
      if (::fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || st.st_dev != dev) continue;
      if (st.st_nlink > 1 && !S_ISDIR(st.st_mode) && !seen.insert(st.st_ino).second) continue;
      total += uint64_t(st.st_blocks) * 512;
      if (S_ISDIR(st.st_mode) && depth < 256) {
        int sub = ::openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub >= 0) du(sub, dev, seen, total, depth + 1);
      }
    }
    ::closedir(d);
  }

  // "/dev/sda" for 8:0 from sysfs, cached; "8:0" when sysfs does not know it.
  std::string_view device_name(uint32_t major, uint32_t minor) {
    uint64_t key = (uint64_t{major} << 32) | minor;
    auto it = devices_.find(key);
    if (it != devices_.end()) return it->second;
    std::string devno = std::to_string(major) + ":" + std::to_string(minor);
    std::string name = devno;
    std::string_view text;
    if (stats_reader_->read_path((opt_.sysfs + "/dev/block/" + devno + "/uevent").c_str(), text)) {
      for_each_line(text, [&](std::string_view line) {
        if (line.substr(0, 8) == "DEVNAME=") name = "/dev/" + std::string(line.substr(8));
      });
    }
    return devices_.emplace(key, std::move(name)).first->second;
  }

  moni::Context& ctx_;
  Options opt_;
  CgroupLayout layout_;
  std::vector<Hierarchy> hierarchies_;
  std::unique_ptr<StatsReader> stats_reader_;
  std::unique_ptr<RuntimeMetadata> metadata_;
  std::unique_ptr<CgroupWatch> watch_;
  struct Watched {
    Entry* entry;
    int h;      // hierarchy index
    bool file;  // a limit file, else the cgroup's directory
  };
  std::unordered_map<int, Watched> watched_;  // by watch descriptor
  std::vector<CgroupWatch::Event> events_;
  // Each hierarchy's cgroups in walk order (preorder, with depth), replayed
  // while inotify reports no change to the directory structure.
  struct TreeNode {
    Entry* entry;
    uint32_t depth;
  };
  struct Tree {
    std::vector<TreeNode> nodes;
    bool valid = false;
  };
  std::vector<Tree> trees_;
  struct ReplayFrame {
    Entry* entry;
    uint32_t depth;
    bool wants;
    uint64_t total;
  };
  std::vector<ReplayFrame> replay_stack_;
  FileReader reader_;
  struct StrHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Entry, StrHash, std::equal_to<>> entries_;
  std::unordered_map<uint64_t, Netns> netns_;
  std::unordered_map<uint64_t, std::string> devices_;
  std::vector<Entry*> cycle_list_;
  uint64_t cycle_ = 0;
  size_t emitted_ = 0;
  double now_s_ = 0;
  // Cgroups not reported: path not valid UTF-8, subtrees past kMaxDepth.
  uint64_t bad_paths_ = 0, too_deep_ = 0;
  std::string example_;  // the last of them, for the log
  uint64_t logged_errors_ = 0, logged_file_errors_ = 0;
  int64_t logged_ms_ = 0;
  CgroupStats stats_;
  std::vector<NetInterface> ifaces_;
  std::vector<LabelRef> labels_, with_extra_;
  int64_t ts_ = 0;
  std::string path_, id_, pid_path_, link_;
  int procfs_fd_ = AT_FDCWD;  // O_PATH of opt_.procfs
  uint64_t host_netns_ = 0;
  std::chrono::steady_clock::time_point fs_deadline_;
  // Figures of the last collection for self_metrics(), which the host may
  // call from another thread while a collection runs.
  std::atomic<size_t> published_containers_{0}, published_tracked_{0}, published_open_{0},
      published_watches_{0};
  std::atomic<uint64_t> published_malformed_{0}, published_unreadable_{0}, published_bad_paths_{0},
      published_too_deep_{0};
};

}  // namespace moni_cgroup

MONI_EXPORT_PLUGIN(moni_cgroup::CgroupCollector)
