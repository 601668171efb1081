#!/usr/bin/env bash
# Installs what is missing, builds moni (release) and runs it with the bundled
# default config: collect, store and serve on 127.0.0.1. Extra arguments go
# to `moni run` (e.g. --listen 127.0.0.1:9999 --data-dir /tmp/moni).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DMONI_BUILD_TESTS=OFF >/dev/null
cmake --build build
exec build/bin/moni run --config config/moni.toml --data-dir "${MONI_DATA_DIR:-$PWD/data}" "$@"
