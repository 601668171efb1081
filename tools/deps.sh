#!/usr/bin/env bash
# Installs the Debian 12 packages moni needs: `deps.sh build` for building and
# running, `deps.sh test` for the test suite's extra tools and real peers.
set -euo pipefail

build_pkgs=(g++ cmake ninja-build pkg-config ccache
  libboost-dev libboost-system-dev libboost-filesystem-dev libboost-program-options-dev
  libtomlplusplus-dev liblmdb-dev lmdb-utils libfmt-dev libspdlog-dev nlohmann-json3-dev
  libsnappy-dev libprotobuf-dev protobuf-compiler zlib1g-dev libre2-dev libssl-dev libcrypt-dev libyaml-cpp-dev)
test_pkgs=(libgtest-dev libgmock-dev libbenchmark-dev curl procps iproute2
  prometheus prometheus-node-exporter prometheus-alertmanager
  clang libclang-rt-14-dev rpm lintian dpkg-dev fakeroot file python3 systemd adduser openssl)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Debian's prometheus packages try to start their services; systemd does not
# run here, so a failing start must not fail the install.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
