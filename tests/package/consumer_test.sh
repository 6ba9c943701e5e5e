#!/usr/bin/env bash
# Usage: consumer_test.sh BUILD_DIR CONSUMER_SOURCE_DIR [EXTRA_CXX_FLAGS]
set -euo pipefail
build_dir="$1"
consumer_src="$2"
extra_flags="${3:-}"
work="$(mktemp -d "${TMPDIR:-/tmp}/sunray-package-test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/ray/api.h"
cmake -S "$consumer_src" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_CXX_FLAGS="$extra_flags" -DCMAKE_EXE_LINKER_FLAGS="$extra_flags" >/dev/null
cmake --build "$work/build" >/dev/null
output="$("$work/build/consumer")"
echo "$output"
grep -q "consumer ok: 42 7" <<<"$output"

# The installed programs find libsunray in the prefix (RPATH), and a driver
# runs on an embedded cluster whose workers load its code search path.
"$work/prefix/bin/sunray-worker" --help >/dev/null 2>&1 || test $? -ne 127
output="$(SUNRAY_TEMP_DIR="$work/sessions" timeout 120 "$work/build/cluster_consumer" \
  "$work/build/libconsumer_remote.so")"
echo "$output"
grep -q "cluster consumer ok: 9 elsewhere" <<<"$output"
