#!/usr/bin/env bash
# `medfm tile` end to end on slides built from real tissue (scripts/make_test_slides.py): TRIDENT's
# coords layout read back by h5py, GeoJSON contours, a thumbnail, exact um/px, per-slide errors.
# Usage: tile_test.sh MEDFM_BINARY   (data from scripts/fetch_data.sh; missing data fails)
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
S=$D/slides/tiling
for f in t025.tif t02631.tif t05.tif pen.tif nompp.tif; do
  [ -e "$S/$f" ] || { echo "FAIL missing test slide $S/$f (run scripts/fetch_data.sh)"; exit 1; }
done
Q="--log-level error"

check "tile two slides" bash -c "'$BIN' tile '$S/t025.tif' '$S/t02631.tif' --mpp 0.5 --tile 224 --min-tissue 0.25 --out '$T/o' $Q > '$T/tile.txt'"
check "coords in TRIDENT's layout (h5py)" $PY -c "
import h5py, numpy as np
for name, mpp in (('t025', 0.25), ('t02631', 0.2631)):
    f = h5py.File('$T/o/%s.h5' % name)
    c = f['coords']; a = dict(c.attrs)
    assert c.dtype == np.int64 and c.ndim == 2 and c.shape[1] == 2 and c.shape[0] > 5, (c.dtype, c.shape)
    assert a['patch_size'] == 224 and a['overlap'] == 0 and a['name'] == name, a
    assert a['level0_width'] > 2000 and a['level0_height'] > 2000
    assert abs(a['level0_mpp'] - mpp) < 1e-4 and a['target_mpp'] == 0.5
    assert a['patch_size_level0'] == round(224 * 0.5 / a['level0_mpp'])
    assert abs(a['level0_magnification'] - 10 / a['level0_mpp']) < 1e-9 and abs(a['target_magnification'] - 20) < 1e-9
    # TRIDENT's reader computes the level-0 patch size from the magnifications:
    assert abs(a['patch_size'] * a['level0_magnification'] / a['target_magnification'] - 224 * 0.5 / a['level0_mpp']) < 1e-6
    t = f['tissue'][:]
    assert t.shape == (c.shape[0],) and (t >= 0.25).all()
    assert 'medfm_version' in f.attrs and f.attrs['slide'].endswith(name + '.tif')
"
check "same physical tiles at 0.25 and 0.2631 um/px (64 px tiles: 32 um)" bash -c "'$BIN' tile '$S/t025.tif' '$S/t02631.tif' --mpp 0.5 --tile 64 --out '$T/s' $Q > /dev/null && $PY -c \"
import h5py
a = h5py.File('$T/s/t025.h5')['coords']; b = h5py.File('$T/s/t02631.h5')['coords']
ua = {(round(x * a.attrs['level0_mpp'] / 32), round(y * a.attrs['level0_mpp'] / 32)) for x, y in a[:]}
ub = {(round(x * b.attrs['level0_mpp'] / 32), round(y * b.attrs['level0_mpp'] / 32)) for x, y in b[:]}
assert len(ua) > 200 and len(ua & ub) >= 0.9 * max(len(ua), len(ub)), (len(ua), len(ub), len(ua & ub))\""
check "GeoJSON tissue contours in level-0 pixels" $PY -c "
import json
g = json.load(open('$T/o/t025.geojson'))
assert g['type'] == 'FeatureCollection' and g['features']
for f in g['features']:
    assert f['geometry']['type'] == 'Polygon' and f['properties']['classification']['name'] == 'Tissue'
    ring = f['geometry']['coordinates'][0]
    assert ring[0] == ring[-1] and all(150 <= x <= 2300 and 70 <= y <= 2220 for x, y in ring), ring[:3]"
check "thumbnail JPEG with the grid drawn" $PY -c "
from PIL import Image
im = Image.open('$T/o/t025.jpg'); assert im.format == 'JPEG' and max(im.size) == 1024, im.size"
check "summary names tiles and um/px source" grep -q "t025: .* tiles of 224 px at 0.5 um/px (level-0 0.25 um/px, tiff-resolution)" "$T/tile.txt"
check "no temporary files left" bash -c "! ls -a '$T/o' | grep -q tmp"

# Heatmaps of per-tile scores.
check "heatmap of the tissue fraction from the coords file" bash -c "'$BIN' heatmap '$S/t025.tif' --scores '$T/o/t025.h5' --out '$T/h.png' $Q > /dev/null && $PY -c \"
from PIL import Image; im = Image.open('$T/h.png'); assert im.size == (1024 + 90, 960), im.size\""
printf 'x,y,score\n0,0,5\n400,0,1\n800,0,3\n' > "$T/s.csv"
check "heatmap from a CSV: max score yellow, min purple, over glass (alpha 0.5)" bash -c "'$BIN' heatmap '$S/t025.tif' --scores '$T/s.csv' --out '$T/hc.png' $Q > /dev/null && $PY -c \"
from PIL import Image
im = Image.open('$T/hc.png').convert('RGB'); s = 1024 / 2560
hi = im.getpixel((int(50 * s), int(50 * s))); lo = im.getpixel((int(450 * s), int(50 * s))); mid = im.getpixel((int(850 * s), int(50 * s)))
near = lambda a, b: all(abs(x - y) <= 3 for x, y in zip(a, b))
assert near(hi, (254, 243, 146)) and near(lo, (161, 128, 169)), (hi, lo)
assert mid != hi and mid != lo\""
check "heatmap: a missing dataset -> exit 1" expect_exit 1 "no dataset 'attention'" "$BIN" heatmap "$S/t025.tif" --scores "$T/o/t025.h5" --dataset attention --out "$T/h2.png"
printf 'x,y,value\n0,0,1\n' > "$T/bad.csv"
check "heatmap: a CSV without the score column -> exit 1" expect_exit 1 "needs columns x, y and score" "$BIN" heatmap "$S/t025.tif" --scores "$T/bad.csv" --out "$T/h3.png"

# The quick start's demo: images, then the sample slide tiled, embedded and drawn.
check "medfm demo writes features, a thumbnail and a heatmap of the sample slide" bash -c "cd '$T' && '$BIN' demo --repeats 1 --batch-size 4 --slide-out '$T/demo' --json $Q > '$T/demo.json' && $PY -c \"
import json, h5py
from PIL import Image
r = json.load(open('$T/demo.json'))
assert r['n_images'] >= 3 and r['slide_tiles'] > 50, r
f = h5py.File(r['slide_features']); assert f['features'].shape[0] == f['coords'].shape[0] == r['slide_tiles']
assert Image.open(r['slide_heatmap']).size[0] > 1024 and Image.open('$T/demo/tiles/ihc_pyramid.jpg').format == 'JPEG'\""

# Slides without um/px, broken slides, name clashes.
check "no um/px -> exit 1 naming the slide and the override" expect_exit 1 "nompp.tif' records no um/px" "$BIN" tile "$S/nompp.tif" --out "$T/n"
check "--slide-mpp overrides" bash -c "'$BIN' tile '$S/nompp.tif' --slide-mpp 0.25 --out '$T/n' --json $Q | $PY -c 'import json,sys; r=json.load(sys.stdin)[0]; assert r[\"mpp_source\"]==\"override\" and r[\"tiles\"]>5, r'"
: > "$T/empty.svs"
head -c 30000 "$S/t025.tif" > "$T/trunc.tif"
check "a zero-byte slide stops the run, naming it" expect_exit 1 "empty.svs" "$BIN" tile "$T/empty.svs" "$S/t05.tif" --out "$T/k"
check "--keep-going records bad slides and tiles the rest" bash -c "'$BIN' tile '$T/empty.svs' '$T/trunc.tif' '$S/t05.tif' --keep-going --out '$T/k' --json $Q > '$T/k.json'; $PY -c \"
import json, os; r = json.load(open('$T/k.json'))
assert [x['name'] for x in r] == ['empty', 'trunc', 't05'] and r[0]['error'] and r[1]['error'] and not r[2]['error'], r
assert os.path.exists('$T/k/t05.h5') and not os.path.exists('$T/k/empty.h5')\""
mkdir -p "$T/a" "$T/b"; cp "$S/t05.tif" "$T/a/x.tif"; cp "$S/t05.tif" "$T/b/x.tif"
check "two slides with one output name -> exit 1" expect_exit 1 "would both write x.h5" "$BIN" tile "$T/a/x.tif" "$T/b/x.tif" --out "$T/c"
check "bad overlap -> exit 1" expect_exit 1 "overlap" "$BIN" tile "$S/t05.tif" --tile 64 --overlap 64 --out "$T/c"

finish
