#!/usr/bin/env bash
# Quick start, tests: install (with the Python references), build, run the fast test suite.
# `scripts/test.sh slow` runs the slow label instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh --test
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)"
ctest --test-dir build -L "${1:-fast}" --output-on-failure -j1
