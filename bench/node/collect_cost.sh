#!/usr/bin/env bash
# CPU per collection of the node plugin inside the real host, without
# scrapes: several builds side by side in the same seconds, so they see the
# same machine load.
#
#   bench/node/collect_cost.sh DIR [DIR...]
#   ROUNDS=3 DURATION=30 PERIOD=0.25 bench/node/collect_cost.sh new/ base/
#
# Each DIR holds bin/moni and lib/moni/plugins/moni-{node,prom_exposition}.so
# (a Release build dir, or a directory assembled from one host binary and
# different node plugins, so that only the plugin differs). Every DIR runs
# moni with [collectors.node] (bench.sh's 17 sub-collectors, interval PERIOD)
# and prom_exposition as the sink, all at the same time, for DURATION
# seconds per round. Prints, per DIR and round, CPU per collection from the
# threads' schedstat run time (ns resolution): all threads, and the thread
# that used the most (the worker that collects), plus the load average.
# Collections are counted as DURATION / PERIOD.
set -euo pipefail
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-30}
PERIOD=${PERIOD:-0.25}
ENABLE=${ENABLE:-cpu cpufreq diskstats entropy filefd filesystem loadavg meminfo netdev netstat os pressure sockstat stat time uname vmstat}
[[ $# -ge 1 ]] || { echo "usage: $0 DIR [DIR...]" >&2; exit 2; }
dirs=()
for d in "$@"; do dirs+=("$(cd "$d" && pwd)"); done

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# "tid comm run_ns" per live thread of a process.
sched() {
  for t in /proc/"$1"/task/*; do echo "${t##*/} $(<"$t"/comm) $(cut -d' ' -f1 "$t"/schedstat)"; done 2>/dev/null
}

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

interval_ms=$(awk -v p="$PERIOD" 'BEGIN{printf "%d", p*1000}')
enable=$(printf '"%s", ' $ENABLE); enable="[${enable%, }]"
n=$(awk -v d="$DURATION" -v p="$PERIOD" 'BEGIN{printf "%d", d/p}')
for round in $(seq "$ROUNDS"); do
  pids=()
  for i in "${!dirs[@]}"; do
    mkdir -p "$tmp/$i/data"
    cat >"$tmp/$i/moni.toml" <<TOML
[host]
listen = "127.0.0.1:$(free_port)"
data_dir = "$tmp/$i/data"
log_level = "warn"
[collectors.node]
interval = "${interval_ms}ms"
enable = $enable
[outputs.metrics]
plugin = "prom_exposition"
[pipelines.local]
collectors = ["node"]
processors = []
sinks = ["metrics"]
TOML
    "${dirs[$i]}/bin/moni" run --config "$tmp/$i/moni.toml" >"$tmp/$i/log" 2>&1 &
    pids+=("$!")
  done
  sleep 3  # start-up and the first collections (mount table, os-release...)
  load0=$(cut -d' ' -f1-3 /proc/loadavg)
  for i in "${!dirs[@]}"; do sched "${pids[$i]}" >"$tmp/$i/before"; done
  sleep "$DURATION"
  load1=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== round $round: $n collections each (${DURATION}s / ${PERIOD}s), load average $load0 -> $load1"
  for i in "${!dirs[@]}"; do
    sched "${pids[$i]}" >"$tmp/$i/after"
    # Threads that started in between count from 0.
    awk -v d="${dirs[$i]}" -v n="$n" -v per="${PER_THREAD:-}" '
      FNR == NR {b[$1] = $3; next}
      {dt = $3 - b[$1]; t += dt; if (dt > m) m = dt; c[$2] += dt}
      END {
        printf "  %-40s %8.1f us/collection (all threads), busiest thread %8.1f us\n", d, t / n / 1000, m / n / 1000
        if (per != "") for (k in c) printf "      %-16s %8.1f us\n", k, c[k] / n / 1000
      }' "$tmp/$i/before" "$tmp/$i/after"
  done
  for p in "${pids[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
  pids=()
done
