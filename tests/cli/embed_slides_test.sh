#!/usr/bin/env bash
# `medfm embed --slides` end to end on slides built from real tissue: features beside TRIDENT-layout
# coords, provenance, the same rows for any number of loader threads, --coords from `medfm tile`,
# a manifest line per slide, re-runs that skip complete outputs, kill -9 then re-run = an
# uninterrupted run, shards, and per-slide errors with --keep-going.
# Usage: embed_slides_test.sh MEDFM_BINARY   (data from scripts/fetch_data.sh; missing data fails)
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
S=$D/slides/tiling
# same_outputs A B: every slide file of A has B's features, coords and tiling attributes
same_outputs() {
  $PY - "$1" "$2" <<'PYEOF'
import sys, os, h5py, numpy as np
a, b = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(a) if n.endswith('.h5'))
assert names and names == sorted(n for n in os.listdir(b) if n.endswith('.h5')), (names, os.listdir(b))
for n in names:
    fa, fb = h5py.File(os.path.join(a, n)), h5py.File(os.path.join(b, n))
    assert np.array_equal(fa['features'][:], fb['features'][:]), n
    assert np.array_equal(fa['coords'][:], fb['coords'][:]), n
    ca, cb = dict(fa['coords'].attrs), dict(fb['coords'].attrs)
    assert ca.pop('savetodir') == a and cb.pop('savetodir') == b and ca == cb, (n, ca, cb)
    for k in ('model', 'preprocess', 'tiling', 'slide_fingerprint', 'n_tiles'):
        assert fa.attrs[k] == fb.attrs[k], (n, k)
PYEOF
}
export PY
export -f same_outputs
for f in t025.tif t02631.tif t05.tif; do
  [ -e "$S/$f" ] || { echo "FAIL missing test slide $S/$f (run scripts/fetch_data.sh)"; exit 1; }
done
M="--model vit_tiny_patch16_224 --threads 2 --log-level error"

check "embed two slides" bash -c "'$BIN' embed $M --slides '$S/t025.tif' '$S/t05.tif' --mpp 0.5 --tile 224 --out '$T/a' > /dev/null"
check "features beside coords, with provenance" $PY -c "
import h5py, hashlib, numpy as np
f = h5py.File('$T/a/t025.h5')
assert f['features'].dtype == np.float32 and f['features'].shape[1] == 192 and f['features'].shape[0] == f['coords'].shape[0] > 5
c = dict(f['coords'].attrs); assert c['patch_size'] == 224 and c['patch_size_level0'] == 448 and c['name'] == 't025', c
a = f.attrs
assert a['model'] == 'vit_tiny_patch16_224' and 'medfm_version' in a and 'preprocess' in a and a['n_tiles'] == str(f['coords'].shape[0])
assert a['slide'] == '$S/t025.tif' and int(a['slide_size']) > 0 and len(a['slide_fingerprint']) == 64
assert np.isfinite(f['features'][:]).all() and 'ids' not in f"
check "manifest: one line per slide with seconds per stage" $PY -c "
import json
m = [json.loads(l) for l in open('$T/a/manifest.jsonl')]
assert [x['name'] for x in m] == ['t025', 't05'] and all(x['status'] == 'ok' for x in m), m
assert set(m[0]['seconds']) == {'tissue', 'load', 'model', 'write', 'total'}"
check "a tile's features = the same tile embedded as a PNG" bash -c "$PY -c \"
import h5py, openslide
from PIL import Image
f = h5py.File('$T/a/t05.h5'); x, y = f['coords'][3]
Image.fromarray(__import__('numpy').asarray(openslide.OpenSlide('$S/t05.tif').read_region((int(x), int(y)), 0, (224, 224)).convert('RGB'))).save('$T/tile3.png')\" && '$BIN' embed $M --input '$T/tile3.png' --out '$T/tile3.h5' > /dev/null && $PY -c \"
import h5py, numpy as np
a = h5py.File('$T/a/t05.h5')['features'][3]; b = h5py.File('$T/tile3.h5')['features'][0]
assert np.abs(a - b).max() < 1e-5 * max(1, np.abs(b).max()), np.abs(a - b).max()\""
check "same rows with 1 or 4 loader threads" bash -c "'$BIN' embed $M --slides '$S/t025.tif' '$S/t05.tif' --workers 1 --batch-size 8 --out '$T/w1' > /dev/null && '$BIN' embed $M --slides '$S/t025.tif' '$S/t05.tif' --workers 4 --batch-size 8 --out '$T/w4' > /dev/null && same_outputs '$T/w1' '$T/w4'"
check "a re-run skips complete outputs" bash -c "'$BIN' embed $M --slides '$S/t025.tif' '$S/t05.tif' --out '$T/a' --json | $PY -c 'import json,sys; r=json.load(sys.stdin); assert [x[\"status\"] for x in r]==[\"skipped-complete\"]*2, r'"
check "another model redoes them" bash -c "'$BIN' embed --model vit_small_patch16_224 --threads 2 --log-level error --slides '$S/t05.tif' --out '$T/a' --json | $PY -c 'import json,sys; r=json.load(sys.stdin); assert r[0][\"status\"]==\"ok\", r'"
check "--coords embeds exactly medfm tile's tiles" bash -c "'$BIN' tile '$S/t02631.tif' --mpp 0.5 --tile 224 --min-tissue 0.6 --out '$T/tiles' --log-level error > /dev/null && '$BIN' embed $M --slides '$S/t02631.tif' --coords '$T/tiles' --out '$T/c' > /dev/null && $PY -c \"
import h5py, numpy as np
a = h5py.File('$T/tiles/t02631.h5')['coords']; b = h5py.File('$T/c/t02631.h5')['coords']
assert np.array_equal(a[:], b[:]) and b.shape[0] == h5py.File('$T/c/t02631.h5')['features'].shape[0]\""

# Stain normalisation, recorded in the output.
check "--stain-norm macenko / reinhard change the features and are recorded" bash -c "'$BIN' embed $M --slides '$S/t05.tif' --stain-norm macenko --out '$T/sm' > /dev/null && '$BIN' embed $M --slides '$S/t05.tif' --stain-norm reinhard --stain-reference '$D/images/ihc.png' --out '$T/sr' > /dev/null && $PY -c \"
import h5py, json, numpy as np
a, m, r = (h5py.File(p + '/t05.h5') for p in ('$T/w1', '$T/sm', '$T/sr'))
assert json.loads(m.attrs['stain_normalisation'])['method'] == 'macenko' and len(json.loads(m.attrs['stain_normalisation'])['stains']) == 6
assert json.loads(r.attrs['stain_normalisation'])['reference'].endswith('ihc.png') and 'stain_normalisation' not in a.attrs
assert np.abs(a['features'][:] - m['features'][:]).max() > 1e-3 and np.abs(m['features'][:] - r['features'][:]).max() > 1e-3\""
check "Reinhard without a reference -> exit 1" expect_exit 1 "needs a reference image" "$BIN" embed $M --slides "$S/t05.tif" --stain-norm reinhard --out "$T/x"

# kill -9 mid-run, re-run: the same files as an uninterrupted run.
mkdir -p "$T/many"
for i in 1 2 3 4 5 6; do ln -s "$S/t025.tif" "$T/many/s$i.tif"; done
ALL=$(ls "$T"/many/*.tif | tr '\n' ' ')
check "uninterrupted reference run" bash -c "'$BIN' embed $M --slides $ALL --tile 112 --out '$T/ref' > /dev/null"
"$BIN" embed $M --slides $ALL --tile 112 --out "$T/killed" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 1200); do [ -e "$T/killed/s1.h5" ] && break; sleep 0.1; done  # kill once a slide is done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
check "killed run left only complete files" bash -c "[ -e '$T/killed/s1.h5' ] && [ ! -e '$T/killed/s6.h5' ]"
check "re-run after kill -9 = uninterrupted run" bash -c "'$BIN' embed $M --slides $ALL --tile 112 --out '$T/killed' > /dev/null && rm -f '$T'/killed/*.tmp.* && same_outputs '$T/ref' '$T/killed'"
check "the re-run skipped what was complete" $PY -c "
import json
m = [json.loads(l) for l in open('$T/killed/manifest.jsonl')]
assert m[-6]['name'] == 's1' and m[-6]['status'] == 'skipped-complete' and m[-1]['status'] == 'ok', m"

# Shards split the cohort with no slide twice.
check "shards 0/2 and 1/2 cover the cohort once" bash -c "'$BIN' embed $M --slides $ALL --tile 112 --shard 0/2 --out '$T/sh' > /dev/null && RANK=1 WORLD_SIZE=2 '$BIN' embed $M --slides $ALL --tile 112 --out '$T/sh' > /dev/null && same_outputs '$T/ref' '$T/sh' && [ \$(wc -l < '$T/sh/manifest.jsonl') -eq 6 ]"
check "bad shard -> exit 1" expect_exit 1 "shard '2/2'" "$BIN" embed $M --slides "$S/t05.tif" --shard 2/2 --out "$T/x"

# Memory budget: the same rows within a small budget; a budget below one batch is refused.
check "--mem-budget 80: the same rows, peak RSS in the manifest" bash -c "'$BIN' embed $M --slides '$S/t025.tif' '$S/t05.tif' --workers 2 --batch-size 8 --mem-budget 80 --out '$T/mb' > /dev/null && same_outputs '$T/w1' '$T/mb' && $PY -c \"
import json; m = [json.loads(l) for l in open('$T/mb/manifest.jsonl')]
assert all(x['peak_rss_mb'] > 50 for x in m), m\""
check "--mem-budget below a batch -> exit 1" expect_exit 1 "at least" "$BIN" embed $M --slides "$S/t05.tif" --mem-budget 2 --out "$T/x"

# Bad slides: zero bytes, truncated, a level-0 tile whose JPEG data is broken.
: > "$T/empty.svs"
head -c 300000 "$S/t05.tif" > "$T/truncated.tif"
$PY - "$S/t05.tif" "$T/brokenjpeg.tif" <<'PYEOF'
import sys, shutil
from PIL import Image
shutil.copy(sys.argv[1], sys.argv[2])
im = Image.open(sys.argv[1])  # level 0: 1280 x 1200 in 256 px tiles; tile 12 lies on tissue
off, n = im.tag_v2[324][12], im.tag_v2[325][12]
with open(sys.argv[2], 'r+b') as f:
    f.seek(off); f.write(b'\x00' * min(n, 64))
PYEOF
check "broken slides: one-line errors naming each, the batch goes on with --keep-going" bash -c "'$BIN' embed $M --slides '$T/empty.svs' '$T/truncated.tif' '$T/brokenjpeg.tif' '$S/t05.tif' --keep-going --out '$T/bad' > /dev/null 2> '$T/bad.err'; $PY -c \"
import json; m = [json.loads(l) for l in open('$T/bad/manifest.jsonl')]
assert [x['status'] for x in m] == ['failed'] * 3 + ['ok'], m
for x in m[:3]:
    assert x['error'] and '\\n' not in x['error'] and x['slide'].split('/')[-1] in x['error'], x
print([x['error'] for x in m[:3]])\""
check "a bad slide stops the run, naming it" expect_exit 1 "empty.svs" "$BIN" embed $M --slides "$T/empty.svs" "$S/t05.tif" --out "$T/k"
check "--keep-going records it in the manifest and goes on" bash -c "'$BIN' embed $M --slides '$T/empty.svs' '$S/t05.tif' --keep-going --out '$T/k2' > /dev/null && $PY -c \"
import json, os; m = [json.loads(l) for l in open('$T/k2/manifest.jsonl')]
assert [x['status'] for x in m] == ['failed', 'ok'] and m[0]['error'] and os.path.exists('$T/k2/t05.h5') and not os.path.exists('$T/k2/empty.h5'), m\""
printf 'path\n%s\n%s\n' "$S/t05.tif" "$S/t025.tif" > "$T/list.csv"
check "--slide-list" bash -c "'$BIN' embed $M --slide-list '$T/list.csv' --out '$T/l' --json | $PY -c 'import json,sys; r=json.load(sys.stdin); assert [x[\"name\"] for x in r]==[\"t05\",\"t025\"], r'"

finish
