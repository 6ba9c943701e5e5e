#!/usr/bin/env bash
# Installs what the benchmarks need besides the build's packages (today: Dask
# distributed, for bench/dask_compare.py). Idempotent. Not used by the build,
# the tests or CI.
set -euo pipefail
exec "$(dirname "$0")/install-deps.sh" python3 python3-distributed
