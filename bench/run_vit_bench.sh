#!/usr/bin/env bash
# ViT-S/16 and ViT-B/16 forward throughput: medfm vs PyTorch eager (Debian torch 1.13) in one run,
# same random weights (written once as safetensors), same threads, same OpenBLAS core.
# Usage: bench/run_vit_bench.sh [BUILD_DIR=build] [batch=32] [iters=3]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
BATCH=${2:-32}
ITERS=${3:-3}
# Pin the OpenBLAS core for both sides (medfm would pick it itself; Python would not).
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$BUILD/medfm" --version | sed -n 's/^BLAS: OpenBLAS core //p')}
source bench/vit_weights.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; $(date -u +%F)"
for model in vit_small_patch16_224 vit_base_patch16_224; do
  cfg=$(vit_ref_config "$BUILD/medfm" "$model")
  write_random_vit "$cfg" "$W/$model.safetensors"
  m=$("$BUILD/bench/medfm_bench_vit" "$model" "$W/$model.safetensors" "$BATCH" "$ITERS")
  p=$(/usr/bin/python3 bench/vit_peer.py "$model" "$W/$model.safetensors" "$cfg" "$BATCH" "$ITERS")
  /usr/bin/python3 -c "
import json
m, p = json.loads('''$m'''), json.loads('''$p''')
gflop = {'vit_small_patch16_224': 9.2, 'vit_base_patch16_224': 35.1}['$model']
bound = m['sgemm_gflops'] / gflop
assert abs(m['checksum'] - p['checksum']) <= 1e-3 * max(1.0, abs(p['checksum'])), (m['checksum'], p['checksum'])
print(f\"| $model | {m['batch']} | {m['threads']} | {p['images_per_s']:.2f} | {m['images_per_s']:.2f} | \"
      f\"{m['images_per_s'] / p['images_per_s']:.2f}x | {m['sgemm_gflops']:.0f} | {m['images_per_s'] / bound:.0%} | {p['images_per_s'] / bound:.0%} |\")"
done
