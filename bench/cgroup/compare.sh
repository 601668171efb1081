#!/bin/sh
# Compares two builds of the cgroup plugin in one run, alternating them so
# that both see the same machine load (it drifts on the shared 2-core VM):
#   bench/cgroup/compare.sh BENCH_BINARY OTHER_SO [ROUNDS] [FILTER]
# OTHER_SO is e.g. an older commit's moni-cgroup.so; the other build is the
# one next to the benchmark. Prints the load average before each run.
set -eu
bench=$1
other=$2
rounds=${3:-2}
filter=${4:-'Collect500_(V2|HybridV1|RealCgroupfs)/'}
i=0
while [ "$i" -lt "$rounds" ]; do
  for which in other this; do
    echo "== $which, round $i, $(uptime | sed 's/.*load/load/')"
    if [ "$which" = other ]; then
      MONI_CGROUP_SO=$other "$bench" --benchmark_filter="$filter" --benchmark_min_time=2 2>&1 | grep '^BM_'
    else
      "$bench" --benchmark_filter="$filter" --benchmark_min_time=2 2>&1 | grep '^BM_'
    fi
  done
  i=$((i + 1))
done
