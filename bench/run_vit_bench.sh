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
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; $(date -u +%F)"
for model in vit_small_patch16_224 vit_base_patch16_224; do
  cfg=$("$BUILD/medfm" models --json | /usr/bin/python3 -c "
import json,sys
e=[m for m in json.load(sys.stdin) if m['name']=='$model'][0]; a=e['arch']
print(json.dumps(dict(img_size=a['img_size'], patch_size=a['patch_size'], embed_dim=a['embed_dim'], depth=a['depth'],
  num_heads=a['num_heads'], mlp_hidden=a['mlp_hidden'], qkv_bias=True, class_token=True, reg_tokens=a['reg_tokens'],
  no_embed_class=a['no_embed_class'], init_values=a['init_values'], swiglu=a['swiglu'], norm_eps=a['norm_eps'], pool=e['pool'])))")
  /usr/bin/python3 -c "
import sys, json, torch; sys.path.insert(0, 'scripts/golden'); import vit_ref, st
cfg = json.loads('''$cfg'''); st.save('$W/$model.safetensors', vit_ref.init_params(cfg, torch.Generator().manual_seed(0)))"
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
