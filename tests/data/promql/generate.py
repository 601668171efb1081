#!/usr/bin/env python3
"""Generates data.om: OpenMetrics text with timestamps for the PromQL
differential tests (loaded into Prometheus with promtool and into the
in-memory test store). Deterministic: a fixed seed.

Counters with resets, gauges, NaN and +-Inf values, gaps (series that stop
and restart, sparse series beyond the 5m lookback), jittered timestamps,
classic histograms. Run: python3 generate.py > data.om
"""
import math
import random

T0 = 1700000000          # seconds
SPAN = 3600              # one hour
STEP = 15
rnd = random.Random(42)
families = []            # (name, type, help, [(suffix, labels, [(ts, v)])])


def times(step=STEP, jitter=0.0, start=0, end=SPAN):
    t = start
    out = []
    while t <= end:
        j = round(rnd.uniform(-jitter, jitter), 3) if jitter else 0
        out.append(round(T0 + t + j, 3))
        t += step
    return out


def counter_series(ts, rate, resets=(), start=0.0):
    v = start
    out = []
    for i, t in enumerate(ts):
        if i in resets:
            v = rnd.uniform(0, rate)
        else:
            v += rnd.uniform(0, 2 * rate) * STEP
        out.append((t, round(v, 3)))
    return out


def fmt_labels(labels):
    if not labels:
        return ""
    return "{" + ",".join('%s="%s"' % (k, v) for k, v in labels) + "}"


def fmt_value(v):
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if v == math.inf:
        return "+Inf"
    if v == -math.inf:
        return "-Inf"
    return repr(v) if isinstance(v, float) else str(v)


# http_requests_total: counters with resets, one late starter and one that stops.
fam = []
for job in ("api", "web"):
    for inst in ("a:9100", "b:9100"):
        for code in ("200", "500"):
            rate = 5.0 if code == "200" else 0.3
            ts = times(jitter=0.4)
            resets = ()
            if job == "api" and inst == "a:9100":
                resets = (60, 150)
            s = counter_series(ts, rate, resets)
            if job == "web" and inst == "b:9100" and code == "500":
                s = s[80:]            # starts 20 minutes in
            if job == "web" and inst == "a:9100" and code == "500":
                s = s[:100] + s[140:]  # a 10 minute gap
            fam.append(("_total", [("code", code), ("instance", inst), ("job", job)], s))
families.append(("http_requests", "counter", "Requests.", fam))

# node_cpu_seconds_total
fam = []
for inst in ("a:9100", "b:9100"):
    for cpu in ("0", "1"):
        for mode, r in (("idle", 0.8), ("user", 0.15), ("system", 0.05)):
            fam.append(("_total", [("cpu", cpu), ("instance", inst), ("job", "node"), ("mode", mode)],
                        counter_series(times(jitter=0.2), r / STEP * STEP, start=1000.0)))
families.append(("node_cpu_seconds", "counter", "CPU seconds.", fam))

# Memory gauges.
for name, base in (("node_memory_MemTotal_bytes", 8e9), ("node_memory_MemAvailable_bytes", 3e9)):
    fam = []
    for inst in ("a:9100", "b:9100"):
        v = base
        pts = []
        for t in times():
            if "Avail" in name:
                v = max(1e8, v + rnd.uniform(-5e7, 5e7))
            pts.append((t, float(round(v))))
        fam.append(("", [("instance", inst), ("job", "node")], pts))
    families.append((name, "gauge", "Memory.", fam))

# Filesystems.
for name in ("node_filesystem_size_bytes", "node_filesystem_avail_bytes"):
    fam = []
    for inst in ("a:9100", "b:9100"):
        for mp, fs in (("/", "ext4"), ("/boot", "vfat"), ("/run", "tmpfs")):
            size = {"/": 1e11, "/boot": 5e8, "/run": 1e9}[mp]
            v = size * (0.4 if "avail" in name else 1)
            pts = []
            for t in times(step=30):
                if "avail" in name:
                    v = max(0.0, v - rnd.uniform(0, size / 5000))
                pts.append((t, float(round(v))))
            fam.append(("", [("device", "sd" + mp.strip("/")[:1] if mp != "/" else "sda1"),
                             ("fstype", fs), ("instance", inst), ("job", "node"),
                             ("mountpoint", mp)], pts))
    families.append((name, "gauge", "Filesystem.", fam))

# Network counters.
for name in ("node_network_receive_bytes", "node_network_transmit_bytes"):
    fam = []
    for inst in ("a:9100", "b:9100"):
        for dev, r in (("eth0", 1e5), ("lo", 1e3)):
            fam.append(("_total", [("device", dev), ("instance", inst), ("job", "node")],
                        counter_series(times(jitter=0.3), r)))
    families.append((name, "counter", "Network bytes.", fam))

# Load average with a NaN and a sparse series.
fam = []
for inst in ("a:9100", "b:9100"):
    pts = []
    for i, t in enumerate(times()):
        v = round(abs(math.sin(i / 20.0)) * 4 + rnd.uniform(0, 0.5), 2)
        if inst == "b:9100" and i in (30, 31, 200):
            v = float("nan")
        pts.append((t, v))
    fam.append(("", [("instance", inst), ("job", "node")], pts))
families.append(("node_load1", "gauge", "Load.", fam))

# up
fam = []
for job, insts in (("node", ("a:9100", "b:9100")), ("api", ("a:9100",))):
    for inst in insts:
        pts = [(t, 0.0 if 100 <= i < 110 and inst == "b:9100" else 1.0) for i, t in enumerate(times())]
        fam.append(("", [("instance", inst), ("job", job)], pts))
families.append(("up", "gauge", "Up.", fam))

# Sparse gauge: samples 2 to 9 minutes apart (beyond the lookback).
pts = []
t = 0
while t <= SPAN:
    pts.append((T0 + t, float(rnd.randint(0, 100))))
    t += rnd.choice((120, 240, 420, 540))
families.append(("sparse_gauge", "gauge", "Sparse.", [("", [("kind", "sparse")], pts)]))

# Temperature gauges with special values and a negative range.
fam = []
for room, special in (("kitchen", None), ("lab", "inf"), ("cellar", "neg")):
    pts = []
    for i, t in enumerate(times(step=60)):
        v = round(20 + 5 * math.sin(i / 7.0) + rnd.uniform(-1, 1), 2)
        if special == "inf" and i in (10, 11):
            v = math.inf if i == 10 else -math.inf
        if special == "neg":
            v = -v
        pts.append((t, v))
    fam.append(("", [("room", room)], pts))
families.append(("temperature_celsius", "gauge", "Temperature.", fam))

# A recording-rule style name with colons.
fam = [("", [("job", j)], [(t, round(rnd.uniform(0, 50), 3)) for t in times(step=60)])
       for j in ("api", "web")]
families.append(("job:http_requests:rate5m", "gauge", "Recorded.", fam))

# Classic histogram.
fam = []
bounds = ("0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
for job in ("api", "web"):
    counts = [0] * len(bounds)
    total = 0.0
    series = {b: [] for b in bounds}
    sums, cnts = [], []
    for i, t in enumerate(times()):
        if job == "web" and i == 120:
            counts = [0] * len(bounds)   # a reset
            total = 0.0
        for _ in range(rnd.randint(0, 20)):
            d = rnd.expovariate(4.0)
            total += d
            for k, b in enumerate(bounds):
                if b == "+Inf" or d <= float(b):
                    counts[k] += 1
        for k, b in enumerate(bounds):
            series[b].append((t, counts[k]))
        sums.append((t, round(total, 4)))
        cnts.append((t, counts[-1]))
    for b in bounds:
        fam.append(("_bucket", [("job", job), ("le", b)], series[b]))
    fam.append(("_sum", [("job", job)], sums))
    fam.append(("_count", [("job", job)], cnts))
families.append(("request_duration_seconds", "histogram", "Latency.", fam))

# Gauge with only a few, duplicate-labelled-after-name-drop series.
fam = [("", [("instance", "a:9100"), ("job", "node")], [(t, 1.0) for t in times(step=60)])]
families.append(("node_boot_info", "gauge", "Same labels as other metrics.", fam))

# ---- cAdvisor-style container families (the containers dashboard's
# expressions run on these): two hosts, named containers with images, one
# with a CPU quota (throttling) and OOM kills, plus the root cgroup and a
# systemd service, which have neither name nor image.
CONTAINERS = (
    # instance, id, name, image, cpu rate, memory base, cpu quota, oom at steps
    ("a:9100", "/docker/1a2b", "web-1", "nginx:1.25", 0.20, 5e7, None, ()),
    ("a:9100", "/docker/3c4d", "db", "postgres:16", 0.50, 4e8, None, ()),
    ("a:9100", "/docker/5e6f", "worker-1", "example.org/app/worker:2.0", 0.90, 2e8, 100000, (50, 51, 180)),
    ("b:9100", "/docker/7a8b", "web-2", "nginx:1.25", 0.30, 6e7, None, ()),
    ("b:9100", "/", None, None, 1.50, 0, None, ()),
    ("b:9100", "/system.slice/ssh.service", None, None, 0.01, 3e6, None, ()),
)


def container_labels(inst, cid, name, image, extra=()):
    ls = list(extra) + [("id", cid), ("instance", inst), ("job", "cadvisor")]
    if image:
        ls.append(("image", image))
    if name:
        ls.append(("name", name))
    return sorted(ls)


cfam = {}   # family name -> (type, help, [(suffix, labels, pts)])


def cadd(family, typ, suffix, labels, pts):
    cfam.setdefault(family, (typ, "cAdvisor-style " + family + ".", []))[2].append((suffix, labels, pts))


for inst, cid, name, image, rate, mem, quota, ooms in CONTAINERS:
    ts = times(jitter=0.1)
    cadd("container_cpu_usage_seconds", "counter", "_total",
         container_labels(inst, cid, name, image, [("cpu", "total")]), counter_series(ts, rate / 2))
    cadd("container_memory_working_set_bytes", "gauge", "", container_labels(inst, cid, name, image),
         [(t, float(round(mem * (1 + 0.2 * math.sin(i / 15.0))))) for i, t in enumerate(ts)])
    limit = 0.0 if quota is None else 3e8
    cadd("container_spec_memory_limit_bytes", "gauge", "", container_labels(inst, cid, name, image),
         [(t, limit) for t in ts])
    if quota is not None:
        cadd("container_spec_cpu_quota", "gauge", "", container_labels(inst, cid, name, image),
             [(t, float(quota)) for t in ts])
        cadd("container_spec_cpu_period", "gauge", "", container_labels(inst, cid, name, image),
             [(t, 100000.0) for t in ts])
        periods, throttled, tsecs, pts_p, pts_t, pts_s = 0, 0, 0.0, [], [], []
        for t in ts:
            periods += 150
            thr = rnd.randint(0, 60)
            throttled += thr
            tsecs += thr * 0.004
            pts_p.append((t, periods))
            pts_t.append((t, throttled))
            pts_s.append((t, round(tsecs, 4)))
        cadd("container_cpu_cfs_periods", "counter", "_total", container_labels(inst, cid, name, image), pts_p)
        cadd("container_cpu_cfs_throttled_periods", "counter", "_total",
             container_labels(inst, cid, name, image), pts_t)
        cadd("container_cpu_cfs_throttled_seconds", "counter", "_total",
             container_labels(inst, cid, name, image), pts_s)
    oom, pts = 0, []
    for i, t in enumerate(ts):
        if i in ooms:
            oom += 1
        pts.append((t, oom))
    cadd("container_oom_events", "counter", "_total", container_labels(inst, cid, name, image), pts)
    if cid != "/system.slice/ssh.service":
        for direction, r in (("receive", 2e4), ("transmit", 8e3)):
            ifl = [("interface", "eth0")]
            cadd("container_network_%s_bytes" % direction, "counter", "_total",
                 container_labels(inst, cid, name, image, ifl), counter_series(ts, r))
            cadd("container_network_%s_errors" % direction, "counter", "_total",
                 container_labels(inst, cid, name, image, ifl), counter_series(ts, 0.01))
            cadd("container_network_%s_packets_dropped" % direction, "counter", "_total",
                 container_labels(inst, cid, name, image, ifl), counter_series(ts, 0.02))
    for direction, r in (("reads", 5e3), ("writes", 2e4)):
        cadd("container_fs_%s_bytes" % direction, "counter", "_total",
             container_labels(inst, cid, name, image, [("device", "/dev/sda")]), counter_series(ts, r))
    cadd("container_threads", "gauge", "", container_labels(inst, cid, name, image),
         [(t, float(rnd.randint(5, 40))) for t in ts])
    cadd("container_start_time_seconds", "gauge", "", container_labels(inst, cid, name, image),
         [(t, float(T0 - 86400 + len(cid) * 1000)) for t in ts])
    cadd("container_last_seen", "gauge", "", container_labels(inst, cid, name, image), [(t, t) for t in ts])
for family, (typ, help_, fam) in cfam.items():
    families.append((family, typ, help_, fam))

# ---- moni's self metrics (the moni health dashboard's expressions): as the
# built-in self collector stores them, without job/instance target labels
# ("instance" is the plugin instance name there).
mfam = {}


def madd(family, typ, suffix, labels, pts):
    mfam.setdefault(family, (typ, "moni self metric " + family + ".", []))[2].append((suffix, labels, pts))


ts = times()
madd("moni_build_info", "gauge", "", [("abi_version", "1.1"), ("version", "0.1.0")], [(t, 1.0) for t in ts])
for inst, plugin, dur, fail_every in (("node", "node", 0.012, 0), ("cgroup", "cgroup", 0.035, 37),
                                      ("self", "self", 0.001, 0), ("agents", "scrape", 0.2, 11)):
    labels = [("instance_name", inst), ("plugin", plugin)]
    madd("moni_collector_duration_seconds", "gauge", "", labels,
         [(t, round(dur * rnd.uniform(0.5, 2.0), 5)) for t in ts])
    runs = [(t, i + 1) for i, t in enumerate(ts)]
    madd("moni_collector_runs", "counter", "_total", labels, runs)
    madd("moni_collector_errors", "counter", "_total", labels,
         [(t, (i // fail_every) if fail_every else 0) for i, t in enumerate(ts)])
    madd("moni_collector_skipped", "counter", "_total", labels,
         [(t, (i // 90) if plugin == "scrape" else 0) for i, t in enumerate(ts)])
madd("moni_processor_errors", "counter", "_total", [("instance_name", "relabel")], [(t, i // 120) for i, t in enumerate(ts)])
for p, r in (("local", 2000.0), ("remote", 500.0)):
    madd("moni_pipeline_samples", "counter", "_total", [("pipeline", p)], counter_series(ts, r))
for inst, every in (("tsdb", 0), ("metrics", 0), ("remote", 45)):
    madd("moni_sink_write_errors", "counter", "_total", [("instance_name", inst)],
         [(t, (i // every) if every else 0) for i, t in enumerate(ts)])
madd("moni_tsdb_samples_appended", "counter", "_total", [], counter_series(ts, 2500.0))
madd("moni_tsdb_out_of_order_samples", "counter", "_total", [], [(t, i // 30) for i, t in enumerate(ts)])
madd("moni_tsdb_invalid_samples", "counter", "_total", [], [(t, 0) for t in ts])
for reason in ("disk_full", "other"):
    madd("moni_tsdb_write_errors", "counter", "_total", [("reason", reason)],
         [(t, (i // 100) if reason == "other" else 0) for i, t in enumerate(ts)])
series, pts = 12000.0, []
for t in ts:
    series += rnd.randint(-20, 30)
    pts.append((t, series))
madd("moni_tsdb_series", "gauge", "", [], pts)
madd("moni_tsdb_db_bytes", "gauge", "", [], [(t, 5e7 + i * 1e5) for i, t in enumerate(ts)])
madd("moni_tsdb_db_file_bytes", "gauge", "", [], [(t, 6.4e7 + (i // 60) * 1e7) for i, t in enumerate(ts)])
madd("moni_scrape_targets", "gauge", "", [("instance_name", "agents")], [(t, 3.0) for t in ts])
madd("moni_scrape_scrapes", "counter", "_total", [("instance_name", "agents")], [(t, 3 * (i + 1)) for i, t in enumerate(ts)])
madd("moni_scrape_failures", "counter", "_total", [("instance_name", "agents")],
     [(t, i // 11) for i, t in enumerate(ts)])
for ep, pending in (("central", 200.0), ("backup", 5000.0)):
    labels = [("endpoint", ep)]
    madd("moni_remote_write_samples_sent", "counter", "_total", labels, counter_series(ts, 400.0))
    madd("moni_remote_write_samples_failed", "counter", "_total", labels,
         [(t, (i // 50) * 10 if ep == "backup" else 0) for i, t in enumerate(ts)])
    madd("moni_remote_write_samples_dropped", "counter", "_total", labels,
         [(t, (i // 200) * 100 if ep == "backup" else 0) for i, t in enumerate(ts)])
    madd("moni_remote_write_samples_pending", "gauge", "", labels,
         [(t, round(pending * rnd.uniform(0.5, 1.5))) for t in ts])
    madd("moni_remote_write_queue_bytes", "gauge", "", labels,
         [(t, round(pending * 40 * rnd.uniform(0.5, 1.5))) for t in ts])
    madd("moni_remote_write_lag_seconds", "gauge", "", labels,
         [(t, round(rnd.uniform(0, 3 if ep == "central" else 90), 2)) for t in ts])
madd("moni_grafana_sync_success", "gauge", "", [("instance_name", "grafana")],
     [(t, 0.0 if 20 <= i < 40 else 1.0) for i, t in enumerate(ts)])
madd("moni_grafana_last_sync_timestamp_seconds", "gauge", "", [("instance_name", "grafana")],
     [(t, float(T0 + (i // 40) * 600)) for i, t in enumerate(ts)])
madd("moni_grafana_errors", "counter", "_total", [("instance_name", "grafana")],
     [(t, min(i, 40) // 20 * 3) for i, t in enumerate(ts)])
for family, (typ, help_, fam) in mfam.items():
    families.append((family, typ, help_, fam))

out = []
for name, typ, help_, fam in families:
    out.append("# TYPE %s %s" % (name, typ))
    out.append("# HELP %s %s" % (name, help_))
    for suffix, labels, pts in fam:
        for t, v in pts:
            out.append("%s%s%s %s %s" % (name, suffix, fmt_labels(labels), fmt_value(v), fmt_value(t) if isinstance(t, float) else t))
out.append("# EOF")
print("\n".join(out))
