#!/usr/bin/env bash
# Installs what is missing, builds moni and its tests with ASan+UBSan and
# -Werror, and runs the whole suite (unit, integration against real
# Prometheus/promtool/node_exporter, packaging). Extra arguments go to ctest
# (e.g. -R node -V).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh test
build=${MONI_TEST_BUILD_DIR:-build-test}
# Prefix /usr: the packaging test packages this tree as it is (nothing else
# installs it); with another prefix it would have to build a second tree.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DMONI_SANITIZE=ON -DMONI_WERROR=ON \
  -DMONI_BUILD_TESTS=ON -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$build"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
cd "$build"
ctest --output-on-failure --timeout 300 -j2 "$@"
