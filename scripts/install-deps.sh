#!/usr/bin/env bash
# Installs the Debian 12 packages Sunray needs to build and test, plus any
# packages named on the command line. Idempotent: when everything is present
# it only checks and returns.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ ccache
  libmsgpack-cxx-dev libboost-dev nlohmann-json3-dev libabsl-dev
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libcli11-dev libgtest-dev libgmock-dev libspdlog-dev
  clang clang-format python3
  "$@"
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
