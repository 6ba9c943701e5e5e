#!/usr/bin/env bash
# Installs what the benchmarks need besides the build's packages:
#   - Debian's Dask distributed, for bench/dask_compare.py;
#   - Ray and its C++ API (ray, ray-cpp, pinned below) from PyPI into a
#     virtual environment in the repository's ignored .bench-venv/, for
#     bench/ray_compare.py, with what `ray microbenchmark` imports besides
#     (numpy, and grpcio from Ray's "client" extra).
# Idempotent: skips what is already there at the pinned versions. Not used by
# the build, the tests or CI.
set -euo pipefail

RAY_VERSION=2.60.0
# numpy and grpcio: the newest releases for Debian 12's Python 3.11 when
# this was written.
PINNED=("ray[client]==$RAY_VERSION" "ray-cpp==$RAY_VERSION" "numpy==2.4.6" "grpcio==1.85.3")
REPO_ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${SUNRAY_BENCH_VENV:-$REPO_ROOT/.bench-venv}"

"$REPO_ROOT/scripts/install-deps.sh" python3 python3-distributed python3-venv python3-pip

# Exits 0 when every pinned package is installed in the venv at its version.
pinned_installed() {
  [ -x "$VENV/bin/python" ] || return 1
  "$VENV/bin/python" - "${PINNED[@]}" <<'PYTHON' 2>/dev/null
import sys
from importlib import metadata
for pin in sys.argv[1:]:
    name, version = pin.split("==")
    name = name.split("[")[0]
    try:
        if metadata.version(name) != version:
            sys.exit(1)
    except metadata.PackageNotFoundError:
        sys.exit(1)
PYTHON
}

if pinned_installed; then
  exit 0
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating $VENV"
  /usr/bin/python3 -m venv "$VENV"
fi
echo "Installing ${PINNED[*]} into $VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PINNED[@]}"
pinned_installed || { echo "error: ${PINNED[*]} not all installed in $VENV" >&2; exit 1; }
