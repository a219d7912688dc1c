#!/usr/bin/env bash
# Whole-slide benchmark (issue 8): medfm vs a Python peer (bench/slide_peer.py) in one run, same
# ViT-S/16 weights (random, seeded, written once as safetensors), same threads, same OpenBLAS core.
#   1. tissue + grid: `medfm tile` vs the peer's CLAM-style segmentation and patching
#   2. end-to-end embedding: `medfm embed --slides` (bf16: the whole slide, tissue included; fp32: the
#      first SUB=5000 tiles) vs the peer's DataLoader pipeline (fp32 and bf16 autocast) on those tiles
#   3. model only: medfm's ViT-S forward on pre-made batches (medfm_bench_vit, batch 32)
#   4. peak RSS: `medfm embed --slides` (ViT-Ti cut to one block) on the 20k and the 5x larger slide
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
source bench/vit_weights.sh
cfg=$(vit_ref_config "$MEDFM" "$model")
[ -f "$W/vits.safetensors" ] || write_random_vit "$cfg" "$W/vits.safetensors"
COMMON="--threads $THREADS --log-level error --mpp 0.5 --tile 224"

if [[ $STEPS == *1* ]]; then
  echo "## 1. tissue + grid on s20k.tif"
  rm -rf "$W/tiles"
  t0=$(now); "$MEDFM" tile "$S20" $COMMON --min-tissue 0.25 --out "$W/tiles" > /dev/null; t1=$(now)
  n=$($PY -c "import h5py; print(h5py.File('$W/tiles/s20k.h5')['coords'].shape[0])")
  t2=$(now); p=$($PY bench/slide_peer.py tile "$S20" "$W/peer_tiles.h5" "$($PY -c "print(224 * 0.5 / 0.2631)")"); t3=$(now)
  echo "medfm tile (whole process): $n tiles in $(echo "$t1 - $t0" | bc) s; peer: $p, whole process" \
    "(interpreter, imports) $(echo "$t3 - $t2" | bc) s"
fi

# embed_medfm OUT PRECISION [coords dir]: `medfm embed --slides` on s20k.tif; prints tiles/s (wall)
embed_medfm() {
  local out=$1 prec=$2 src=${3:+--coords $3} t0 t1
  rm -rf "$out"
  t0=$(now)
  "$MEDFM" embed --slides "$S20" $src --model $model --weights "$W/vits.safetensors" $COMMON --batch-size 32 \
    --workers 2 --precision "$prec" --out "$out" > /dev/null
  t1=$(now)
  echo "  medfm $prec manifest: $(tail -1 "$out/manifest.jsonl")" >&2
  $PY -c "import json; print(json.loads(open('$out/manifest.jsonl').readlines()[-1])['tiles'] / ($t1 - $t0))"
}
# compare A.h5 B.h5: same tiles, cosine of the features
compare() {
  $PY - "$1" "$2" <<'PYEOF'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
n = min(a['coords'].shape[0], b['coords'].shape[0])
assert np.array_equal(a['coords'][:n], b['coords'][:n]), 'different tiles'
x, y = a['features'][:n], b['features'][:n]
cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
print(f"  {sys.argv[1].split('/')[-2]} vs {sys.argv[2].split('/')[-1]}: {n} tiles, cosine mean {cos.mean():.5f}, min {cos.min():.5f}")
PYEOF
}

if [[ $STEPS == *2* ]]; then
  echo "## 2. end-to-end embedding, ViT-S/16, batch 32, 2 loader threads / 2 DataLoader workers"
  # The first SUB tiles of medfm tile's grid, for the runs that do not cover the whole slide.
  SUB=${SUB:-5000}
  rm -rf "$W/sub" && mkdir -p "$W/sub"
  $PY -c "
import h5py
a = h5py.File('$W/tiles/s20k.h5'); b = h5py.File('$W/sub/s20k.h5', 'w')
b['coords'] = a['coords'][:$SUB]
for k, v in a['coords'].attrs.items(): b['coords'].attrs[k] = v"
  if [ "$LIMIT" -gt 0 ]; then FULL="$W/sub"; else FULL=""; fi
  m_bf16=$(embed_medfm "$W/emb_bf16" bf16 $FULL)
  m_fp32=$(embed_medfm "$W/emb_fp32" fp32 "$W/sub")
  p_fp32=$($PY bench/slide_peer.py embed "$S20" "$W/sub/s20k.h5" "$W/vits.safetensors" "$cfg" "$W/peer_fp32.h5" 0 fp32)
  echo "  peer fp32: $p_fp32"
  p_bf16=$($PY bench/slide_peer.py embed "$S20" "$W/sub/s20k.h5" "$W/vits.safetensors" "$cfg" "$W/peer_bf16.h5" 0 bf16)
  echo "  peer bf16 (autocast): $p_bf16"
  compare "$W/emb_fp32/s20k.h5" "$W/peer_fp32.h5"
  compare "$W/emb_bf16/s20k.h5" "$W/peer_bf16.h5"
  compare "$W/emb_bf16/s20k.h5" "$W/emb_fp32/s20k.h5"
  rate() { echo "$1" | $PY -c "import json,sys; print(json.load(sys.stdin)['tiles_per_s'])"; }
  r() { printf %.2f "$(echo "$1 / $2" | bc -l)"; }
  pf=$(rate "$p_fp32"); pb=$(rate "$p_bf16")
  echo "| medfm bf16 (whole slide) | medfm fp32 | peer fp32 | peer bf16 | bf16/peer fp32 | fp32/peer fp32 | bf16/peer bf16 |"
  echo "| $(printf %.2f "$m_bf16") | $(printf %.2f "$m_fp32") | $(printf %.2f "$pf") | $(printf %.2f "$pb") |" \
    "$(r "$m_bf16" "$pf")x | $(r "$m_fp32" "$pf")x | $(r "$m_bf16" "$pb")x |"
  echo "M_BF16=$m_bf16; M_FP32=$m_fp32" > "$W/rates"
fi

if [[ $STEPS == *3* ]]; then
  echo "## 3. model only (medfm_bench_vit, batch 32, median of 10)"
  for prec in bf16 fp32; do
    mo=$("$BUILD/bench/medfm_bench_vit" $model "$W/vits.safetensors" 32 10 $prec)
    echo "  $mo"
    if [ -f "$W/rates" ]; then
      source "$W/rates"
      e2e=$([ $prec = bf16 ] && echo "$M_BF16" || echo "$M_FP32")
      mr=$(echo "$mo" | $PY -c "import json,sys; print(json.load(sys.stdin)['images_per_s'])")
      echo "  $prec end-to-end / model-only: $(printf %.2f "$e2e") / $(printf %.2f "$mr") = $(printf %.3f "$(echo "$e2e / $mr" | bc -l)")"
    fi
  done
fi

if [[ $STEPS == *4* ]]; then
  echo "## 4. peak RSS: ViT-Ti/16 cut to 1 block (the pipeline's memory, quickly), s20k vs s100k"
  for s in "$S20" "$S100"; do
    rm -rf "$W/rss"
    "$MEDFM" embed --slides "$s" --model vit_tiny_patch16_224 --set 'model.overrides=["depth=1"]' $COMMON \
      --batch-size 32 --workers 2 --out "$W/rss" > /dev/null
    echo "  $(basename "$s"): $(tail -1 "$W/rss/manifest.jsonl" | $PY -c "import json,sys; m=json.load(sys.stdin); print(m['tiles'], 'tiles, peak RSS', round(m['peak_rss_mb'], 1), 'MiB,', round(m['seconds']['total'], 1), 's')")"
  done
fi
