# TLS on the host's HTTP server through the real moni binary (included from
# tests/host/CMakeLists.txt). Needs the openssl and curl CLIs and prometheus.
add_executable(host_tls_test tls_test.cpp tls_certs.cpp subprocess.cpp)
target_link_libraries(host_tls_test PRIVATE moni_host GTest::gtest_main)
add_dependencies(host_tls_test moni)
target_compile_definitions(host_tls_test PRIVATE MONI_BIN="$<TARGET_FILE:moni>")
gtest_discover_tests(host_tls_test PROPERTIES LABELS "host" DISCOVERY_TIMEOUT 60)
