#!/usr/bin/env python3
"""Writes the cgroup collector's fixture trees (hand-chosen numbers; the
golden files next to them are checked against these by hand in the tests'
comments). Run from anywhere: python3 make_fixtures.py"""
import json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))

WEB = "4c2a8e0f1b3d5a7c9e0f2b4d6a8c0e1f3a5c7e9b1d3f5a7c9e1b3d5f7a9c0e2f"
GONE = "9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e9d8c"
POD = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809"
K8S = "7e57c0de7e57c0de7e57c0de7e57c0de7e57c0de7e57c0de7e57c0de7e57c0de"
DB = "b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7"
POD1 = "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed"
for i in (WEB, GONE, POD, K8S, DB, POD1):
    assert len(i) == 64, i

HOST_NS = "net:[4026531840]"


def w(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def link(path, target):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(target, path)


def netdev(rows):
    out = ("Inter-|   Receive                                                |  Transmit\n"
           " face |bytes    packets errs drop fifo frame compressed multicast|"
           "bytes    packets errs drop fifo colls carrier compressed\n")
    for name, rx, tx in rows:
        out += "%6s: %s %s\n" % (name, " ".join(str(x) for x in rx + [0, 0, 0, 0]),
                                 " ".join(str(x) for x in tx + [0, 0, 0, 0]))
    return out


def proc(base, pid, ns, dev=None):
    link(f"{base}/proc/{pid}/ns/net", ns)
    if dev is not None:
        w(f"{base}/proc/{pid}/net/dev", dev)


def psi(d, some, full):
    for res, (s, f) in zip(("cpu", "memory", "io"), zip(some, full)):
        w(f"{d}/{res}.pressure",
          f"some avg10=0.00 avg60=0.00 avg300=0.00 total={s}\n"
          f"full avg10=0.00 avg60=0.00 avg300=0.00 total={f}\n")


def v2_cgroup(d, *, usage, user, system, periods=0, throttled=0, throttled_us=0,
              cpu_max=None, weight=None, mem=None, anon=0, file=0, inactive_file=0,
              mem_max=None, swap=None, events=None, io="", pids=None, procs=(),
              psi_totals=None, peak=None, mem_high=None, swap_max=None, pids_max=None):
    w(f"{d}/cgroup.procs", "".join(f"{p}\n" for p in procs))
    w(f"{d}/cgroup.events", "populated 1\nfrozen 0\n")
    w(f"{d}/cpu.stat", f"usage_usec {usage}\nuser_usec {user}\nsystem_usec {system}\n"
      f"nr_periods {periods}\nnr_throttled {throttled}\nthrottled_usec {throttled_us}\n"
      "nr_bursts 0\nburst_usec 0\n")
    if cpu_max is not None:
        w(f"{d}/cpu.max", cpu_max + "\n")
    if weight is not None:
        w(f"{d}/cpu.weight", f"{weight}\n")
    if mem is not None:
        w(f"{d}/memory.current", f"{mem}\n")
        w(f"{d}/memory.stat", f"anon {anon}\nfile {file}\nkernel 1048576\nsock 0\nshmem 0\n"
          f"file_mapped 4096\nactive_anon {anon}\ninactive_anon 0\n"
          f"active_file {file - inactive_file}\ninactive_file {inactive_file}\n"
          "unevictable 0\npgfault 100\npgmajfault 1\n")
        w(f"{d}/memory.max", (mem_max or "max") + "\n")
        w(f"{d}/memory.swap.current", f"{swap or 0}\n")
        mx, oom = events or (0, 0)
        w(f"{d}/memory.events", f"low 0\nhigh 0\nmax {mx}\noom {oom}\noom_kill {oom}\n"
          "oom_group_kill 0\n")
        w(f"{d}/pids.current", f"{pids}\n")
        w(f"{d}/pids.max", (pids_max or "max") + "\n")
        w(f"{d}/memory.high", (mem_high or "max") + "\n")
        w(f"{d}/memory.swap.max", (swap_max or "max") + "\n")
        if peak is not None:  # kernels before 5.19 have no memory.peak
            w(f"{d}/memory.peak", f"{peak}\n")
    w(f"{d}/io.stat", io)
    if psi_totals:
        psi(d, *psi_totals)


def make_v2():
    base = f"{HERE}/v2"
    shutil.rmtree(base, ignore_errors=True)
    w(f"{base}/mountinfo",
      "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw\n"
      "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
      "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n"
      "25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 cgroup2 "
      "rw,nsdelegate,memory_recursiveprot\n")
    cg = f"{base}/cgroup"
    # Root: no cpu.max/memory.current in a v2 root, only stats.
    w(f"{cg}/cgroup.procs", "1\n")
    w(f"{cg}/cpu.stat", "usage_usec 900000000\nuser_usec 600000000\nsystem_usec 300000000\n")
    w(f"{cg}/memory.stat", "anon 1073741824\nfile 2147483648\ninactive_file 1073741824\n")
    w(f"{cg}/io.stat", "8:0 rbytes=10485760 wbytes=20971520 rios=100 wios=200 dbytes=0 dios=0\n")
    psi(cg, (5000000, 6000000, 7000000), (0, 3000000, 3500000))
    w(f"{cg}/cgroup.subtree_control", "cpu io memory pids\n")

    ss = f"{cg}/system.slice"
    v2_cgroup(ss, usage=50000000, user=30000000, system=20000000, cpu_max="max 100000",
              weight=100, mem=300000000, anon=200000000, file=100000000,
              inactive_file=40000000, pids=12)
    # Docker, systemd cgroup driver.
    v2_cgroup(f"{ss}/docker-{WEB}.scope", usage=12500000, user=9000000, system=3500000,
              periods=1200, throttled=30, throttled_us=450000, cpu_max="50000 100000",
              weight=100, mem=104857600, anon=73400320, file=26214400,
              inactive_file=10485760, mem_max="268435456", swap=4096, events=(7, 1),
              io="8:0 rbytes=1048576 wbytes=2097152 rios=10 wios=20 dbytes=0 dios=0\n"
                 "253:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
              pids=5, procs=(4242, 4243),
              psi_totals=((120000, 80000, 10000), (60000, 40000, 5000)),
              peak=157286400, mem_high="201326592", swap_max="67108864", pids_max="100")
    # A systemd service: host network namespace, no quota, no memory limit.
    v2_cgroup(f"{ss}/nginx.service", usage=2000000, user=1500000, system=500000,
              cpu_max="max 100000", weight=100, mem=20971520, anon=10485760, file=10485760,
              inactive_file=31457280, pids=3, procs=(500, 501, 502))
    # A Docker container whose cgroup is being removed: the walk sees the
    # directory, its files are already gone.
    w(f"{ss}/docker-{GONE}.scope/cgroup.type", "domain\n")

    ms = f"{cg}/machine.slice"
    v2_cgroup(ms, usage=4000000, user=3000000, system=1000000, cpu_max="max 100000",
              weight=100, mem=50000000, anon=40000000, file=10000000, inactive_file=0,
              pids=2)
    v2_cgroup(f"{ms}/libpod-{POD}.scope", usage=3000000, user=2000000, system=1000000,
              cpu_max="max 100000", weight=200, mem=41943040, anon=33554432, file=8388608,
              inactive_file=4194304, mem_max="536870912", pids=1, procs=(6000,))
    v2_cgroup(f"{ms}/libpod-conmon-{POD}.scope", usage=10000, user=5000, system=5000,
              cpu_max="max 100000", weight=100, mem=1048576, anon=1048576, file=0,
              inactive_file=0, pids=1, procs=(5999,))
    # containerd through the CRI (kubernetes, systemd driver).
    kp = f"{cg}/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b.slice"
    v2_cgroup(f"{kp}/cri-containerd-{K8S}.scope", usage=700000, user=400000, system=300000,
              cpu_max="max 100000", weight=1, mem=8388608, anon=8388608, file=0,
              inactive_file=0, pids=2, procs=(7000,))

    proc(base, 1, HOST_NS, netdev([("lo", [999, 9, 0, 0], [999, 9, 0, 0]),
                                   ("eth0", [5000000, 4000, 1, 2], [3000000, 3500, 0, 1]),
                                   ("docker0", [1, 1, 0, 0], [1, 1, 0, 0]),
                                   ("veth1a2b3c", [1, 1, 0, 0], [1, 1, 0, 0])]))
    proc(base, 4242, "net:[4026532100]",
         netdev([("lo", [10, 1, 0, 0], [10, 1, 0, 0]),
                 ("eth0", [123456, 789, 0, 3], [654321, 987, 2, 0])]))
    proc(base, 500, HOST_NS, netdev([("eth0", [5000000, 4000, 1, 2], [3000000, 3500, 0, 1])]))
    proc(base, 6000, "net:[4026532200]", netdev([("eth0", [2048, 16, 0, 0], [1024, 8, 0, 0])]))
    proc(base, 5999, HOST_NS)
    proc(base, 7000, "net:[4026532300]", netdev([("eth0", [300, 3, 0, 0], [200, 2, 0, 0])]))

    w(f"{base}/sys/dev/block/8:0/uevent", "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n")
    w(f"{base}/sys/dev/block/253:0/uevent", "MAJOR=253\nMINOR=0\nDEVNAME=dm-0\nDEVTYPE=disk\n")

    w(f"{base}/docker/containers/{WEB}/config.v2.json", json.dumps({
        "ID": WEB, "Created": "2024-03-01T10:00:00.123456789Z", "Name": "/web",
        "Config": {"Image": "nginx:1.25", "Labels": {
            "com.docker.compose.project": "shop", "maintainer": "ops@example.com"}},
        "State": {"Running": True, "Pid": 4242, "StartedAt": "2024-03-01T10:00:01Z"}}))
    w(f"{base}/docker/containers/{GONE}/config.v2.json", json.dumps({
        "ID": GONE, "Created": "2024-03-01T09:00:00Z", "Name": "/leaving",
        "Config": {"Image": "busybox", "Labels": None}}))
    w(f"{base}/containers-storage/overlay-containers/containers.json", json.dumps([{
        "id": POD, "names": ["api"], "image": "f" * 64, "layer": "e" * 64,
        "metadata": json.dumps({"image-name": "quay.io/acme/api:2.1", "image-id": "f" * 64,
                                "name": "api", "created-at": 1709290000}),
        "created": "2024-03-01T11:26:40.5+01:00"}]))
    w(f"{base}/containerd/io.containerd.runtime.v2.task/k8s.io/{K8S}/config.json", json.dumps({
        "ociVersion": "1.1.0", "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": "worker",
            "io.kubernetes.cri.image-name": "registry.example.com/worker:7"}}))


def v1_cgroup(base, rel, *, usage_ns=None, user_ticks=0, sys_ticks=0, periods=0, throttled=0,
              throttled_ns=0, quota=-1, period=100000, shares=1024, mem=None, rss=0, cache=0,
              swap=None, inactive_file=0, limit=9223372036854771712, failcnt=0, oom_kill=0,
              blkio=None, pids=None, procs=(), tasks=None, controllers=("cpu,cpuacct", "memory",
                                                                           "blkio", "pids"),
              max_usage=None, memsw=9223372036854771712, soft=9223372036854771712, kmem=0,
              faults=(0, 0, 0, 0), percpu=None, pids_max="max"):
    procs_text = "".join(f"{p}\n" for p in procs)
    tasks_text = "".join(f"{p}\n" for p in (tasks if tasks is not None else procs))
    for c in controllers:
        d = f"{base}/cgroup/{c}{rel}"
        w(f"{d}/cgroup.procs", procs_text)
        w(f"{d}/tasks", tasks_text)
        w(f"{d}/cgroup.clone_children", "0\n")
        w(f"{d}/notify_on_release", "0\n")
        if c == "cpu,cpuacct":
            w(f"{d}/cpuacct.usage", f"{usage_ns}\n")
            w(f"{d}/cpuacct.stat", f"user {user_ticks}\nsystem {sys_ticks}\n")
            w(f"{d}/cpu.stat", f"nr_periods {periods}\nnr_throttled {throttled}\n"
              f"throttled_time {throttled_ns}\n")
            w(f"{d}/cpu.cfs_quota_us", f"{quota}\n")
            w(f"{d}/cpu.cfs_period_us", f"{period}\n")
            w(f"{d}/cpu.shares", f"{shares}\n")
            if percpu is not None:
                w(f"{d}/cpuacct.usage_percpu", " ".join(str(x) for x in percpu) + " \n")
        elif c == "memory":
            sw = "" if swap is None else f"swap {swap}\n"
            tsw = "" if swap is None else f"total_swap {swap}\n"
            w(f"{d}/memory.usage_in_bytes", f"{mem}\n")
            pf, pmf, tpf, tpmf = faults
            w(f"{d}/memory.stat", f"cache {cache}\nrss {rss}\nmapped_file 8192\n{sw}"
              f"pgfault {pf}\npgmajfault {pmf}\ninactive_file {inactive_file}\n"
              f"hierarchical_memory_limit {limit}\ntotal_cache {cache}\ntotal_rss {rss}\n"
              f"total_mapped_file 8192\n{tsw}total_pgfault {tpf}\ntotal_pgmajfault {tpmf}\n"
              f"total_inactive_file {inactive_file}\ntotal_active_file 0\n")
            w(f"{d}/memory.max_usage_in_bytes", f"{max_usage if max_usage is not None else mem}\n")
            w(f"{d}/memory.memsw.limit_in_bytes", f"{memsw}\n")
            w(f"{d}/memory.soft_limit_in_bytes", f"{soft}\n")
            w(f"{d}/memory.kmem.usage_in_bytes", f"{kmem}\n")
            w(f"{d}/memory.limit_in_bytes", f"{limit}\n")
            w(f"{d}/memory.failcnt", f"{failcnt}\n")
            w(f"{d}/memory.oom_control", f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kill}\n")
        elif c == "blkio":
            text = ""
            ops = ""
            total = 0
            for dev, r, wr in (blkio or []):
                text += (f"{dev} Read {r}\n{dev} Write {wr}\n{dev} Sync {r + wr}\n"
                         f"{dev} Async 0\n{dev} Discard 0\n{dev} Total {r + wr}\n")
                # One request per 4 KiB read, per 32 KiB written.
                ops += (f"{dev} Read {r // 4096}\n{dev} Write {wr // 32768}\n"
                        f"{dev} Sync 0\n{dev} Async 0\n{dev} Discard 0\n"
                        f"{dev} Total {r // 4096 + wr // 32768}\n")
                total += r + wr
            w(f"{d}/blkio.throttle.io_service_bytes_recursive", text + f"Total {total}\n")
            w(f"{d}/blkio.throttle.io_serviced_recursive", ops + "Total 0\n")
        elif c == "pids":
            w(f"{d}/pids.current", f"{pids}\n")
            w(f"{d}/pids.max", f"{pids_max}\n")


def make_v1():
    base = f"{HERE}/v1"
    shutil.rmtree(base, ignore_errors=True)
    w(f"{base}/mountinfo",
      "21 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
      "24 21 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw\n"
      "25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755\n"
      "26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 "
      "cgroup2 rw,nsdelegate\n"
      "27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup "
      "cgroup rw,xattr,name=systemd\n"
      "30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - "
      "cgroup cgroup rw,cpu,cpuacct\n"
      "31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup "
      "cgroup rw,memory\n"
      "32 25 0:30 / /sys/fs/cgroup/blkio rw,nosuid,nodev,noexec,relatime shared:16 - cgroup "
      "cgroup rw,blkio\n"
      "33 25 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup "
      "cgroup rw,pids\n"
      "34 25 0:32 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup "
      "cgroup rw,freezer\n")
    v1_cgroup(base, "", usage_ns=800000000000, user_ticks=50000, sys_ticks=30000,
              mem=4294967296, rss=1073741824, cache=2147483648, inactive_file=1073741824,
              blkio=[("8:0", 10485760, 20971520)], pids=300, procs=(1, 2))
    v1_cgroup(base, "/system.slice", usage_ns=40000000000, user_ticks=3000, sys_ticks=1000,
              mem=300000000, rss=200000000, cache=100000000, inactive_file=50000000,
              blkio=[], pids=4, procs=())
    v1_cgroup(base, "/system.slice/sshd.service", usage_ns=1500000000, user_ticks=100,
              sys_ticks=50, mem=8388608, rss=4194304, cache=4194304, inactive_file=1048576,
              blkio=[], pids=1, procs=(800,))
    # systemd mirrors its units into the unified tree: PSI comes from there.
    psi(f"{base}/cgroup/unified/system.slice/sshd.service", (2500000, 0, 100), (1000000, 0, 50))
    w(f"{base}/cgroup/unified/system.slice/sshd.service/cgroup.procs", "800\n")
    # Docker, cgroupfs driver.
    v1_cgroup(base, "/docker", usage_ns=5000000000, user_ticks=350, sys_ticks=120, mem=52428800,
              rss=41943040, cache=8388608, swap=0, inactive_file=4194304,
              blkio=[("8:0", 524288, 131072)], pids=2, procs=())
    v1_cgroup(base, f"/docker/{DB}", usage_ns=5000000000, user_ticks=350, sys_ticks=120,
              periods=500, throttled=10, throttled_ns=250000000, quota=200000, shares=512,
              mem=52428800, rss=41943040, cache=8388608, swap=0, inactive_file=4194304,
              limit=134217728, failcnt=3, oom_kill=2, blkio=[("8:0", 524288, 131072)], pids=2,
              procs=(7100,), tasks=(7100, 7101), max_usage=67108864, memsw=268435456,
              soft=67108864, kmem=2097152, faults=(5000, 7, 5100, 8),
              percpu=(2000000000, 3000000000, 0, 0), pids_max="512")
    # A container that vanished: only a leftover directory in one hierarchy.
    w(f"{base}/cgroup/memory/docker/{GONE}/notify_on_release", "0\n")
    # Podman, cgroupfs manager.
    v1_cgroup(base, "/libpod_parent", usage_ns=900000000, user_ticks=60, sys_ticks=30,
              mem=16777216, rss=12582912, cache=4194304, inactive_file=0, blkio=[], pids=1,
              procs=())
    v1_cgroup(base, f"/libpod_parent/libpod-{POD1}", usage_ns=900000000, user_ticks=60,
              sys_ticks=30, mem=16777216, rss=12582912, cache=4194304, inactive_file=8388608,
              limit=33554432, blkio=[], pids=1, procs=(8100,))

    proc(base, 1, HOST_NS, netdev([("lo", [999, 9, 0, 0], [999, 9, 0, 0]),
                                   ("ens3", [7000000, 7000, 0, 0], [6000000, 6000, 0, 0])]))
    proc(base, 800, HOST_NS, netdev([("ens3", [7000000, 7000, 0, 0], [6000000, 6000, 0, 0])]))
    proc(base, 7100, "net:[4026532500]", netdev([("eth0", [4096, 32, 0, 1], [8192, 64, 1, 0])]))
    # 8100 (podman) has exited since its cgroup.procs was read: no network.
    w(f"{base}/sys/dev/block/8:0/uevent", "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n")
    w(f"{base}/docker/image/overlay2/layerdb/mounts/{DB}/mount-id", "d1a2b3c4e5f6")
    w(f"{base}/docker/overlay2/d1a2b3c4e5f6/diff/var/lib/postgresql/data/PG_VERSION", "16\n")
    w(f"{base}/docker/overlay2/d1a2b3c4e5f6/diff/var/lib/postgresql/data/base/1/1259",
      "x" * 20000)
    w(f"{base}/docker/overlay2/d1a2b3c4e5f6/diff/tmp/.keep", "")
    w(f"{base}/docker/containers/{DB}/config.v2.json", json.dumps({
        "ID": DB, "Created": "2024-02-29T23:59:59Z", "Name": "/db",
        "Config": {"Image": "postgres:16", "Labels": {}}}))
    w(f"{base}/containers-storage/overlay-containers/containers.json", json.dumps([{
        "id": POD1, "names": ["cache"], "image": "a" * 64,
        "metadata": json.dumps({"image-name": "docker.io/library/redis:7"}),
        "created": "2024-03-02T00:00:00Z"}]))


if __name__ == "__main__":
    make_v2()
    make_v1()
