# The layers of src/, enforced by the compiler. A library's sources see only
# the src/ folders it may use: its include path is a directory of links to
# exactly those folders (build/layers/<target>/src/<folder>), not the
# source root, so an upward include (a daemon including a runtime header,
# the shared core including the worker's) fails with "No such file".
#
#   common ← rpc ← objstore ← core ← local, worker ← api
#   common ← rpc ← objstore ← control, node ← cli
#
# A header's own includes resolve through the including source's path, so a
# library lists every folder its headers reach, not only those it calls.
# Tests and benchmarks may look anywhere (sunray_all_sources).
function(sunray_layer target)
  set(view ${PROJECT_BINARY_DIR}/layers/${target})
  file(REMOVE_RECURSE ${view})
  foreach(folder IN LISTS ARGN)
    get_filename_component(parent ${view}/src/${folder} DIRECTORY)
    file(MAKE_DIRECTORY ${parent})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${folder} ${view}/src/${folder} SYMBOLIC)
  endforeach()
  target_include_directories(${target} PRIVATE ${view})
endfunction()

# For tests, fixtures and benchmarks: the whole source tree.
add_library(sunray_all_sources INTERFACE)
target_include_directories(sunray_all_sources INTERFACE ${PROJECT_SOURCE_DIR})
