// The cgroup collector driven through its real .so against fixture trees of
// v2 and hybrid v1 hosts (Docker, systemd, Podman, containerd), with golden
// output, filters, a container vanishing, and config errors.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "../../../plugins/cgroup/cgroup_layout.hpp"
#include "../../../plugins/cgroup/container_id.hpp"
#include "fixture_tree.hpp"

using cgroup_test::FixtureTree;
using moni::testing::plugin_path;
using moni::testing::PluginHarness;

namespace {

constexpr int64_t kNow = 1700000000000;
const std::string kWeb = "4c2a8e0f1b3d5a7c9e0f2b4d6a8c0e1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c0e2f";
const std::string kGone = "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c";
const std::string kDb = "b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7";

std::unique_ptr<PluginHarness> load(const std::string& toml) {
  auto h = PluginHarness::load(plugin_path("cgroup"), toml);
  if (!h.ok()) {
    ADD_FAILURE() << h.error().message;
    return nullptr;
  }
  auto p = std::move(*h);
  auto s = p->start();
  if (!s.ok()) {
    ADD_FAILURE() << s.error().message;
    return nullptr;
  }
  return p;
}

std::set<std::string> ids(const moni::testing::OwnedBatch& b) {
  std::set<std::string> out;
  for (const auto& s : b.samples) out.insert(s.label("id"));
  return out;
}

double value(const moni::testing::OwnedBatch& b, const std::string& name, const std::string& id) {
  for (const auto& s : b.samples)
    if (s.name() == name && s.label("id") == id) return s.value;
  return -1;
}

// The value of the sample of `name` for `id` whose label `l` is `v`.
double value_with(const moni::testing::OwnedBatch& b, const std::string& name,
                  const std::string& id, const std::string& l, const std::string& v) {
  for (const auto& s : b.samples)
    if (s.name() == name && s.label("id") == id && s.label(l) == v) return s.value;
  return -1;
}

size_t count_family(const moni::testing::OwnedBatch& b, const std::string& prefix) {
  size_t n = 0;
  for (const auto& s : b.samples) n += s.name().rfind(prefix, 0) == 0;
  return n;
}

double open_files(PluginHarness& p) {
  return p.self_metrics().one("moni_cgroup_open_files")->value;
}

// Rewrites a file in place (same inode), as the kernel's files change.
void overwrite(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::in | std::ios::out | std::ios::trunc);
  f << text;
}

}  // namespace

TEST(CgroupFixture, V2GoldenOutput) {
  FixtureTree t("v2");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  EXPECT_EQ(moni::sv(p->descriptor().name), "cgroup");
  EXPECT_EQ(p->descriptor().kind, MONI_KIND_COLLECTOR);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok()) << b.error().message;
  cgroup_test::expect_golden("v2.golden", cgroup_test::render(*b));

  // Hand-checked values from make_fixtures.py, so the golden file is not
  // merely self-confirming.
  const std::string web = "/system.slice/docker-" + kWeb + ".scope";
  const auto* cpu = b->one("container_cpu_usage_seconds_total", "id", web);
  ASSERT_NE(cpu, nullptr);
  EXPECT_EQ(cpu->label("cpu"), "total");
  EXPECT_EQ(cpu->label("name"), "web");
  EXPECT_EQ(cpu->label("image"), "nginx:1.25");
  EXPECT_EQ(cpu->label("container_label_com_docker_compose_project"), "shop");
  EXPECT_DOUBLE_EQ(cpu->value, 12.5);
  EXPECT_DOUBLE_EQ(value(*b, "container_memory_working_set_bytes", web), 104857600 - 10485760);
  EXPECT_DOUBLE_EQ(value(*b, "container_spec_memory_limit_bytes", web), 268435456);
  EXPECT_DOUBLE_EQ(value(*b, "container_spec_cpu_quota", web), 50000);
  EXPECT_DOUBLE_EQ(value(*b, "container_spec_cpu_shares", web), 2597);  // weight 100
  EXPECT_DOUBLE_EQ(value(*b, "container_cpu_cfs_throttled_seconds_total", web), 0.45);
  EXPECT_DOUBLE_EQ(value(*b, "container_start_time_seconds", web), 1709287200);
  EXPECT_DOUBLE_EQ(value(*b, "container_processes", web), 2);
  EXPECT_DOUBLE_EQ(value(*b, "container_pressure_cpu_stalled_seconds_total", web), 0.06);
  EXPECT_DOUBLE_EQ(value(*b, "container_last_seen", web), 1700000000);
  auto rx = b->find("container_network_receive_bytes_total", "id", web);
  ASSERT_EQ(rx.size(), 1u);  // lo is ignored
  EXPECT_EQ(rx[0].label("interface"), "eth0");
  EXPECT_EQ(rx[0].value, 123456);
  auto reads = b->find("container_fs_reads_bytes_total", "id", web);
  ASSERT_EQ(reads.size(), 2u);
  EXPECT_EQ(value_with(*b, "container_fs_reads_total", web, "device", "/dev/sda"), 10);
  EXPECT_EQ(value_with(*b, "container_fs_writes_total", web, "device", "/dev/sda"), 20);
  EXPECT_EQ(value_with(*b, "container_blkio_device_usage_total", web, "operation", "Write"),
            2097152 + 0);  // sda's; dm-0 wrote nothing
  // Families added for cAdvisor parity: peak, limits, faults, mapped, kernel.
  EXPECT_EQ(value(*b, "container_memory_max_usage_bytes", web), 157286400);
  EXPECT_EQ(value(*b, "container_spec_memory_reservation_limit_bytes", web), 201326592);
  EXPECT_EQ(value(*b, "container_spec_memory_swap_limit_bytes", web), 67108864);
  EXPECT_EQ(value(*b, "container_threads_max", web), 100);
  EXPECT_EQ(value(*b, "container_memory_mapped_file", web), 4096);
  EXPECT_EQ(value(*b, "container_memory_kernel_usage", web), 1048576);
  EXPECT_EQ(value(*b, "container_memory_total_active_file_bytes", web), 26214400 - 10485760);
  EXPECT_EQ(value_with(*b, "container_memory_failures_total", web, "failure_type", "pgmajfault"),
            1);
  EXPECT_EQ(b->find("container_memory_failures_total", "id", web).size(), 4u);
  // No memory.peak (kernel < 5.19): no max usage rather than an invented one.
  EXPECT_EQ(value(*b, "container_memory_max_usage_bytes", "/system.slice/nginx.service"), -1);
  // "max" limits are reported as 0, as cAdvisor does.
  EXPECT_EQ(value(*b, "container_spec_memory_swap_limit_bytes", "/system.slice/nginx.service"), 0);
  // nginx.service shares the host network namespace: no network series;
  // inactive_file > usage: working set floors at 0; no quota: no cfs series.
  const std::string nginx = "/system.slice/nginx.service";
  EXPECT_TRUE(b->find("container_network_receive_bytes_total", "id", nginx).empty());
  EXPECT_EQ(value(*b, "container_memory_working_set_bytes", nginx), 0);
  EXPECT_EQ(value(*b, "container_cpu_cfs_periods_total", nginx), -1);
  EXPECT_EQ(value(*b, "container_spec_memory_limit_bytes", nginx), 0);  // "max"
  EXPECT_EQ(value(*b, "container_start_time_seconds", nginx), FixtureTree::kMtime);
  // /system.slice counts the processes of its children.
  EXPECT_EQ(value(*b, "container_processes", "/system.slice"), 5);
  // Podman and containerd names and images from their state on disk.
  const auto* pod = b->one("container_memory_usage_bytes", "name", "api");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->label("image"), "quay.io/acme/api:2.1");
  EXPECT_EQ(value(*b, "container_start_time_seconds", pod->label("id")), 1709288800);
  const auto* k8s = b->one("container_memory_usage_bytes", "name", "worker");
  ASSERT_NE(k8s, nullptr);
  EXPECT_EQ(k8s->label("image"), "registry.example.com/worker:7");
  // The vanished container: nothing at all, and no invented labels anywhere.
  EXPECT_EQ(ids(*b).count("/system.slice/docker-" + kGone + ".scope"), 0u);
  EXPECT_TRUE(b->find("container_last_seen", "name", "leaving").empty());
  // The layout line of start(), and the one malformed line of the fixture
  // (nginx's active_file is negative, as no kernel writes it): skipped,
  // counted and named.
  auto logs = p->logs();
  ASSERT_EQ(logs.size(), 2u) << ::testing::PrintToString(logs);
  EXPECT_NE(logs[1].find("nginx.service/memory.stat: cannot parse"), std::string::npos) << logs[1];
  EXPECT_EQ(p->self_metrics().one("moni_cgroup_errors_total", "reason", "malformed_file")->value,
            1);
  EXPECT_EQ(value(*b, "container_memory_total_active_file_bytes", "/system.slice/nginx.service"),
            -1);
}

TEST(CgroupFixture, HybridV1GoldenOutput) {
  FixtureTree t("v1");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok()) << b.error().message;
  cgroup_test::expect_golden("v1.golden", cgroup_test::render(*b));

  const std::string db = "/docker/" + kDb;
  EXPECT_DOUBLE_EQ(value(*b, "container_cpu_usage_seconds_total", db), 5.0);
  EXPECT_DOUBLE_EQ(value(*b, "container_cpu_user_seconds_total", db), 3.5);  // 350 ticks
  EXPECT_DOUBLE_EQ(value(*b, "container_cpu_cfs_throttled_seconds_total", db), 0.25);
  EXPECT_DOUBLE_EQ(value(*b, "container_spec_cpu_quota", db), 200000);
  EXPECT_DOUBLE_EQ(value(*b, "container_spec_cpu_shares", db), 512);
  EXPECT_DOUBLE_EQ(value(*b, "container_memory_working_set_bytes", db), 52428800 - 4194304);
  EXPECT_DOUBLE_EQ(value(*b, "container_memory_failcnt", db), 3);
  EXPECT_DOUBLE_EQ(value(*b, "container_oom_events_total", db), 2);
  EXPECT_DOUBLE_EQ(value(*b, "container_threads", db), 2);
  EXPECT_DOUBLE_EQ(value(*b, "container_start_time_seconds", db), 1709251199);
  EXPECT_EQ(value(*b, "container_memory_max_usage_bytes", db), 67108864);
  EXPECT_EQ(value(*b, "container_spec_memory_swap_limit_bytes", db), 268435456);
  EXPECT_EQ(value(*b, "container_spec_memory_reservation_limit_bytes", db), 67108864);
  EXPECT_EQ(value(*b, "container_memory_kernel_usage", db), 2097152);
  EXPECT_EQ(value(*b, "container_memory_mapped_file", db), 8192);
  EXPECT_EQ(value(*b, "container_threads_max", db), 512);
  // v1 separates the cgroup's own faults from its subtree's.
  auto fault = [&](const char* type, const char* scope) {
    for (const auto& s : b->samples)
      if (s.name() == "container_memory_failures_total" && s.label("id") == db &&
          s.label("failure_type") == type && s.label("scope") == scope)
        return s.value;
    return -1.0;
  };
  EXPECT_EQ(fault("pgfault", "container"), 5000);
  EXPECT_EQ(fault("pgmajfault", "container"), 7);
  EXPECT_EQ(fault("pgfault", "hierarchy"), 5100);
  EXPECT_EQ(fault("pgmajfault", "hierarchy"), 8);
  EXPECT_EQ(value_with(*b, "container_fs_reads_total", db, "device", "/dev/sda"), 128);
  EXPECT_EQ(value_with(*b, "container_fs_writes_total", db, "device", "/dev/sda"), 4);
  EXPECT_EQ(value_with(*b, "container_blkio_device_usage_total", db, "operation", "Sync"),
            524288 + 131072);
  EXPECT_EQ(b->find("container_blkio_device_usage_total", "id", db).size(), 6u);
  // Per-CPU usage is off by default: one cpu="total" series.
  EXPECT_EQ(b->find("container_cpu_usage_seconds_total", "id", db).size(), 1u);
  // Unlimited memsw/soft limits (the kernel's rounded 2^63) read as 0.
  EXPECT_EQ(value(*b, "container_spec_memory_swap_limit_bytes", "/system.slice/sshd.service"), 0);
  // Off by default: no writable-layer usage.
  EXPECT_EQ(count_family(*b, "container_fs_usage"), 0u);
  const auto* w = b->one("container_fs_writes_bytes_total", "id", db);
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->label("device"), "/dev/sda");
  EXPECT_EQ(w->value, 131072);
  EXPECT_EQ(w->label("name"), "db");
  // Unlimited v1 memory (the kernel's rounded 2^63) reads as 0, -1 quota as none.
  const std::string sshd = "/system.slice/sshd.service";
  EXPECT_EQ(value(*b, "container_spec_memory_limit_bytes", sshd), 0);
  EXPECT_EQ(value(*b, "container_spec_cpu_quota", sshd), -1);
  // Hybrid: PSI from the unified mirror of the systemd unit.
  EXPECT_DOUBLE_EQ(value(*b, "container_pressure_cpu_waiting_seconds_total", sshd), 2.5);
  EXPECT_EQ(value(*b, "container_pressure_cpu_waiting_seconds_total", db), -1);
  // Podman via containers.json; its process has exited: no network, no error.
  const auto* pod = b->one("container_memory_rss", "name", "cache");
  ASSERT_NE(pod, nullptr);
  EXPECT_EQ(pod->label("image"), "docker.io/library/redis:7");
  EXPECT_TRUE(b->find("container_network_receive_bytes_total", "name", "cache").empty());
  EXPECT_EQ(ids(*b).count("/docker/" + kGone), 0u);

  // Kept-open files or not, the output is the same, and stays the same on
  // the next collection (read through the kept descriptors).
  auto none = load(t.config("max_open_files = 0\n"));
  ASSERT_TRUE(none);
  auto b0 = none->collect(kNow);
  ASSERT_TRUE(b0.ok());
  EXPECT_EQ(cgroup_test::render(*b0), cgroup_test::render(*b));
  auto again = p->collect(kNow);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(cgroup_test::render(*again), cgroup_test::render(*b));
  EXPECT_GT(p->self_metrics().one("moni_cgroup_open_files")->value, 30);
}

TEST(CgroupFixture, PerCpuUsageReplacesTheTotalOnV1WhenEnabled) {
  FixtureTree t("v1");
  auto p = load(t.config("enable_metrics = ['percpu']\n"));
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok());
  const std::string db = "/docker/" + kDb;
  auto cpu = b->find("container_cpu_usage_seconds_total", "id", db);
  // cAdvisor's rule: per-CPU series instead of the total, zero ones left out.
  ASSERT_EQ(cpu.size(), 2u);
  EXPECT_DOUBLE_EQ(value_with(*b, "container_cpu_usage_seconds_total", db, "cpu", "cpu00"), 2.0);
  EXPECT_DOUBLE_EQ(value_with(*b, "container_cpu_usage_seconds_total", db, "cpu", "cpu01"), 3.0);
  // Cgroups without cpuacct.usage_percpu keep the total.
  EXPECT_EQ(value_with(*b, "container_cpu_usage_seconds_total", "/docker", "cpu", "total"), 5.0);

  // v2 has no per-CPU accounting: the total stays.
  FixtureTree t2("v2");
  auto p2 = load(t2.config("enable_metrics = ['percpu']\n"));
  ASSERT_TRUE(p2);
  auto b2 = p2->collect(kNow);
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(value_with(*b2, "container_cpu_usage_seconds_total", "/", "cpu", "total"), 900);
}

TEST(CgroupFixture, WritableLayerUsageWhenDiskIsEnabled) {
  FixtureTree t("v1");
  auto p = load(t.config("enable_metrics = ['disk']\n"));
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok());
  const std::string db = "/docker/" + kDb;
  // du of the overlay2 upper directory: blocks of every entry, itself included.
  std::string diff = t.dir() + "/docker/overlay2/d1a2b3c4e5f6/diff";
  struct stat st {};
  ASSERT_EQ(::stat(diff.c_str(), &st), 0);
  uint64_t want = uint64_t(st.st_blocks) * 512;
  for (const auto& e : std::filesystem::recursive_directory_iterator(diff)) {
    ASSERT_EQ(::lstat(e.path().c_str(), &st), 0);
    want += uint64_t(st.st_blocks) * 512;
  }
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(diff.c_str(), &vfs), 0);
  const auto* usage = b->one("container_fs_usage_bytes", "id", db);
  ASSERT_NE(usage, nullptr);
  EXPECT_EQ(usage->value, double(want));
  EXPECT_GE(usage->value, 20000);  // the 20000-byte file at least
  EXPECT_FALSE(usage->label("device").empty());
  EXPECT_EQ(usage->label("name"), "db");
  EXPECT_EQ(value(*b, "container_fs_limit_bytes", db),
            double(uint64_t(vfs.f_blocks) * vfs.f_frsize));
  EXPECT_EQ(value(*b, "container_fs_inodes_total", db), double(vfs.f_files));
  EXPECT_GE(value(*b, "container_fs_inodes_free", db), 0);
  // Only containers with a known writable layer.
  EXPECT_EQ(count_family(*b, "container_fs_usage_bytes"), 1u);
}

TEST(CgroupFixture, DisabledGroupsAreNeitherReadNorEmitted) {
  FixtureTree t("v2");
  auto full = load(t.config());
  ASSERT_TRUE(full);
  ASSERT_TRUE(full->collect(kNow).ok());
  auto p = load(t.config(
      "disable_metrics = ['memory', 'oom_event', 'diskIO', 'network', 'process', 'pressure']\n"));
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok());
  const std::string web = "/system.slice/docker-" + kWeb + ".scope";
  EXPECT_EQ(value(*b, "container_cpu_usage_seconds_total", web), 12.5);
  EXPECT_EQ(value(*b, "container_spec_memory_limit_bytes", web), 268435456);  // spec stays
  for (const char* gone :
       {"container_memory_", "container_oom_", "container_fs_", "container_blkio_",
        "container_network_", "container_processes", "container_threads", "container_pressure_"})
    EXPECT_EQ(count_family(*b, gone), 0u) << gone;
  // Fewer files read means fewer kept open.
  EXPECT_LT(open_files(*p), open_files(*full) / 2);
}

TEST(CgroupFixture, KeptOpenFilesAreReReadAndBounded) {
  FixtureTree t("v2");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  auto b1 = p->collect(kNow);
  ASSERT_TRUE(b1.ok());
  EXPECT_GT(open_files(*p), 20);
  // A kept-open file changed in place is read afresh (pread from 0).
  const std::string web = "/system.slice/docker-" + kWeb + ".scope";
  overwrite(t.dir() + "/cgroup" + web + "/cpu.stat",
            "usage_usec 13500000\nuser_usec 9500000\nsystem_usec 4000000\nnr_periods 1300\n"
            "nr_throttled 31\nthrottled_usec 460000\n");
  overwrite(t.dir() + "/cgroup" + web + "/memory.current", "110000000\n");
  auto b2 = p->collect(kNow + 15000);
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(value(*b2, "container_cpu_usage_seconds_total", web), 13.5);
  EXPECT_EQ(value(*b2, "container_memory_usage_bytes", web), 110000000);
  EXPECT_EQ(value(*b2, "container_cpu_cfs_periods_total", web), 1300);

  // No budget: nothing kept open, the same output.
  auto none = load(t.config("max_open_files = 0\n"));
  ASSERT_TRUE(none);
  auto b3 = none->collect(kNow + 15000);
  ASSERT_TRUE(b3.ok());
  EXPECT_EQ(open_files(*none), 0);
  EXPECT_EQ(cgroup_test::render(*b3), cgroup_test::render(*b2));
  // A small budget is respected.
  auto few = load(t.config("max_open_files = 5\n"));
  ASSERT_TRUE(few);
  ASSERT_TRUE(few->collect(kNow).ok());
  EXPECT_EQ(open_files(*few), 5);
}

TEST(CgroupFixture, RecreatedCgroupIsReadAfresh) {
  FixtureTree t("v2");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  const std::string svc = "/system.slice/nginx.service";
  auto b1 = p->collect(kNow);
  ASSERT_TRUE(b1.ok());
  ASSERT_EQ(value(*b1, "container_cpu_usage_seconds_total", svc), 2);
  // The service restarts: systemd removes its cgroup and makes a new one.
  std::string dir = t.dir() + "/cgroup" + svc;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/cpu.stat") << "usage_usec 100000\nuser_usec 60000\nsystem_usec 40000\n";
  std::ofstream(dir + "/cpu.max") << "200000 100000\n";
  std::ofstream(dir + "/cgroup.procs") << "900\n";
  std::ofstream(dir + "/cgroup.events") << "populated 1\n";
  auto b2 = p->collect(kNow + 15000);  // not a limits cycle: read because it is new
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(value(*b2, "container_cpu_usage_seconds_total", svc), 0.1);
  EXPECT_EQ(value(*b2, "container_spec_cpu_quota", svc), 200000);
  EXPECT_EQ(value(*b2, "container_processes", svc), 1);
  EXPECT_GT(value(*b2, "container_start_time_seconds", svc), FixtureTree::kMtime);
}

// Limits are re-read when inotify reports a write to the cgroup's files, not
// only every 4th collection: each change shows at the very next collection.
// Without watches (max_watches = 0) the 4-collection polling is back.
TEST(CgroupFixture, WrittenLimitShowsAtTheNextCollection) {
  FixtureTree t("v2");
  const std::string web = "/system.slice/docker-" + kWeb + ".scope";
  const std::string max = t.dir() + "/cgroup" + web + "/memory.max";
  auto p = load(t.config());
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->collect(kNow).ok());
  EXPECT_GT(p->self_metrics().one("moni_cgroup_watches")->value, 5);
  for (int i = 1; i <= 6; ++i) {
    const double limit = 268435456.0 + i * 4096;
    overwrite(max, std::to_string(static_cast<uint64_t>(limit)) + "\n");
    auto b = p->collect(kNow + i * 15000);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(value(*b, "container_spec_memory_limit_bytes", web), limit) << "collection " << i;
  }

  // A limit file replaced by rename (not in place: only on trees like this
  // one) is seen through its directory, and the new file is watched again.
  for (int i = 7; i <= 8; ++i) {
    const double limit = 268435456.0 + i * 4096;
    std::ofstream(max + ".new") << static_cast<uint64_t>(limit) << "\n";
    std::filesystem::rename(max + ".new", max);
    auto b = p->collect(kNow + i * 15000);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(value(*b, "container_spec_memory_limit_bytes", web), limit) << "rename " << i;
  }
  overwrite(max, "268439552\n");
  auto rewritten = p->collect(kNow + 9 * 15000);  // written in place: the new file's watch
  ASSERT_TRUE(rewritten.ok());
  EXPECT_EQ(value(*rewritten, "container_spec_memory_limit_bytes", web), 268439552);
  overwrite(max, "268443648\n");
  auto again = p->collect(kNow + 10 * 15000);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(value(*again, "container_spec_memory_limit_bytes", web), 268443648);

  auto polled = load(t.config("max_watches = 0\n"));
  ASSERT_TRUE(polled);
  ASSERT_TRUE(polled->collect(kNow).ok());
  EXPECT_EQ(polled->self_metrics().one("moni_cgroup_watches")->value, 0);
  int late = 0;
  for (int i = 1; i <= 6; ++i) {
    const double limit = 300000000.0 + i * 4096;
    overwrite(max, std::to_string(static_cast<uint64_t>(limit)) + "\n");
    auto b = polled->collect(kNow + i * 15000);
    ASSERT_TRUE(b.ok());
    late += value(*b, "container_spec_memory_limit_bytes", web) != limit;
  }
  EXPECT_GT(late, 0) << "polling every 4th collection cannot see every change at once";
}

// A cgroup made below a known leaf (whose stat the walk skips) is found at
// the next collection through its parent's watch, not at the next re-check.
TEST(CgroupFixture, CgroupMadeBelowALeafAppearsAtTheNextCollection) {
  FixtureTree t("v2");
  const std::string web = "/system.slice/docker-" + kWeb + ".scope";
  auto p = load(t.config());
  ASSERT_TRUE(p);
  // Collections 1-3: watched on the first, a known leaf from the second.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p->collect(kNow + i * 15000).ok());
  const std::string sub = web + "/sidecar";
  std::filesystem::create_directories(t.dir() + "/cgroup" + sub);
  std::ofstream(t.dir() + "/cgroup" + sub + "/cpu.stat")
      << "usage_usec 2000000\nuser_usec 1000000\nsystem_usec 1000000\n";
  auto b = p->collect(kNow + 45000);  // collection 4: no periodic re-check
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(value(*b, "container_cpu_usage_seconds_total", sub), 2);
  // And once it is removed, its series stop at the next collection.
  std::filesystem::remove_all(t.dir() + "/cgroup" + sub);
  auto b2 = p->collect(kNow + 60000);
  ASSERT_TRUE(b2.ok());
  EXPECT_EQ(ids(*b2).count(sub), 0u);
  EXPECT_EQ(ids(*b2).count(web), 1u);
}

// From the third collection on, an unchanged tree is not listed again but
// replayed from the last walk (every directory watched): the output must be
// the one of a real walk, including subtree process counts, for both
// layouts; a removed cgroup still goes at the next collection.
TEST(CgroupFixture, ReplayedWalkMatchesAFullWalk) {
  for (const char* tree : {"v2", "v1"}) {
    FixtureTree t(tree);
    auto watched = load(t.config());
    auto polled = load(t.config("max_watches = 0\n"));
    ASSERT_TRUE(watched && polled);
    for (int i = 0; i < 5; ++i) {
      auto a = watched->collect(kNow + i * 15000);
      auto b = polled->collect(kNow + i * 15000);
      ASSERT_TRUE(a.ok() && b.ok());
      EXPECT_EQ(cgroup_test::render(*a), cgroup_test::render(*b)) << tree << " collection " << i;
    }
    const std::string gone =
        std::string(tree) == "v2" ? "/system.slice/docker-" + kWeb + ".scope" : "/docker/" + kDb;
    auto before = watched->collect(kNow + 75000);
    ASSERT_TRUE(before.ok());
    ASSERT_EQ(ids(*before).count(gone), 1u) << tree;
    if (std::string(tree) == "v2") {
      std::filesystem::remove_all(t.dir() + "/cgroup" + gone);
    } else {  // from every controller's hierarchy
      for (const auto& d : std::filesystem::directory_iterator(t.dir() + "/cgroup"))
        std::filesystem::remove_all(d.path().string() + gone);
    }
    auto after = watched->collect(kNow + 90000);
    auto full = polled->collect(kNow + 90000);
    ASSERT_TRUE(after.ok() && full.ok());
    EXPECT_EQ(ids(*after).count(gone), 0u) << tree;
    EXPECT_EQ(cgroup_test::render(*after), cgroup_test::render(*full)) << tree;
  }
}

TEST(CgroupFixture, DockerOnlyKeepsRootAndDockerContainers) {
  for (const char* tree : {"v1", "v2"}) {
    FixtureTree t(tree);
    auto p = load(t.config("docker_only = true\n"));
    ASSERT_TRUE(p);
    auto b = p->collect(kNow);
    ASSERT_TRUE(b.ok());
    std::set<std::string> want = {"/", std::string(tree) == "v1"
                                           ? "/docker/" + kDb
                                           : "/system.slice/docker-" + kWeb + ".scope"};
    EXPECT_EQ(ids(*b), want) << tree;
  }
}

TEST(CgroupFixture, IncludeAndExcludePatterns) {
  FixtureTree t("v2");
  auto p = load(t.config("include = ['\\.(service|scope)$']\nexclude = ['conmon', 'kubepods']\n"));
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(ids(*b),
            (std::set<std::string>{
                "/system.slice/nginx.service", "/system.slice/docker-" + kWeb + ".scope",
                "/machine.slice/libpod-"
                "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809.scope"}));
}

TEST(CgroupFixture, VanishedContainerSeriesStopAndStateIsDropped) {
  FixtureTree t("v2");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  const std::string web = "/system.slice/docker-" + kWeb + ".scope";
  auto b1 = p->collect(kNow);
  ASSERT_TRUE(b1.ok());
  ASSERT_EQ(ids(*b1).count(web), 1u);
  double tracked1 = p->self_metrics().one("moni_cgroup_tracked_cgroups")->value;
  double reported1 = p->self_metrics().one("moni_cgroup_containers")->value;

  std::filesystem::remove_all(t.dir() + "/cgroup" + web);
  std::filesystem::remove_all(t.dir() + "/proc/4242");
  auto b2 = p->collect(kNow + 15000);
  ASSERT_TRUE(b2.ok()) << b2.error().message;
  EXPECT_EQ(ids(*b2).count(web), 0u);
  EXPECT_EQ(p->self_metrics().one("moni_cgroup_tracked_cgroups")->value, tracked1 - 1);
  EXPECT_EQ(p->self_metrics().one("moni_cgroup_containers")->value, reported1 - 1);
  // Everything else is still reported, sample for sample.
  size_t others = 0;
  for (const auto& s : b1->samples) others += s.label("id") != web;
  EXPECT_EQ(b2->samples.size(), others);
  for (const auto& l : p->logs()) EXPECT_EQ(l.find("error"), std::string::npos) << l;
}

TEST(CgroupFixture, RejectsBadOptionsWithPositions) {
  auto h = PluginHarness::load(plugin_path("cgroup"),
                               "include = ['(unclosed']\ndocker_only = 1\ncolour = 2\n"
                               "disable_metrics = ['memory', 'tcp']\n"
                               "enable_metrics = ['process']\nmax_open_files = -1\n");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("include: invalid regex \"(unclosed\""), std::string::npos) << m;
  EXPECT_NE(m.find("docker_only must be a boolean"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'colour'"), std::string::npos) << m;
  EXPECT_NE(m.find("disable_metrics: unknown metric group \"tcp\""), std::string::npos) << m;
  EXPECT_NE(m.find("enable_metrics: unknown or always-on metric group \"process\""),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("max_open_files must be in [0,"), std::string::npos) << m;
  // Each error carries its position in the config file.
  EXPECT_NE(m.find("test.toml:1:"), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:2:"), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:3:"), std::string::npos) << m;
}

TEST(CgroupFixture, StartFailsClearlyWithoutCgroupMounts) {
  FixtureTree t("v2");
  auto h = PluginHarness::load(plugin_path("cgroup"),
                               "mountinfo = \"" + t.dir() + "/proc/1/net/dev\"\n");
  ASSERT_TRUE(h.ok());
  auto s = (*h)->start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("no cgroup or cgroup2 mount"), std::string::npos)
      << s.error().message;
}

TEST(CgroupLayoutDetection, V2V1AndHybrid) {
  using moni_cgroup::CgroupLayout;
  auto v2 = moni_cgroup::detect_layout(
      "25 24 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", "/host/cg");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(v2->mode, CgroupLayout::Mode::V2);
  EXPECT_EQ(v2->unified, "/host/cg");
  auto v1 = moni_cgroup::detect_layout(
      "30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "31 25 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
      "32 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n",
      "/r");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(v1->mode, CgroupLayout::Mode::V1);
  EXPECT_EQ(v1->v1[moni_cgroup::kCpu], "/r/cpu,cpuacct");
  EXPECT_EQ(v1->v1[moni_cgroup::kCpuacct], "/r/cpu,cpuacct");
  EXPECT_EQ(v1->v1[moni_cgroup::kMemory], "/r/memory");
  EXPECT_EQ(v1->v1[moni_cgroup::kPids], "");
  auto hy = moni_cgroup::detect_layout(
      "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
      "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
      "/sys/fs/cgroup");
  ASSERT_TRUE(hy.ok());
  EXPECT_EQ(hy->mode, CgroupLayout::Mode::Hybrid);
  EXPECT_EQ(hy->unified, "/sys/fs/cgroup/unified");
  EXPECT_FALSE(moni_cgroup::detect_layout("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n", "/").ok());
}

TEST(CgroupContainerId, RecognisesRuntimes) {
  using moni_cgroup::Runtime;
  const std::string id = kWeb;
  EXPECT_EQ(moni_cgroup::classify("/system.slice/docker-" + id + ".scope").runtime,
            Runtime::Docker);
  EXPECT_EQ(moni_cgroup::classify("/docker/" + id).runtime, Runtime::Docker);
  EXPECT_EQ(moni_cgroup::classify("/docker/" + id).id, id);
  EXPECT_EQ(moni_cgroup::classify("/machine.slice/libpod-" + id + ".scope").runtime,
            Runtime::Podman);
  EXPECT_EQ(moni_cgroup::classify("/machine.slice/libpod-conmon-" + id + ".scope").runtime,
            Runtime::None);
  EXPECT_EQ(moni_cgroup::classify("/k/cri-containerd-" + id + ".scope").runtime,
            Runtime::Containerd);
  EXPECT_EQ(moni_cgroup::classify("/kubepods/burstable/pod1/" + id).runtime, Runtime::UnknownHex);
  EXPECT_EQ(moni_cgroup::classify("/system.slice/nginx.service").runtime, Runtime::None);
  EXPECT_EQ(moni_cgroup::classify("/").runtime, Runtime::None);
  EXPECT_EQ(moni_cgroup::classify("/docker/" + id.substr(1)).runtime, Runtime::None);
}
