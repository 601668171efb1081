# The alerting part of moni_rules_engine (owned by the alerting engineer):
# the Alertmanager notifier and its options, built on remote_write's
# blocking Beast client (compiled in here, not copied), and the Prometheus
# YAML rule files (yaml-cpp, Debian libyaml-cpp-dev). Included by
# CMakeLists.txt after moni_rules_engine is defined.
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(Threads REQUIRED)
find_package(nlohmann_json REQUIRED)
target_sources(moni_rules_engine PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/notifier_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/../remote_write/http_client.cpp)
target_link_libraries(moni_rules_engine PRIVATE Boost::headers OpenSSL::SSL OpenSSL::Crypto
  Threads::Threads nlohmann_json::nlohmann_json)
