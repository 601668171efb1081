// The cgroup collector driven through its real .so against fixture trees of
// v2 and hybrid v1 hosts (Docker, systemd, Podman, containerd), with golden
// output, filters, a container vanishing, and config errors.
#include <gtest/gtest.h>

#include <filesystem>
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
  EXPECT_LE(p->logs().size(), 1u);  // the layout line of start(), no complaints
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
                               "include = ['(unclosed']\ndocker_only = 1\ncolour = 2\n");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("include: invalid regex \"(unclosed\""), std::string::npos) << m;
  EXPECT_NE(m.find("docker_only must be a boolean"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'colour'"), std::string::npos) << m;
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
