#!/usr/bin/env bash
# Whole-slide benchmark (issue 8): medfm vs a Python peer (bench/slide_peer.py) in one run, same
# ViT-S/16 weights (random, seeded, written once as safetensors), same threads, same OpenBLAS core.
#   1. tissue + grid: `medfm tile` vs the peer's CLAM-style segmentation and patching
#   2. end-to-end embedding: `medfm embed --slides` (tissue included) vs the peer's DataLoader
#      pipeline on medfm's coords (its tissue step not counted)
#   3. model only: medfm's ViT-S forward on pre-made batches (medfm_bench_vit, batch 32)
#   4. peak RSS: `medfm embed --slides` with ViT-Ti on the 20k and the 5x larger slide
# Slides: bench/make_bench_slides.sh (s20k.tif, s100k.tif; 0.2631 um/px, read at level 0).
# Usage: bench/run_slide_bench.sh [BUILD_DIR=build] [LIMIT: embed only the first LIMIT tiles, 0 = all]
#        [STEPS=1234]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$(cd "${1:-build}" && pwd)
LIMIT=${2:-0}
STEPS=${3:-1234}
DATA=${MEDFM_DATA:-$HOME/.cache/medfm/data}
bash bench/make_bench_slides.sh "$DATA" >/dev/null
S20=$DATA/slides/bench/s20k.tif
S100=$DATA/slides/bench/s100k.tif
PY=/usr/bin/python3
MEDFM=$BUILD/medfm
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$MEDFM" --version | sed -n 's/^BLAS: OpenBLAS core //p')}
W=${BENCH_WORK:-$(mktemp -d)}
mkdir -p "$W"
THREADS=$(nproc)
now() { date +%s.%N; }
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $THREADS cores, $(free -g | awk '/Mem:/{print $2}') GiB;" \
  "OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE; $(date -u +%F); work dir $W"

model=vit_small_patch16_224
cfg=$("$MEDFM" models --json | $PY -c "
import json,sys
e=[m for m in json.load(sys.stdin) if m['name']=='$model'][0]; a=e['arch']
print(json.dumps(dict(img_size=a['img_size'], patch_size=a['patch_size'], embed_dim=a['embed_dim'], depth=a['depth'],
  num_heads=a['num_heads'], mlp_hidden=a['mlp_hidden'], qkv_bias=True, class_token=True, reg_tokens=a['reg_tokens'],
  no_embed_class=a['no_embed_class'], init_values=a['init_values'], swiglu=a['swiglu'], norm_eps=a['norm_eps'], pool=e['pool'])))")
[ -f "$W/vits.safetensors" ] || $PY -c "
import sys, json, torch; sys.path.insert(0, 'scripts/golden'); import vit_ref, st
cfg = json.loads('''$cfg'''); st.save('$W/vits.safetensors', vit_ref.init_params(cfg, torch.Generator().manual_seed(0)))"
COMMON="--threads $THREADS --log-level error --mpp 0.5 --tile 224"

if [[ $STEPS == *1* ]]; then
  echo "## 1. tissue + grid on s20k.tif"
  rm -rf "$W/tiles"
  t0=$(now); "$MEDFM" tile "$S20" $COMMON --min-tissue 0.25 --out "$W/tiles" > /dev/null; t1=$(now)
  n=$($PY -c "import h5py; print(h5py.File('$W/tiles/s20k.h5')['coords'].shape[0])")
  p=$($PY bench/slide_peer.py tile "$S20" "$W/peer_tiles.h5" "$($PY -c "print(224 * 0.5 / 0.2631)")")
  echo "medfm tile: $n tiles in $(echo "$t1 - $t0" | bc) s; peer: $p"
fi

if [[ $STEPS == *2* ]]; then
  echo "## 2. end-to-end embedding, ViT-S/16, batch 32, 2 loader threads / DataLoader workers"
  rm -rf "$W/emb" "$W/sub"
  if [ "$LIMIT" -gt 0 ]; then  # the first LIMIT tiles of medfm tile's grid, embedded with --coords
    mkdir -p "$W/sub"
    $PY -c "
import h5py
a = h5py.File('$W/tiles/s20k.h5'); b = h5py.File('$W/sub/s20k.h5', 'w')
b['coords'] = a['coords'][:$LIMIT]
for k, v in a['coords'].attrs.items(): b['coords'].attrs[k] = v"
    SRC="--coords $W/sub"
    COORDS=$W/sub/s20k.h5
  else
    SRC=""
    COORDS=$W/tiles/s20k.h5
  fi
  t0=$(now)
  "$MEDFM" embed --slides "$S20" $SRC --model $model --weights "$W/vits.safetensors" $COMMON --batch-size 32 \
    --workers 2 --out "$W/emb" > /dev/null
  t1=$(now)
  tail -1 "$W/emb/manifest.jsonl"
  m_tiles=$($PY -c "import json; print(json.loads(open('$W/emb/manifest.jsonl').readlines()[-1])['tiles'])")
  m_rate=$(echo "$m_tiles / ($t1 - $t0)" | bc -l)
  p=$($PY bench/slide_peer.py embed "$S20" "$COORDS" "$W/vits.safetensors" "$cfg" "$W/peer_emb.h5" "$LIMIT")
  echo "peer: $p"
  $PY - "$W/emb/s20k.h5" "$W/peer_emb.h5" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
assert np.array_equal(a['coords'][:], b['coords'][:]), 'different tiles'
x, y = a['features'][:], b['features'][:]
cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
print(f"same tiles; features medfm vs peer: cosine mean {cos.mean():.5f}, min {cos.min():.5f} (resamplers differ: area vs PIL bicubic)")
PYEOF
  p_rate=$(echo "$p" | $PY -c "import json,sys; print(json.load(sys.stdin)['tiles_per_s'])")
  echo "end-to-end: medfm $m_tiles tiles in $(echo "$t1 - $t0" | bc) s = $(printf %.2f "$m_rate") tiles/s;" \
    "peer $(printf %.2f "$p_rate") tiles/s; ratio $(printf %.2f "$(echo "$m_rate / $p_rate" | bc -l)")x"
  echo "M_RATE=$m_rate" > "$W/rates"
fi

if [[ $STEPS == *3* ]]; then
  echo "## 3. model only (medfm_bench_vit, batch 32, median of 10)"
  mo=$("$BUILD/bench/medfm_bench_vit" $model "$W/vits.safetensors" 32 10)
  echo "$mo"
  if [ -f "$W/rates" ]; then
    source "$W/rates"
    r=$(echo "$mo" | $PY -c "import json,sys; print(json.load(sys.stdin)['images_per_s'])")
    echo "end-to-end / model-only: $(printf %.2f "$M_RATE") / $(printf %.2f "$r") = $(printf %.3f "$(echo "$M_RATE / $r" | bc -l)")"
  fi
fi

if [[ $STEPS == *4* ]]; then
  echo "## 4. peak RSS, ViT-Ti/16 (random init), s20k vs s100k"
  for s in "$S20" "$S100"; do
    rm -rf "$W/rss"
    t0=$(now)
    "$MEDFM" embed --slides "$s" --model vit_tiny_patch16_224 $COMMON --batch-size 32 --workers 2 --out "$W/rss" > /dev/null
    t1=$(now)
    echo "$(basename "$s"): $(tail -1 "$W/rss/manifest.jsonl" | $PY -c "import json,sys; m=json.load(sys.stdin); print(m['tiles'], 'tiles, peak RSS', round(m['peak_rss_mb'], 1), 'MiB,', round(m['seconds']['total'], 1), 's')")"
  done
fi
