# moni_add_plugin(<name> SOURCES <src>...): a plugin shared object named
# moni-<name>.so with hidden visibility, linked to the SDK only.
function(moni_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${name} MODULE ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE moni::sdk)
  set_target_properties(${name} PROPERTIES
    PREFIX "moni-"
    OUTPUT_NAME "${name}"
    CXX_STANDARD 20
    CXX_STANDARD_REQUIRED ON
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
endfunction()
