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

out = []
for name, typ, help_, fam in families:
    out.append("# TYPE %s %s" % (name, typ))
    out.append("# HELP %s %s" % (name, help_))
    for suffix, labels, pts in fam:
        for t, v in pts:
            out.append("%s%s%s %s %s" % (name, suffix, fmt_labels(labels), fmt_value(v), fmt_value(t) if isinstance(t, float) else t))
out.append("# EOF")
print("\n".join(out))
