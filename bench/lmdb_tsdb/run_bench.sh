#!/usr/bin/env bash
# Runs the lmdb_tsdb benchmark and, on the same series set, the peer
# figures from Prometheus's own tools:
#  - `promtool tsdb bench write` with the same series count and scrape count
#    (its values are its own synthetic counters) for the ingest rate;
#  - `promtool tsdb create-blocks-from openmetrics` on exactly the samples
#    moni stored, for bytes per sample in Prometheus's block format.
# Usage: bench/lmdb_tsdb/run_bench.sh BUILD_DIR [TARGETS] [HOURS]
# BUILD_DIR: a Release build configured with -DMONI_BUILD_BENCH=ON.
set -euo pipefail
build=${1:?usage: run_bench.sh BUILD_DIR [TARGETS] [HOURS]}
targets=${2:-1}
hours=${3:-24}
work=$(mktemp -d /tmp/bench_lmdb_tsdb.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --build "$build" --target bench_lmdb_tsdb >/dev/null
echo "== moni lmdb_tsdb"
"$build/bin/bench_lmdb_tsdb" --targets "$targets" --hours "$hours" --dir "$work/moni" \
  --series-json "$work/series.json" --openmetrics "$work/data.om" | tee "$work/moni.txt"
n=$(wc -l < "$work/series.json")
scrapes=$(awk -v h="$hours" 'BEGIN { printf "%d", h * 240 }')
samples=$(awk '/^series:/ { print $6 }' "$work/moni.txt" | tr -d ,)
echo "== promtool tsdb bench write ($(promtool --version 2>&1 | awk 'NR==1{print $3}')): $n series x $scrapes scrapes"
/usr/bin/time -f "%U %S" -o "$work/prom.time" promtool tsdb bench write --metrics="$n" \
  --scrapes="$scrapes" --out="$work/prom" "$work/series.json" > "$work/prom.txt" 2>&1
grep -E "total samples|samples/sec" "$work/prom.txt"
prom_total=$(awk '/total samples/ { print $NF }' "$work/prom.txt")
prom_rate=$(awk '/samples\/sec/ { printf "%.0f", $NF }' "$work/prom.txt")
prom_cpu=$(awk '{ print $1 + $2 }' "$work/prom.time")
echo "promtool process CPU: ${prom_cpu}s (all stages) -> $(awk -v n="$prom_total" -v c="$prom_cpu" 'BEGIN { printf "%.0f", n / c }') samples per CPU-second"
echo "== promtool tsdb create-blocks-from openmetrics (the same $samples samples)"
promtool tsdb create-blocks-from openmetrics "$work/data.om" "$work/blocks" > /dev/null 2>&1
bb=$(du -sb "$work/blocks" | awk '{print $1}')
awk -v b="$bb" -v n="$samples" 'BEGIN { printf "prometheus blocks: %d bytes, %.3f bytes/sample\n", b, b / n }'
moni_rate=$(awk '/^ingest \(sync=none/ { print $(NF-6) }' "$work/moni.txt")
awk -v m="$moni_rate" -v p="$prom_rate" 'BEGIN { printf "ingest ratio moni/prometheus (wall samples/s): %.2fx\n", m / p }'
