#!/usr/bin/env bash
# Quick start 1: installs what is missing, builds, and runs the example.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh default
./build/examples/hello_sunray
