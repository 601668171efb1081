# The alerting engineer's rules tests (included by CMakeLists.txt here):
# Prometheus YAML rule files, and the Alertmanager notifier against a real
# prometheus-alertmanager 0.25 on loopback (skipped when it is not installed).
find_package(nlohmann_json REQUIRED)

add_library(moni_alertmanager_peer STATIC ${CMAKE_CURRENT_LIST_DIR}/alertmanager_peer.cpp)
target_include_directories(moni_alertmanager_peer PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(moni_alertmanager_peer PUBLIC moni_promql_test_support
  nlohmann_json::nlohmann_json)

add_executable(rules_yaml_test ${CMAKE_CURRENT_LIST_DIR}/yaml_rules_test.cpp)
target_link_libraries(rules_yaml_test PRIVATE moni_rules_engine moni_promql_test_support
  moni_test_support GTest::gtest_main)
if(EXISTS "${CMAKE_SOURCE_DIR}/plugins/rules/rule_file_toml.cpp")
  target_compile_definitions(rules_yaml_test PRIVATE MONI_RULES_HAVE_TOML_LOADER=1)
endif()
gtest_discover_tests(rules_yaml_test PROPERTIES LABELS "rules;unit")

add_executable(rules_alertmanager_test ${CMAKE_CURRENT_LIST_DIR}/alertmanager_notifier_test.cpp)
target_link_libraries(rules_alertmanager_test PRIVATE moni_rules_engine moni_alertmanager_peer
  GTest::gtest_main)
gtest_discover_tests(rules_alertmanager_test PROPERTIES LABELS "rules;integration" TIMEOUT 60)

# End to end: the rules plugin + lmdb_tsdb (real .so files through the
# harness) + a real Alertmanager; the shipped config/rules/*.toml.
if(TARGET rules AND TARGET lmdb_tsdb)
  add_executable(rules_alertmanager_e2e_test ${CMAKE_CURRENT_LIST_DIR}/alertmanager_e2e_test.cpp)
  target_link_libraries(rules_alertmanager_e2e_test PRIVATE moni_rules_engine
    moni_alertmanager_peer moni_test_support GTest::gtest_main)
  add_dependencies(rules_alertmanager_e2e_test rules lmdb_tsdb)
  gtest_discover_tests(rules_alertmanager_e2e_test PROPERTIES LABELS "rules;integration" TIMEOUT 60)
endif()
