#!/usr/bin/env bash
# Quick start 2: installs what is missing, builds, checks the lock
# annotations with clang's thread-safety analysis, and runs the whole test
# suite. `scripts/run-tests.sh asan` (or `tsan`) runs it under a sanitizer
# instead.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-default}"
bash scripts/install-deps.sh
bash scripts/build.sh "$preset"
if [ "$preset" = default ]; then
  # clang's -Wthread-safety over src/ (ABSL_GUARDED_BY and friends), as errors.
  bash scripts/check-thread-safety.sh build
fi
# Abseil's lock-order checks stay on for every process of the suite (off by
# default: src/common/process.h, ConfigureMutexDeadlockDetection).
export SUNRAY_MUTEX_DEADLOCK_DETECTION=1
ctest --preset "$preset"
