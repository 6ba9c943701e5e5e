#!/usr/bin/env bash
# Configures and builds Sunray with a CMake preset (default: "default").
#   scripts/build.sh            # build/
#   scripts/build.sh asan       # build-asan/, AddressSanitizer + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
