#!/usr/bin/env bash
# Checks that cmake/layers.cmake holds: through each library's include view,
# a header of its own layer or one below compiles, and a header of a layer
# above (or beside) does not. Usage: check_layers.sh CXX SOURCE_DIR BUILD_DIR
set -uo pipefail
cxx="$1"
public="$2/include"
generated="$3/src/proto"
layers="$3/layers"
failed=0
# (Quoted includes of standard input resolve from the working directory
# first: work where there is nothing to find.)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 1

# compiles VIEW HEADER: 0 if `#include HEADER` preprocesses through VIEW.
compiles() {
  echo "#include \"$2\"" | "$cxx" -std=c++20 -E -x c++ -I "$layers/$1" -I "$public" -I "$generated" - \
    -o /dev/null 2>/dev/null
}
allowed() {
  if ! compiles "$1" "$2"; then
    echo "FAIL: $1 cannot include $2 (a layer it may use)"
    failed=1
  fi
}
refused() {
  if compiles "$1" "$2"; then
    echo "FAIL: $1 can include $2 (a layer above it)"
    failed=1
  fi
}

allowed sunray_core src/common/id.h
refused sunray_core src/worker/task_stream.h
refused sunray_core src/api/local/local_runtime.h
refused sunray_local src/worker/cluster_runtime.h
refused sunray_worker src/api/local/local_runtime.h
refused sunray_worker src/api/config.h
refused sunray_control src/core/object_error.h
refused sunray_control src/cli/main.cc
refused sunray_node src/worker/task_stream.h
refused sunray_rpc src/objstore/store_client.h
refused sunray_common src/rpc/rpc.h
allowed sunray_worker src/core/memory_store.h
allowed sunray_api src/worker/cluster_connect.h
exit "$failed"
