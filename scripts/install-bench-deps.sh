#!/usr/bin/env bash
# Installs the Debian 12 packages that only the benchmarks need (today: Dask
# distributed, for bench/dask_compare.py). Idempotent: when everything is
# present it only checks and returns. Not used by the build, the tests or CI.
set -euo pipefail

PACKAGES=(
  python3 python3-distributed
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "Installing: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
