#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (preset `fuzz`, ASan+UBSan) and runs each for
# ${FUZZ_SECONDS:-60} s, seeded with the golden safetensors fixtures. Exit non-zero on a finding.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v clang++ >/dev/null || { apt-get install -y -qq clang >/dev/null; }
cmake --preset fuzz >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target safetensors_fuzz
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
cp ${1:-build/golden}/vit_*.safetensors "$corpus"/ 2>/dev/null || true
./build-fuzz/safetensors_fuzz -max_total_time="${FUZZ_SECONDS:-60}" -max_len=4096 -rss_limit_mb=4096 "$corpus"
