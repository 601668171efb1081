#!/usr/bin/env bash
# Node collector cost, moni vs node_exporter, measured in one run.
#
#   bench/node/bench.sh [BUILD_DIR]     (default: <repo>/build; use a Release,
#                                        non-sanitized build for real figures)
#   N=40 PERIOD=0.5 bench/node/bench.sh
#
# 1. node_bench (Google Benchmark): time and allocations of one collection.
# 2. When BUILD_DIR has bin/moni and moni-prom_exposition.so: moni with only
#    [collectors.node] (interval = PERIOD) and /metrics, and
#    prometheus-node-exporter with the same 17 collectors, run side by side
#    on free loopback ports and scraped N times each, every PERIOD seconds.
#    Prints CPU seconds per scrape (utime+stime from /proc/PID/stat, 10 ms
#    ticks; and the threads' schedstat run time, ns resolution), RSS
#    (VmRSS, VmHWM, and VmRSS split into anonymous and file-backed pages) of
#    both, and the machine's load average before and after the run (the
#    figures are only comparable at similar load). Without the host it
#    measures only the plugin.
#    COLLECT_ON_SCRAPE=1: moni collects on each scrape (prom_exposition
#    collect_on_scrape, collector interval 1h) instead of every PERIOD.
#    GZIP=1: scrape with "Accept-Encoding: gzip" as Prometheus does (both
#    then compress; body bytes are the compressed size).
#    KEEPALIVE=1: every scrape of a server goes over one kept-alive
#    connection (python3 http.client), as Prometheus reuses its connection
#    to a target; default: a new connection per scrape (curl).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-${MONI_BENCH_BUILD_DIR:-$repo/build}}" && pwd)
N=${N:-40}
PERIOD=${PERIOD:-0.5}
plugins=$build/lib/moni/plugins
ne_bin=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
collectors="cpu cpufreq diskstats entropy filefd filesystem loadavg meminfo netdev netstat os pressure sockstat stat time uname vmstat"
tick=$(getconf CLK_TCK)
page=$(getconf PAGESIZE)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
# ns-resolution CPU time: the sum over the process's live threads of
# /proc/PID/task/TID/schedstat's run time (threads that exit in between are
# not counted; moni's and node_exporter's threads live as long as they do).
sched_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d", s}'; }
status_kib() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
wait_metrics() {  # port, pattern
  for _ in $(seq 100); do
    if curl -sf "http://127.0.0.1:$1/metrics" 2>/dev/null | grep -q "$2"; then return 0; fi
    sleep 0.1
  done
  return 1
}

echo "== node_bench: one collection (build: $build)"
if [[ -x $build/bin/node_bench ]]; then
  "$build/bin/node_bench" --benchmark_min_time=1 2>&1 | grep -E '^(BM_|Run on|-----|Benchmark)'
else
  echo "no $build/bin/node_bench (configure with -DMONI_BUILD_BENCH=ON and build node_bench)"
fi

have_moni=1
for f in "$build/bin/moni" "$plugins/moni-prom_exposition.so" "$plugins/moni-node.so"; do
  [[ -e $f ]] || { echo "missing $f"; have_moni=0; }
done
if [[ ! -x $ne_bin ]]; then
  echo "no $ne_bin: nothing to compare with"
  exit 0
fi
if [[ $have_moni == 0 ]]; then
  echo "the moni host or the prom_exposition plugin is not built: measuring only the plugin (above)"
  exit 0
fi

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

ne_port=$(free_port)
ne_args=(--web.listen-address="127.0.0.1:$ne_port" --collector.disable-defaults --log.level=error
  --web.disable-exporter-metrics
  "--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)(\$|/)")
for c in $collectors; do ne_args+=("--collector.$c"); done
"$ne_bin" "${ne_args[@]}" >"$tmp/ne.log" 2>&1 &
ne_pid=$!
pids+=("$ne_pid")

moni_port=$(free_port)
interval_ms=$(awk -v p="$PERIOD" 'BEGIN{printf "%d", p*1000}')
collect_opt=""
interval="${interval_ms}ms"
if [[ ${COLLECT_ON_SCRAPE:-0} == 1 ]]; then collect_opt="collect_on_scrape = true"; interval="1h"; fi
# The same sub-collectors as node_exporter runs (moni's default enables
# every one it has, which may be more).
enable=$(printf '"%s", ' $collectors); enable="[${enable%, }]"
cat >"$tmp/moni.toml" <<TOML
[host]
listen = "127.0.0.1:$moni_port"
data_dir = "$tmp/data"
log_level = "warn"

[collectors.node]
interval = "$interval"
enable = $enable

[outputs.metrics]
plugin = "prom_exposition"
$collect_opt

[pipelines.local]
collectors = ["node"]
processors = []
sinks = ["metrics"]
TOML
mkdir -p "$tmp/data"
"$build/bin/moni" run --config "$tmp/moni.toml" >"$tmp/moni.log" 2>&1 &
moni_pid=$!
pids+=("$moni_pid")

wait_metrics "$ne_port" node_cpu_seconds_total || { echo "node_exporter did not start"; cat "$tmp/ne.log"; exit 1; }
wait_metrics "$moni_port" node_cpu_seconds_total || { echo "moni did not start"; cat "$tmp/moni.log"; exit 1; }
for _ in 1 2; do  # warm-up
  curl -sf -o /dev/null "http://127.0.0.1:$ne_port/metrics"
  curl -sf -o /dev/null "http://127.0.0.1:$moni_port/metrics"
done

load0=$(cut -d' ' -f1-3 /proc/loadavg)
ne0=$(cpu_ticks "$ne_pid"); moni0=$(cpu_ticks "$moni_pid")
ne_ns0=$(sched_ns "$ne_pid"); moni_ns0=$(sched_ns "$moni_pid")
ne_bytes=0; moni_bytes=0
accept=()
if [[ ${GZIP:-0} == 1 ]]; then accept=(-H "Accept-Encoding: gzip"); fi
if [[ ${KEEPALIVE:-0} == 1 ]]; then
  # One kept-alive connection per server, as Prometheus reuses its
  # connection to a target from one scrape to the next.
  read -r ne_bytes moni_bytes < <(python3 - "$N" "$PERIOD" "$ne_port" "$moni_port" "${GZIP:-0}" <<'PY'
import http.client, sys, time
n, period, gz = int(sys.argv[1]), float(sys.argv[2]), sys.argv[5] == "1"
conns = [http.client.HTTPConnection("127.0.0.1", int(p)) for p in sys.argv[3:5]]
headers = {"Accept-Encoding": "gzip"} if gz else {}
sizes = [0, 0]
for _ in range(n):
    for i, c in enumerate(conns):
        c.request("GET", "/metrics", headers=headers)
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or r.will_close:
            sys.exit("scrape of port %s: status %d, keep-alive %s" % (sys.argv[3 + i], r.status, not r.will_close))
        sizes[i] = len(body)
    time.sleep(period)
print(*sizes)
PY
)
  [[ -n $moni_bytes ]] || { echo "keep-alive scrapes failed"; exit 1; }
else
  for _ in $(seq "$N"); do
    ne_bytes=$(curl -sf "${accept[@]}" "http://127.0.0.1:$ne_port/metrics" | wc -c)
    moni_bytes=$(curl -sf "${accept[@]}" "http://127.0.0.1:$moni_port/metrics" | wc -c)
    sleep "$PERIOD"
  done
fi
ne1=$(cpu_ticks "$ne_pid"); moni1=$(cpu_ticks "$moni_pid")
ne_ns1=$(sched_ns "$ne_pid"); moni_ns1=$(sched_ns "$moni_pid")
load1=$(cut -d' ' -f1-3 /proc/loadavg)

echo
gz=""
if [[ ${GZIP:-0} == 1 ]]; then gz=", gzip"; fi
if [[ ${KEEPALIVE:-0} == 1 ]]; then gz="$gz, kept-alive connections"; fi
if [[ $interval == 1h ]]; then
  echo "== $N scrapes every ${PERIOD}s (moni collects on each scrape$gz)"
else
  echo "== $N scrapes every ${PERIOD}s (moni collects every ${interval_ms}ms$gz)"
fi
echo "load average before: $load0, after: $load1 ($(nproc) cores)"
awk -v n="$N" -v tick="$tick" \
  -v ne_cpu="$((ne1 - ne0))" -v moni_cpu="$((moni1 - moni0))" \
  -v ne_rss="$(status_kib "$ne_pid" VmRSS)" -v moni_rss="$(status_kib "$moni_pid" VmRSS)" \
  -v ne_hwm="$(status_kib "$ne_pid" VmHWM)" -v moni_hwm="$(status_kib "$moni_pid" VmHWM)" \
  -v ne_anon="$(status_kib "$ne_pid" RssAnon)" -v moni_anon="$(status_kib "$moni_pid" RssAnon)" \
  -v ne_file="$(status_kib "$ne_pid" RssFile)" -v moni_file="$(status_kib "$moni_pid" RssFile)" \
  -v ne_ns="$((ne_ns1 - ne_ns0))" -v moni_ns="$((moni_ns1 - moni_ns0))" \
  -v ne_b="$ne_bytes" -v moni_b="$moni_bytes" 'BEGIN {
  ne_ms = ne_cpu / tick * 1000 / n; moni_ms = moni_cpu / tick * 1000 / n
  printf "%-15s %14s %10s %10s %10s %10s %12s\n", "", "CPU ms/scrape", "VmRSS MiB", "anon MiB", "file MiB", "VmHWM MiB", "body bytes"
  printf "%-15s %14.2f %10.1f %10.1f %10.1f %10.1f %12d\n", "node_exporter", ne_ms, ne_rss/1024, ne_anon/1024, ne_file/1024, ne_hwm/1024, ne_b
  printf "%-15s %14.2f %10.1f %10.1f %10.1f %10.1f %12d\n", "moni", moni_ms, moni_rss/1024, moni_anon/1024, moni_file/1024, moni_hwm/1024, moni_b
  if (ne_ms > 0) printf "moni/node_exporter CPU: %.3f (goal <= 0.200)\n", moni_ms / ne_ms
  if (ne_rss > 0) printf "moni/node_exporter RSS: %.3f (goal <= 0.333)\n", moni_rss / ne_rss
  printf "(CPU resolution: 1/%d s over %d scrapes = %.2f ms/scrape)\n", tick, n, 1000 / tick / n
  ne_s = ne_ns / 1e6 / n; moni_s = moni_ns / 1e6 / n
  printf "CPU ms/scrape from schedstat (ns resolution): node_exporter %.3f, moni %.3f\n", ne_s, moni_s
  if (ne_s > 0) printf "moni/node_exporter CPU (schedstat): %.3f (goal <= 0.200)\n", moni_s / ne_s
}'
echo "moni's largest mappings (KiB resident):"
awk '/^[0-9a-f]+-[0-9a-f]+ / {f=$6} /^Rss:/ {if (f != "") r[f]+=$2} END {for (k in r) if (r[k] >= 256) printf "  %6d  %s\n", r[k], k}' \
  "/proc/$moni_pid/smaps" | sort -rn | head -8
