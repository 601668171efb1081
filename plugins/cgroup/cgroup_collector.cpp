// The cgroup collector: cAdvisor's container_* families for every cgroup of
// a v2, v1 or hybrid host, with names and images from the container runtimes'
// state on disk. See README.md for options and metrics.
#include <dirent.h>
#include <fcntl.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <memory>
#include <moni/sdk.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cgroup_layout.hpp"
#include "cgroup_stats.hpp"
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
    {"container_memory_failcnt", MetricType::Counter, "Number of memory usage hits limits"},
    {"container_oom_events_total", MetricType::Counter,
     "Count of out of memory events observed for the container"},
    {"container_spec_memory_limit_bytes", MetricType::Gauge, "Memory limit for the container."},
    {"container_fs_reads_bytes_total", MetricType::Counter, "Cumulative count of bytes read"},
    {"container_fs_writes_bytes_total", MetricType::Counter, "Cumulative count of bytes written"},
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
// files is a sixth of the reads.
constexpr uint64_t kSpecEvery = 4;
// Attempts to find a container's runtime metadata before giving up on it
// (its state file may appear a moment after its cgroup).
constexpr int kMetaAttempts = 10;

std::string sanitize_label_name(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
      c = '_';
  return out;
}

struct Options {
  std::string root, mountinfo, procfs, sysfs;
  std::string docker_root, containers_storage, containerd_state;
  bool docker_only = false;
  bool network = true;
  bool container_labels = true;
  std::vector<std::unique_ptr<RE2>> include, exclude;
};

// One cgroup seen by the walk; kept across cycles while it exists.
struct Entry {
  const std::string* id = nullptr;  // the map key: "/", "/docker/<id>", ...
  Entry* parent = nullptr;
  uint64_t seen = 0;  // cycle it was last seen in
  unsigned mask = 0;  // v1 hierarchies holding it (this cycle)
  bool accepted = false;
  Runtime runtime = Runtime::None;
  std::string container_id;
  int meta_attempts = 0;
  bool meta_found = false;
  std::string name, image;
  std::vector<std::pair<std::string, std::string>> labels;  // sanitized container_label_*
  int64_t start_time_s = 0;
  // Limits as last read (cycle spec_cycle; 0: never).
  uint64_t spec_cycle = 0;
  std::optional<uint64_t> cpu_quota, cpu_period, cpu_shares, mem_limit;
  // This cycle's process counts (walk of the counting hierarchy).
  bool procs_read = false, procs_counted = false;
  uint64_t procs_own = 0, procs_total = 0;
  uint64_t first_pid = 0;
};

}  // namespace

/// Thread-safety: collect() is never run concurrently with itself (host
/// contract); nothing else touches the state.
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
# network = true                     # container_network_* from container netns
# container_labels = true            # container_label_* from Docker labels)";

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
    opt_.network = r.boolean("network", true);
    opt_.container_labels = r.boolean("container_labels", true);
    compile_patterns(r, "include", opt_.include);
    compile_patterns(r, "exclude", opt_.exclude);
    while (!opt_.root.empty() && opt_.root.size() > 1 && opt_.root.back() == '/')
      opt_.root.pop_back();
    r.finish();
  }

  moni::Result<void> start() override {
    std::string_view text;
    if (!reader_.read(opt_.mountinfo.c_str(), text))
      return moni::make_error("cgroup: cannot read the mount table " + opt_.mountinfo +
                              " (set `mountinfo`)");
    auto layout = detect_layout(text, opt_.root);
    if (!layout)
      return moni::make_error("cgroup: " + layout.error().message + " " + opt_.mountinfo +
                              " (set `mountinfo` and `root`)");
    layout_ = std::move(*layout);
    stats_reader_ = std::make_unique<StatsReader>(layout_);
    metadata_ = std::make_unique<RuntimeMetadata>(opt_.docker_root, opt_.containers_storage,
                                                  opt_.containerd_state);
    // v1: every controller hierarchy is walked (a cgroup may exist in some
    // only), each directory once (co-mounted controllers share one).
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
    ctx_.info("cgroup: " + std::string(layout_.mode_name()) + " layout under " + opt_.root);
    return {};
  }

  moni::Result<void> collect(moni::Batch& out) override {
    if (!stats_reader_) return moni::make_error("cgroup: collect before start");
    ++cycle_;
    cycle_list_.clear();
    for (size_t h = 0; h < hierarchies_.size(); ++h) {
      path_ = hierarchies_[h].dir;
      walk(h, path_.size(), nullptr, false, 0, AT_FDCWD, path_.c_str(), false);
    }
    // Forget cgroups that are gone: their series simply stop.
    for (auto it = entries_.begin(); it != entries_.end();)
      it = it->second.seen == cycle_ ? std::next(it) : entries_.erase(it);

    for (const auto& f : kFamilies) out.describe(f.name, f.type, f.help);
    ts_ = out.default_timestamp();
    now_s_ = std::floor(static_cast<double>(ts_) / 1000.0);
    host_netns_ok_ = opt_.network && read_link((opt_.procfs + "/1/ns/net").c_str(), host_netns_);
    emitted_ = 0;
    for (Entry* e : cycle_list_) emit(*e, out);
    return {};
  }

  void self_metrics(moni::Batch& out) override {
    out.describe("moni_cgroup_containers", MetricType::Gauge,
                 "Cgroups reported in the last collection.");
    out.add("moni_cgroup_containers", {}, static_cast<double>(emitted_));
    out.describe("moni_cgroup_tracked_cgroups", MetricType::Gauge,
                 "Cgroups whose state the collector keeps between collections.");
    out.add("moni_cgroup_tracked_cgroups", {}, static_cast<double>(entries_.size()));
  }

 private:
  struct Hierarchy {
    std::string dir;
    unsigned mask;  // v1 controllers in it (0 for v2)
  };

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
                int parent_fd, const char* name, bool leaf) {
    if (path_.size() == base_len)
      id_.assign("/");
    else
      id_.assign(path_, base_len, std::string::npos);
    Entry& e = touch(id_, parent);
    e.mask |= hierarchies_[h].mask;
    bool wants = e.accepted || parent_wants;
    uint64_t total = 0;
    DIR* d = leaf || depth >= 64 ? nullptr : ::opendir(path_.c_str());
    // cgroup.procs is read once per cycle, in the first hierarchy holding the
    // cgroup; subtree totals come from that hierarchy's walk.
    if (wants) {
      if (!e.procs_read) {
        e.procs_read = true;
        std::string_view text;
        bool ok;
        if (d) {
          ok = reader_.read_at(::dirfd(d), "cgroup.procs", text);
        } else {
          procs_rel_.assign(name);
          procs_rel_.append("/cgroup.procs");
          ok = reader_.read_at(parent_fd, procs_rel_.c_str(), text);
        }
        if (ok) {
          e.procs_own = count_lines(text);
          if (e.procs_own > 0) parse_u64(text.substr(0, text.find('\n')), e.first_pid);
        }
      }
      total = e.procs_own;
    }
    if (d) {
      int fd = ::dirfd(d);
      while (dirent* de = ::readdir(d)) {
        if (de->d_name[0] == '.' &&
            (de->d_name[1] == '\0' || (de->d_name[1] == '.' && de->d_name[2] == '\0')))
          continue;
        if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN) continue;
        struct stat st {};
        if (::fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
          continue;
        size_t len = path_.size();
        path_.push_back('/');
        path_.append(de->d_name);
        total += walk(h, base_len, &e, wants, depth + 1, fd, de->d_name, st.st_nlink == 2);
        path_.resize(len);
      }
      ::closedir(d);
    }
    if (wants && !e.procs_counted) {
      e.procs_counted = true;
      e.procs_total = total;
    }
    return total;
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
    }
    if (e.seen != cycle_) {
      e.seen = cycle_;
      e.mask = 0;
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
    return e;
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

  bool read_link(const char* path, std::string& out) {
    char buf[128];
    ssize_t n = ::readlink(path, buf, sizeof buf);
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

  void emit(Entry& e, moni::Batch& out) {
    std::string_view rel = *e.id == "/" ? std::string_view() : std::string_view(*e.id);
    CgroupStats& s = stats_;
    bool spec = e.spec_cycle == 0 || cycle_ - e.spec_cycle >= kSpecEvery;
    stats_reader_->read(rel, e.mask, spec, s);
    if (!s.any) return;  // vanished between the walk and now
    if (spec) {
      e.spec_cycle = cycle_;
      e.cpu_quota = s.cpu_quota;
      e.cpu_period = s.cpu_period;
      e.cpu_shares = s.cpu_shares;
      e.mem_limit = s.mem_limit;
    } else {
      s.cpu_quota = e.cpu_quota;
      s.cpu_period = e.cpu_period;
      s.cpu_shares = e.cpu_shares;
      s.mem_limit = e.mem_limit;
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

    if (s.cpu_total_s && *s.cpu_total_s > 0)
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
    if (s.mem_rss) put(out, "container_memory_rss", double(*s.mem_rss));
    if (s.mem_cache) put(out, "container_memory_cache", double(*s.mem_cache));
    if (s.mem_swap) put(out, "container_memory_swap", double(*s.mem_swap));
    if (s.mem_failcnt) put(out, "container_memory_failcnt", double(*s.mem_failcnt));
    if (s.oom_kills) put(out, "container_oom_events_total", double(*s.oom_kills));
    if (s.mem_limit)
      put(out, "container_spec_memory_limit_bytes",
          *s.mem_limit > kMaxMemory ? 0.0 : double(*s.mem_limit));

    for (const IoDevice& d : s.io) {
      std::string_view dev = device_name(d.major, d.minor);
      put(out, "container_fs_reads_bytes_total", "device", dev, double(d.read_bytes));
      put(out, "container_fs_writes_bytes_total", "device", dev, double(d.write_bytes));
    }

    if (e.procs_counted) put(out, "container_processes", double(e.procs_total));
    if (s.threads) put(out, "container_threads", double(*s.threads));

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

    if (opt_.network) emit_network(e, out);
  }

  // Network counters of the cgroup's own network namespace, read through one
  // of its processes; the root cgroup reports the host's. Cgroups sharing the
  // host's namespace are skipped, as cAdvisor does for non-containers.
  void emit_network(const Entry& e, moni::Batch& out) {
    bool root = *e.id == "/";
    if (!root) {
      if (!host_netns_ok_ || e.first_pid == 0) return;
      char digits[24];
      auto r = std::to_chars(digits, digits + sizeof digits, e.first_pid);
      pid_path_.assign(opt_.procfs);
      pid_path_.push_back('/');
      pid_path_.append(digits, r.ptr);
      size_t len = pid_path_.size();
      pid_path_.append("/ns/net");
      if (!read_link(pid_path_.c_str(), netns_) || netns_ == host_netns_) return;
      pid_path_.resize(len);
      pid_path_.append("/net/dev");
    } else {
      pid_path_.assign(opt_.procfs);
      pid_path_.append("/1/net/dev");
    }
    std::string_view text;
    if (!stats_reader_->read_path(pid_path_.c_str(), text)) return;  // the process exited
    StatsReader::parse_netdev(text, ifaces_);
    for (const NetInterface& n : ifaces_) {
      std::string_view i = n.view();
      put(out, "container_network_receive_bytes_total", "interface", i, double(n.rx_bytes));
      put(out, "container_network_receive_packets_total", "interface", i, double(n.rx_packets));
      put(out, "container_network_receive_errors_total", "interface", i, double(n.rx_errors));
      put(out, "container_network_receive_packets_dropped_total", "interface", i,
          double(n.rx_dropped));
      put(out, "container_network_transmit_bytes_total", "interface", i, double(n.tx_bytes));
      put(out, "container_network_transmit_packets_total", "interface", i, double(n.tx_packets));
      put(out, "container_network_transmit_errors_total", "interface", i, double(n.tx_errors));
      put(out, "container_network_transmit_packets_dropped_total", "interface", i,
          double(n.tx_dropped));
    }
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
  FileReader reader_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<uint64_t, std::string> devices_;
  std::vector<Entry*> cycle_list_;
  uint64_t cycle_ = 0;
  size_t emitted_ = 0;
  double now_s_ = 0;
  CgroupStats stats_;
  std::vector<NetInterface> ifaces_;
  std::vector<LabelRef> labels_, with_extra_;
  int64_t ts_ = 0;
  std::string path_, id_, procs_rel_, pid_path_, netns_, host_netns_;
  bool host_netns_ok_ = false;
};

}  // namespace moni_cgroup

MONI_EXPORT_PLUGIN(moni_cgroup::CgroupCollector)
