#!/usr/bin/env bash
# Builds the release packages: moni and moni-dev, as .deb and .rpm, into
# build-release/packages/. Debian's hardening flags (dpkg-buildflags: stack
# protector, _FORTIFY_SOURCE, relro/now) are added to the usual Release flags.
# Extra arguments go to the first cmake call (e.g. -DMONI_PACKAGE_RELEASE=2).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/deps.sh build
command -v dpkg-buildflags >/dev/null || { echo "build-packages: needs dpkg-dev" >&2; exit 1; }
command -v rpmbuild >/dev/null || { echo "build-packages: needs rpm (apt-get install rpm)" >&2; exit 1; }
build=${MONI_RELEASE_BUILD_DIR:-build-release}
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
  -DMONI_BUILD_TESTS=OFF \
  "-DCMAKE_C_FLAGS=$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  "-DCMAKE_CXX_FLAGS=$(dpkg-buildflags --get CXXFLAGS) $(dpkg-buildflags --get CPPFLAGS)" \
  "-DCMAKE_EXE_LINKER_FLAGS=$(dpkg-buildflags --get LDFLAGS)" \
  "-DCMAKE_MODULE_LINKER_FLAGS=$(dpkg-buildflags --get LDFLAGS)" \
  "-DCMAKE_SHARED_LINKER_FLAGS=$(dpkg-buildflags --get LDFLAGS)" "$@"
cmake --build "$build"
(cd "$build" && cpack)
ls -l "$build"/packages/*.deb "$build"/packages/*.rpm
