#!/usr/bin/env bash
# Quick start, main job: install, fetch real sample images, build, run `medfm demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/fetch_data.sh >/dev/null
cmake --preset release >/dev/null
cmake --build build -j"$(nproc)" --target medfm_cli
./build/medfm demo "$@"
