# Read by cpack for each generator (CPACK_PROJECT_CONFIG_FILE), after any
# `cpack -D` overrides, so a release bump on the command line
# (-D CPACK_DEBIAN_PACKAGE_RELEASE=2) reaches moni-dev's dependency too.

# The unit file and the maintainer scripts name /usr/bin/moni and
# /etc/moni/moni.toml, and the host finds its plugins relative to its own
# path: packages from a build with another install prefix would not work.
if(NOT CPACK_PACKAGING_INSTALL_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "moni packages need a build configured with -DCMAKE_INSTALL_PREFIX=/usr "
                      "(this one has ${CPACK_PACKAGING_INSTALL_PREFIX}); see packaging/build-packages.sh")
endif()

# moni-dev goes with the moni of exactly its version.
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "moni (= ${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE})")
set(CPACK_RPM_DEV_PACKAGE_REQUIRES "moni = ${CPACK_PACKAGE_VERSION}-${CPACK_RPM_PACKAGE_RELEASE}")
set(CPACK_RPM_DEV_PACKAGE_PROVIDES "moni-dev = ${CPACK_PACKAGE_VERSION}-${CPACK_RPM_PACKAGE_RELEASE}")

# cpack -D MONI_RPM_PAYLOAD=w1.gzdio: the RPM payload's compressor and
# level. CPACK_RPM_COMPRESSION_TYPE fixes the level (gzip is always -9, ~35 s
# of CPU for a sanitizer build); the packaging test uses gzip -1.
if(MONI_RPM_PAYLOAD)
  set(CPACK_RPM_COMPRESSION_TYPE "")
  string(APPEND CPACK_RPM_SPEC_MORE_DEFINE "\n%define _binary_payload ${MONI_RPM_PAYLOAD}")
endif()
