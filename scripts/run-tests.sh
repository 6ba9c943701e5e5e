#!/usr/bin/env bash
# Quick start 2: installs what is missing, builds, and runs the whole test
# suite. `scripts/run-tests.sh asan` runs it under the sanitizers instead.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
bash scripts/install-deps.sh
bash scripts/build.sh "$preset"
ctest --preset "$preset"
