#!/usr/bin/env bash
# Runs the lmdb_tsdb benchmark and, in the same run on the same series set
# and sample count, the peer figures from Prometheus's own tools:
#  - `promtool tsdb bench write --metrics=N --scrapes=S` for the ingest rate
#    (its values are its own +1000 counters; it appends through the head
#    with its WAL enabled, no fsync per commit, series refs cached by the
#    caller, so no label lookup after the first scrape);
#  - `promtool tsdb create-blocks-from openmetrics` on exactly the samples
#    moni stored, for bytes per sample in Prometheus's block format.
# moni's side writes what the host writes for TARGETS scrape targets: one
# batch per target, from WRITERS threads (default 2, the cores of this
# machine): the host's scrape workers deliver a collector's targets'
# batches concurrently to a storage plugin that declares concurrent writes
# (ABI 1.2, as lmdb_tsdb does), each target's batches in order. WRITERS=1
# is the sequential delivery of ABI 1.1 (the earlier figures); see
# README.md here.
# Usage: [ROUNDS=3] [WRITERS=2] bench/lmdb_tsdb/run_bench.sh BUILD_DIR [TARGETS] [HOURS] [DATA]
# ROUNDS: moni and promtool runs alternate this many times each; the
# summary gives the median rates of both and their ratio.
# BASELINE_BIN: another build's bench_lmdb_tsdb (e.g. of an older commit),
# run in every round too, for before/after figures from the same run.
# BUILD_DIR: a Release build configured with -DMONI_BUILD_BENCH=ON.
# DATA: recorded node_exporter scrapes (default: the recording under
# tests/data/lmdb_tsdb, replayed to HOURS), or "synthetic".
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run_bench.sh BUILD_DIR [TARGETS] [HOURS] [DATA]}
targets=${2:-1}
hours=${3:-24}
data=${4:-$here/../../tests/data/lmdb_tsdb/node_exporter_scrapes.txt.xz}
work=$(mktemp -d /tmp/bench_lmdb_tsdb.XXXXXX)
trap 'rm -rf "$work"' EXIT
cmake --build "$build" --target bench_lmdb_tsdb >/dev/null
# promtool ingests scrapes in rounds of 100: moni writes the same count.
scrapes=$(awk -v h="$hours" 'BEGIN { s = int(h * 240 + 0.5); printf "%d", int((s + 99) / 100) * 100 }')
replay=()
if [ "$data" != synthetic ]; then
  xz -dc "$data" > "$work/scrapes.txt"
  replay=(--replay "$work/scrapes.txt")
fi
rounds=${ROUNDS:-3}
writers=${WRITERS:-2}
med() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
echo "load before: $(uptime)"
# moni and promtool alternate, ROUNDS times each, so that load from other
# processes hits both alike; the summary gives the medians.
: > "$work/rates"
for r in $(seq "$rounds"); do
  extra=(--full-sync-hours 0)
  if [ "$r" = 1 ]; then extra=(--series-json "$work/series.json" --openmetrics "$work/data.om"); fi
  echo "== round $r/$rounds: moni lmdb_tsdb, $writers writer thread(s) ($(uptime | sed 's/.*load/load/'))"
  "$build/bin/bench_lmdb_tsdb" --targets "$targets" --scrapes "$scrapes" --dir "$work/moni" \
    --writers "$writers" "${extra[@]}" "${replay[@]}" > "$work/moni$r.txt"
  cat "$work/moni$r.txt"
  [ "$r" = 1 ] && cp "$work/moni1.txt" "$work/moni.txt"
  n=$(wc -l < "$work/series.json")
  samples=$(awk '/^series:/ { print $6 }' "$work/moni.txt" | tr -d ,)
  echo "== round $r/$rounds: promtool tsdb bench write ($(promtool --version 2>&1 | awk 'NR==1{print $3}')): $n series x $scrapes scrapes ($(uptime | sed 's/.*load/load/'))"
  rm -rf "$work/prom"
  /usr/bin/time -f "%U %S" -o "$work/prom.time" promtool tsdb bench write --metrics="$n" \
    --scrapes="$scrapes" --out="$work/prom" "$work/series.json" > "$work/prom.txt" 2>&1
  grep -E "total samples|samples/sec" "$work/prom.txt"
  prom_total=$(awk '/total samples/ { print $NF }' "$work/prom.txt")
  mr=$(awk '/^ingest \(sync=none/ { print $(NF-6) }' "$work/moni$r.txt")
  mc=$(awk '/^ingest \(sync=none/ { print $(NF-3) }' "$work/moni$r.txt")
  pr=$(awk '/samples\/sec/ { printf "%.0f", $NF }' "$work/prom.txt")
  pc=$(awk -v t="$prom_total" '{ printf "%.0f", t / ($1 + $2) }' "$work/prom.time")
  br=0 bc=0
  if [ -n "${BASELINE_BIN:-}" ]; then
    echo "== round $r/$rounds: baseline $BASELINE_BIN ($(uptime | sed 's/.*load/load/'))"
    "$BASELINE_BIN" --targets "$targets" --scrapes "$scrapes" --dir "$work/base" \
      --writers "$writers" --full-sync-hours 0 "${replay[@]}" > "$work/base.txt"
    grep '^ingest' "$work/base.txt"
    br=$(awk '/^ingest \(sync=none/ { print $(NF-6) }' "$work/base.txt")
    bc=$(awk '/^ingest \(sync=none/ { print $(NF-3) }' "$work/base.txt")
  fi
  echo "$mr $mc $pr $pc $br $bc" >> "$work/rates"
  awk -v m="$mr" -v p="$pr" 'BEGIN { printf "round ratio (wall): %.2fx\n", m / p }'
done
echo "== promtool tsdb create-blocks-from openmetrics (the same $samples samples)"
promtool tsdb create-blocks-from openmetrics "$work/data.om" "$work/blocks" > /dev/null 2>&1
bb=$(du -sb "$work/blocks" | awk '{print $1}')
echo "load after: $(uptime)"
moni_rate=$(awk '{ print $1 }' "$work/rates" | med)
moni_cpu_rate=$(awk '{ print $2 }' "$work/rates" | med)
prom_rate=$(awk '{ print $3 }' "$work/rates" | med)
prom_cpu_rate=$(awk '{ print $4 }' "$work/rates" | med)
ratios=$(awk '{ printf "%s%.2fx", (NR > 1 ? " " : ""), $1 / $3 }' "$work/rates")
cpu_ratios=$(awk '{ printf "%s%.2fx", (NR > 1 ? " " : ""), $2 / $4 }' "$work/rates")
base_ratios=$(awk '$5 > 0 { printf "%s%.2fx", (NR > 1 ? " " : ""), $5 / $3 }' "$work/rates")
moni_bps=$(awk '/^bytes\/sample:/ { print $2 }' "$work/moni.txt")
moni_live=$(awk '/^bytes\/sample:/ { print $NF }' "$work/moni.txt")
moni_read=$(awk '/^read one series/ { print $(NF-4) }' "$work/moni.txt")
echo
echo "== summary: $n series, $scrapes scrapes, $samples samples (moni, $writers writer thread(s)) / $prom_total (promtool), median of $rounds interleaved rounds"
awk -v m="$moni_rate" -v p="$prom_rate" -v mc="$moni_cpu_rate" -v pc="$prom_cpu_rate" \
  -v mb="$moni_bps" -v ml="$moni_live" -v bb="$bb" -v ns="$samples" -v rd="$moni_read" -v rs="$ratios" -v rc="$cpu_ratios" -v rb="$base_ratios" \
  -v bw="$(awk '{ print $5 }' "$work/rates" | med)" -v bcpu="$(awk '{ print $6 }' "$work/rates" | med)" 'BEGIN {
  printf "%-44s %14s %14s %8s\n", "", "moni", "prometheus", "ratio"
  printf "%-44s %14.0f %14.0f %7.2fx\n", "ingest, samples/s (wall)", m, p, m / p
  printf "%-44s %14.0f %14.0f %7.2fx\n", "ingest, samples per CPU-second (*)", mc, pc, mc / pc
  printf "%-44s %14.3f %14.3f %7.2fx\n", "bytes/sample on disk (compacted)", mb, bb / ns, mb / (bb / ns)
  printf "%-44s %14.3f %14s\n", "bytes/sample, live moni file", ml, "-"
  printf "%-44s %14s %14s\n", "read one series over 24 h, median us", rd, "-"
  print "wall ratio per round: " rs
  print "per-CPU ratio per round: " rc
  if (bw > 0) {
    print "baseline build, wall ratio per round: " rb
    printf "%-44s %14.0f %14s %7.2fx\n", "baseline build: samples/s (wall)", bw, "", bw / p
    printf "%-44s %14.0f %14s %7.2fx\n", "baseline build: samples per CPU-second", bcpu, "", bcpu / pc
  }
  print "(*) moni: CPU time of the whole process over the timed write loop (writer and chunk"
  print "    thread); prometheus: whole promtool process. BASELINE_BIN builds of 9625f73 and"
  print "    earlier time only the write() calls."
}'
