#!/usr/bin/env bash
# Whole-slide benchmark slides: real tissue (skimage's ihc.png, fetched by scripts/fetch_data.sh)
# replicated NxN on white (2,000 px margin), pyramidal JPEG TIFF (Q85, 256 px tiles) that declares
# 0.2631 um/px (an Aperio GT450-like scanner: no pyramid level is exactly 0.5 um/px, so every
# tile at 0.5 um/px is read at level 0 and resized). At 224 px / 0.5 um/px a tile is 425.7 level-0
# pixels:
#   bench/s20k.tif   N=119: 64,928 px square, ~20,600 tissue tiles
#   bench/s100k.tif  N=266: 140,192 px square (5x the tissue), ~102,000 tissue tiles
# Usage: bench/make_bench_slides.sh [DATA=${MEDFM_DATA:-~/.cache/medfm/data}]
set -euo pipefail
DATA=${1:-${MEDFM_DATA:-$HOME/.cache/medfm/data}}
IHC=$DATA/images/ihc.png
[ -f "$IHC" ] || { echo "missing $IHC: run scripts/fetch_data.sh" >&2; exit 1; }
mkdir -p "$DATA/slides/bench"
make_slide() {
  local out=$DATA/slides/bench/$1 n=$2 t side
  [ -f "$out" ] && { echo "$out (cached)"; return; }
  t=$(mktemp -d "$DATA/slides/bench/.build.XXXXXX")
  side=$((512 * n + 4000)) res=$(awk 'BEGIN{printf "%.6f", 1000/0.2631}')
  # Saved straight from each operation (the [options] suffix), so no uncompressed copy hits the disk.
  vips replicate "$IHC" "$t/rep.tif[tile,compression=jpeg,Q=95,bigtiff]" "$n" "$n"
  vips embed "$t/rep.tif" "$t/out.tif[tile,tile-width=256,tile-height=256,pyramid,bigtiff,compression=jpeg,Q=85,xres=$res,yres=$res]" \
    2000 2000 "$side" "$side" --extend background --background "255 255 255"
  mv "$t/out.tif" "$out" && rm -rf "$t"
  echo "$out"
}
make_slide s20k.tif 119
make_slide s100k.tif 266
