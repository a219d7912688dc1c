#!/usr/bin/env bash
# Loading and embedding the largest model (ViT-g/14 with registers, 1.1B parameters): medfm vs
# PyTorch (build, copy weights in from the same fp32 safetensors file, embed) in one run: load
# seconds, peak resident memory over the fp32 parameter size, images/s.
# Usage: bench/run_load_bench.sh [BUILD_DIR=build] [MODEL=dinov2_vitg14_reg] [batch=4]
# Needs ~2x the model's size free on disk and in memory (the Python writer holds it twice).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MODEL=${2:-dinov2_vitg14_reg}
BATCH=${3:-4}
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$BUILD/medfm" --version | sed -n 's/^BLAS: OpenBLAS core //p')}
source bench/vit_weights.sh
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%F)"
cfg=$(vit_ref_config "$BUILD/medfm" "$MODEL")
write_random_vit "$cfg" "$W/w.safetensors"
sync
echo "weights: $(du -h "$W/w.safetensors" | cut -f1)"
m=$("$BUILD/bench/medfm_bench_load" "$MODEL" "$W/w.safetensors" "$BATCH")
p=$(/usr/bin/python3 bench/load_peer.py "$W/w.safetensors" "$cfg" "$BATCH")
echo "medfm:   $m"
echo "pytorch: $p"
/usr/bin/python3 -c "
import json
m, p = json.loads('''$m'''), json.loads('''$p''')
assert m['complete']
assert abs(m['checksum'] - p['checksum']) <= 1e-3 * max(1.0, abs(p['checksum'])), (m['checksum'], p['checksum'])
print('| impl | params | build s | load s | peak after load GiB | (peak - base) / fp32 params | img/s (batch $BATCH) |')
for r in (p, m):
    print(f\"| {r['impl']} | {r['param_gib']:.2f} GiB | {r['build_s']:.1f} | {r['load_s']:.1f} | {r['peak_after_load_gib']:.2f} | {r['load_peak_over_params']:.2f}x | {r['images_per_s']:.3f} |\")
print(f\"load time ratio (pytorch / medfm): {p['load_s'] / m['load_s']:.2f}x; embed ratio: {m['images_per_s'] / p['images_per_s']:.2f}x\")"
