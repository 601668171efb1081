// Time and heap allocations of one cgroup collection over 500 generated
// Docker containers (v2, and hybrid v1), calling the real .so through its C
// ABI with a minimal fake host, so the figure is the plugin's own cost (the
// emitted batch is only counted, not copied). Goal: < 20 ms per collection.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <moni/plugin_abi.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <moni/sample.hpp>
#include <new>
#include <string>
#include <utility>
#include <vector>

namespace fs = std::filesystem;

// ---- heap allocation counter (the plugin's operator new binds to this one)
static std::atomic<uint64_t> g_allocs{0};
// The replacements pair malloc with free; GCC cannot see that.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace {

constexpr int kContainers = 500;

void put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

std::string hex_id(int i) {
  char buf[65];
  for (int k = 0; k < 64; ++k) buf[k] = "0123456789abcdef"[(i * 7919 + k * 31) % 16];
  std::snprintf(buf, 9, "%08x", i);
  buf[8] = "0123456789abcdef"[i % 16];
  buf[64] = 0;
  return buf;
}

std::string netdev(int i) {
  return "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed "
         "multicast|bytes packets errs drop fifo colls carrier compressed\n"
         "    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: " +
         std::to_string(i * 1000) + " 10 0 0 0 0 0 0 " + std::to_string(i * 500) +
         " 5 0 0 0 0 0 0\n";
}

// A v2 or hybrid tree of kContainers Docker containers with the files a real
// kernel shows, their processes and Docker state.
std::string make_tree(bool v1) {
  // tmpfs when there is one: in-memory like cgroupfs, and quick to fill.
  std::string tmpl = fs::is_directory("/dev/shm") ? "/dev/shm/moni-cgroup-bench-XXXXXX"
                                                  : "/tmp/moni-cgroup-bench-XXXXXX";
  fs::path base = ::mkdtemp(tmpl.data());
  fs::path cg = base / "cgroup";
  if (v1) {
    put(base / "mountinfo",
        "30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 25 0:30 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n"
        "33 25 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"
        "26 25 0:24 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
  } else {
    put(base / "mountinfo", "25 24 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  }
  fs::create_directories(base / "proc/1/ns");
  fs::create_symlink("net:[4026531840]", base / "proc/1/ns/net");
  put(base / "proc/1/net/dev", netdev(1));
  put(base / "sys/dev/block/8:0/uevent", "MAJOR=8\nMINOR=0\nDEVNAME=sda\n");
  std::string memstat_v2 =
      "anon 73400320\nfile 26214400\nkernel 1048576\nkernel_stack 65536\npagetables 131072\n"
      "sock 0\nshmem 0\nfile_mapped 4096\nfile_dirty 0\nfile_writeback 0\nanon_thp 0\n"
      "inactive_anon 0\nactive_anon 73400320\ninactive_file 10485760\nactive_file 15728640\n"
      "unevictable 0\nslab_reclaimable 100000\nslab_unreclaimable 50000\nslab 150000\n"
      "workingset_refault_anon 0\nworkingset_refault_file 0\npgfault 12345\npgmajfault 12\n";
  std::string memstat_v1 =
      "cache 26214400\nrss 73400320\nrss_huge 0\nshmem 0\nmapped_file 4096\ndirty 0\n"
      "writeback 0\nswap 0\npgpgin 100\npgpgout 50\npgfault 12345\npgmajfault 12\n"
      "inactive_anon 0\nactive_anon 73400320\ninactive_file 10485760\nactive_file 15728640\n"
      "unevictable 0\nhierarchical_memory_limit 268435456\ntotal_cache 26214400\n"
      "total_rss 73400320\ntotal_rss_huge 0\ntotal_shmem 0\ntotal_mapped_file 4096\n"
      "total_swap 0\ntotal_pgfault 12345\ntotal_pgmajfault 12\ntotal_inactive_anon 0\n"
      "total_active_anon 73400320\ntotal_inactive_file 10485760\ntotal_active_file 15728640\n";
  for (int i = 0; i < kContainers; ++i) {
    std::string id = hex_id(i);
    int pid = 10000 + i;
    std::string procs = std::to_string(pid) + "\n" + std::to_string(pid + 100000) + "\n";
    std::string rel = v1 ? "/docker/" + id : "/system.slice/docker-" + id + ".scope";
    if (v1) {
      fs::path c = cg / ("cpu,cpuacct" + rel), m = cg / ("memory" + rel), b = cg / ("blkio" + rel),
               p = cg / ("pids" + rel);
      for (const auto& d : {c, m, b, p}) put(d / "cgroup.procs", procs);
      put(c / "tasks", procs);
      put(c / "cpuacct.usage", "123456789000\n");
      put(c / "cpuacct.stat", "user 8000\nsystem 4000\n");
      put(c / "cpu.stat", "nr_periods 1200\nnr_throttled 30\nthrottled_time 450000000\n");
      put(c / "cpu.cfs_quota_us", "50000\n");
      put(c / "cpu.cfs_period_us", "100000\n");
      put(c / "cpu.shares", "1024\n");
      put(m / "memory.usage_in_bytes", "104857600\n");
      put(m / "memory.stat", memstat_v1);
      put(m / "memory.limit_in_bytes", "268435456\n");
      put(m / "memory.failcnt", "0\n");
      put(m / "memory.max_usage_in_bytes", "157286400\n");
      put(m / "memory.memsw.limit_in_bytes", "9223372036854771712\n");
      put(m / "memory.soft_limit_in_bytes", "9223372036854771712\n");
      put(m / "memory.kmem.usage_in_bytes", "1048576\n");
      put(m / "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n");
      put(b / "blkio.throttle.io_service_bytes_recursive",
          "8:0 Read 1048576\n8:0 Write 2097152\n8:0 Sync 3145728\n8:0 Async 0\n"
          "8:0 Discard 0\n8:0 Total 3145728\nTotal 3145728\n");
      put(b / "blkio.throttle.io_serviced_recursive",
          "8:0 Read 10\n8:0 Write 20\n8:0 Sync 30\n8:0 Async 0\n8:0 Discard 0\n8:0 Total 30\n"
          "Total 30\n");
      put(p / "pids.current", "2\n");
      put(p / "pids.max", "max\n");
    } else {
      fs::path d = cg / rel.substr(1);
      put(d / "cgroup.procs", procs);
      put(d / "cpu.stat",
          "usage_usec 12500000\nuser_usec 9000000\nsystem_usec 3500000\ncore_sched.force_idle_usec "
          "0\nnr_periods 1200\nnr_throttled 30\nthrottled_usec 450000\nnr_bursts 0\nburst_usec "
          "0\n");
      put(d / "cpu.max", "50000 100000\n");
      put(d / "cpu.weight", "100\n");
      put(d / "memory.current", "104857600\n");
      put(d / "memory.stat", memstat_v2);
      put(d / "memory.max", "268435456\n");
      put(d / "memory.swap.current", "0\n");
      put(d / "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n");
      put(d / "io.stat", "8:0 rbytes=1048576 wbytes=2097152 rios=10 wios=20 dbytes=0 dios=0\n");
      put(d / "pids.current", "2\n");
      put(d / "pids.max", "max\n");
      put(d / "memory.peak", "157286400\n");
      put(d / "memory.high", "max\n");
      put(d / "memory.swap.max", "max\n");
      for (const char* r : {"cpu", "memory", "io"})
        put(d / (std::string(r) + ".pressure"),
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=12345\n"
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=6789\n");
    }
    fs::create_directories(base / "proc" / std::to_string(pid) / "ns");
    fs::create_symlink("net:[" + std::to_string(4026532000 + i) + "]",
                       base / "proc" / std::to_string(pid) / "ns/net");
    put(base / "proc" / std::to_string(pid) / "net/dev", netdev(i));
    put(base / "docker/containers" / id / "config.v2.json",
        "{\"ID\":\"" + id + "\",\"Created\":\"2024-03-01T10:00:00Z\",\"Name\":\"/app-" +
            std::to_string(i) +
            "\",\"Config\":{\"Image\":\"registry.example.com/app:1\",\"Labels\":{"
            "\"com.docker.compose.project\":\"shop\",\"com.docker.compose.service\":\"app\"}}}");
  }
  return base;
}

// ---- a minimal fake host: a flat config table of strings and the C ABI
struct CfgNode {
  uint32_t type = MONI_CFG_TABLE;
  std::string text;
  int64_t integer = 0;
  std::vector<std::pair<std::string, CfgNode>> entries;
};
const CfgNode* N(const moni_config_node* n) { return reinterpret_cast<const CfgNode*>(n); }
const moni_config_node* C(const CfgNode* n) { return reinterpret_cast<const moni_config_node*>(n); }
const moni_config_api kConfigApi = {
    sizeof(moni_config_api),
    [](const moni_config_node* n) { return N(n)->type; },
    [](const moni_config_node* t, moni_str key) -> const moni_config_node* {
      for (const auto& [k, v] : N(t)->entries)
        if (k == moni::sv(key)) return C(&v);
      return nullptr;
    },
    [](const moni_config_node* n) { return N(n)->entries.size(); },
    [](const moni_config_node* n, size_t i, moni_str* key) {
      if (key) *key = moni::ms(N(n)->entries[i].first);
      return C(&N(n)->entries[i].second);
    },
    [](const moni_config_node* n) { return moni::ms(N(n)->text); },
    [](const moni_config_node* n) -> int64_t { return N(n)->integer; },
    [](const moni_config_node*) { return 0.0; },
    [](const moni_config_node*) { return 0; },
    [](const moni_config_node*) {
      return moni_source_pos{{"bench", 5}, 0, 0};
    },
};

struct Emitted {
  size_t samples = 0;
};
int count_emit(void* ctx, const moni_batch* b) {
  static_cast<Emitted*>(ctx)->samples += b->sample_count;
  return MONI_OK;
}

// The values of moni_cgroup_open_files and moni_cgroup_watches in a
// self-metrics batch (-1: not reported, e.g. by an older build).
struct SelfFigures {
  double open_files = -1, watches = -1;
};
int find_self_figures(void* ctx, const moni_batch* b) {
  auto* f = static_cast<SelfFigures*>(ctx);
  for (size_t i = 0; i < b->sample_count; ++i)
    for (uint32_t l = 0; l < b->samples[i].label_count; ++l) {
      std::string_view v = moni::sv(b->samples[i].labels[l].value);
      if (v == "moni_cgroup_open_files") f->open_files = b->samples[i].value;
      if (v == "moni_cgroup_watches") f->watches = b->samples[i].value;
    }
  return MONI_OK;
}

CfgNode str(std::string s) {
  CfgNode n;
  n.type = MONI_CFG_STRING;
  n.text = std::move(s);
  return n;
}

CfgNode integer(int64_t v) {
  CfgNode n;
  n.type = MONI_CFG_INTEGER;
  n.integer = v;
  return n;
}

void run_collect(benchmark::State& state, const CfgNode& cfg, int containers);

// max_open_files < 0: the plugin's default budget.
void collect_bench(benchmark::State& state, bool v1, int64_t max_open_files) {
  std::string dir = make_tree(v1);
  CfgNode cfg;
  cfg.entries = {{"root", str(dir + "/cgroup")},
                 {"mountinfo", str(dir + "/mountinfo")},
                 {"procfs", str(dir + "/proc")},
                 {"sysfs", str(dir + "/sys")},
                 {"docker_root", str(dir + "/docker")}};
  if (max_open_files >= 0) cfg.entries.push_back({"max_open_files", integer(max_open_files)});
  run_collect(state, cfg, kContainers);
  fs::remove_all(dir);
}

// 500 empty cgroups made in this machine's real cgroupfs (every v1
// controller hierarchy, or the v2 tree), collected with an include filter:
// the kernel's own file generation instead of tmpfs. Skipped when the
// cgroupfs is not writable.
void real_cgroupfs_bench(benchmark::State& state, int64_t max_open_files) {
  std::vector<std::string> tops;
  std::string name = "moni-bench-" + std::to_string(::getpid());
  for (const char* c : {"cpu,cpuacct", "cpu", "cpuacct", "memory", "blkio", "pids", ""}) {
    fs::path top = fs::path("/sys/fs/cgroup") / c / name;
    if (std::string(c).empty() && !tops.empty()) break;  // v1 found: not the v2 root
    if (!fs::exists(top.parent_path() / "cgroup.procs")) continue;
    if (::mkdir(top.c_str(), 0755) != 0) continue;
    tops.push_back(top);
  }
  if (tops.empty()) {
    state.SkipWithError("cannot create cgroups under /sys/fs/cgroup (needs root)");
    return;
  }
  for (const auto& t : tops)
    for (int i = 0; i < kContainers; ++i) ::mkdir((t + "/c" + std::to_string(i)).c_str(), 0755);
  CfgNode cfg;
  CfgNode include;
  include.type = MONI_CFG_ARRAY;
  include.entries = {{"", str("^/" + name + "/")}};
  cfg.entries = {{"include", include}};
  if (max_open_files >= 0) cfg.entries.push_back({"max_open_files", integer(max_open_files)});
  run_collect(state, cfg, kContainers);
  for (const auto& t : tops) {
    for (int i = 0; i < kContainers; ++i) ::rmdir((t + "/c" + std::to_string(i)).c_str());
    ::rmdir(t.c_str());
  }
}

void run_collect(benchmark::State& state, const CfgNode& cfg, int containers) {
  moni_host_api host{};
  host.struct_size = sizeof host;
  host.abi_major = MONI_ABI_MAJOR;
  host.abi_minor = MONI_ABI_MINOR;
  host.instance_name = moni::ms("bench");
  host.config = &kConfigApi;
  host.log = [](void*, uint32_t, moni_str) {};
  host.now_ms = [](void*) -> int64_t { return 1700000000000; };
  // MONI_CGROUP_SO: another build of the plugin (e.g. an older commit's),
  // to compare two builds in one run on a machine whose load drifts.
  const char* other = std::getenv("MONI_CGROUP_SO");
  std::string so = other ? other : std::string(MONI_PLUGIN_BUILD_DIR) + "/moni-cgroup.so";
  void* lib = ::dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    state.SkipWithError(("dlopen failed: " + std::string(::dlerror())).c_str());
    return;
  }
  auto entry = reinterpret_cast<moni_plugin_entry_fn>(::dlsym(lib, MONI_PLUGIN_ENTRY_SYMBOL));
  const moni_plugin_descriptor* d = entry(&host);
  moni_error err{};
  moni_instance* inst = d->create(&host, C(&cfg), &err);
  if (!inst || d->start(inst, &err) != MONI_OK) {
    state.SkipWithError(err.message);
    return;
  }
  Emitted warm;
  d->collect(inst, 1700000000000, count_emit, &warm, &err);  // first sight: metadata

  uint64_t allocs = 0, samples = 0, n = 0;
  // Kernel and user CPU of this thread: the split says whether file reads
  // (kernel) or parsing and labels (user) dominate.
  auto cpu_us = [](const timeval& t) { return double(t.tv_sec) * 1e6 + double(t.tv_usec); };
  struct rusage r0 {
  }, r1{};
  ::getrusage(RUSAGE_THREAD, &r0);
  for (auto _ : state) {
    Emitted e;
    uint64_t a0 = g_allocs.load();
    int rc = d->collect(inst, 1700000000000, count_emit, &e, &err);
    allocs += g_allocs.load() - a0;
    samples += e.samples;
    ++n;
    if (rc != MONI_OK) state.SkipWithError(err.message);
  }
  ::getrusage(RUSAGE_THREAD, &r1);
  state.counters["sys_ms"] = (cpu_us(r1.ru_stime) - cpu_us(r0.ru_stime)) / 1e3 / double(n);
  state.counters["user_ms"] = (cpu_us(r1.ru_utime) - cpu_us(r0.ru_utime)) / 1e3 / double(n);
  state.counters["containers"] = containers;
  state.counters["samples"] = static_cast<double>(samples) / static_cast<double>(n);
  state.counters["allocs"] = static_cast<double>(allocs) / static_cast<double>(n);
  SelfFigures self;
  d->self_metrics(inst, find_self_figures, &self);
  state.counters["open_files"] = self.open_files;
  state.counters["watches"] = self.watches;
  d->stop(inst);
  d->destroy(inst);
  ::dlclose(lib);
}

// The floor under the collection: one open+read+close of a small file on the
// same filesystem. A v2 collection does about 12 such reads per container
// (plus a directory open, a stat and a readlink), so 500 containers cost
// ~6000 of these; compare machines by this figure.
void BM_OpenReadClose(benchmark::State& state) {
  std::string dir = fs::is_directory("/dev/shm") ? "/dev/shm" : "/tmp";
  std::string path = dir + "/moni-cgroup-bench-file-" + std::to_string(::getpid());
  put(path, "usage_usec 12500000\nuser_usec 9000000\nsystem_usec 3500000\n");
  char buf[4096];
  for (auto _ : state) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    benchmark::DoNotOptimize(::read(fd, buf, sizeof buf));
    ::close(fd);
  }
  fs::remove(path);
}
BENCHMARK(BM_OpenReadClose)->Unit(benchmark::kMicrosecond);

// Default settings (files kept open), and with max_open_files = 0: every
// file opened, read and closed each collection (the plugin before it kept
// files open).
void BM_CgroupCollect500_V2(benchmark::State& s) { collect_bench(s, false, -1); }
void BM_CgroupCollect500_V2_NoKeptFiles(benchmark::State& s) { collect_bench(s, false, 0); }
void BM_CgroupCollect500_HybridV1(benchmark::State& s) { collect_bench(s, true, -1); }
void BM_CgroupCollect500_HybridV1_NoKeptFiles(benchmark::State& s) { collect_bench(s, true, 0); }
void BM_CgroupCollect500_RealCgroupfs(benchmark::State& s) { real_cgroupfs_bench(s, -1); }
void BM_CgroupCollect500_RealCgroupfs_NoKeptFiles(benchmark::State& s) {
  real_cgroupfs_bench(s, 0);
}
BENCHMARK(BM_CgroupCollect500_V2)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_CgroupCollect500_V2_NoKeptFiles)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_CgroupCollect500_HybridV1)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_CgroupCollect500_HybridV1_NoKeptFiles)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_CgroupCollect500_RealCgroupfs)->Unit(benchmark::kMillisecond)->MinTime(2.0);
// 500 empty cgroups in the cgroup2 tree of a hybrid host, read as a v2 host
// (a mount table naming it the only cgroup mount). Hybrid hosts bind every
// controller to v1, so only v2's core files exist there (cpu.stat, the PSI
// files, cgroup.procs): a partial view of real v2 costs. Skipped without a
// writable cgroup2 mount at /sys/fs/cgroup/unified.
void BM_CgroupCollect500_RealUnifiedCoreFiles(benchmark::State& state) {
  std::string name = "moni-bench-" + std::to_string(::getpid());
  fs::path top = fs::path("/sys/fs/cgroup/unified") / name;
  if (!fs::exists(top.parent_path() / "cgroup.procs") || ::mkdir(top.c_str(), 0755) != 0) {
    state.SkipWithError("no writable cgroup2 tree at /sys/fs/cgroup/unified");
    return;
  }
  auto child = [&](int i) {
    std::string p = top.string();
    p += "/c";
    p += std::to_string(i);
    return p;
  };
  for (int i = 0; i < kContainers; ++i) ::mkdir(child(i).c_str(), 0755);
  std::string mountinfo = "/tmp/" + name + "-mountinfo";
  put(mountinfo, "25 24 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
  CfgNode cfg;
  CfgNode include;
  include.type = MONI_CFG_ARRAY;
  include.entries = {{"", str("^/" + name + "/")}};
  cfg.entries = {
      {"include", include}, {"root", str("/sys/fs/cgroup/unified")}, {"mountinfo", str(mountinfo)}};
  run_collect(state, cfg, kContainers);
  for (int i = 0; i < kContainers; ++i) ::rmdir(child(i).c_str());
  ::rmdir(top.c_str());
  fs::remove(mountinfo);
}
BENCHMARK(BM_CgroupCollect500_RealUnifiedCoreFiles)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_CgroupCollect500_RealCgroupfs_NoKeptFiles)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
