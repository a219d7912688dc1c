#!/usr/bin/env bash
# `medfm mil` end to end on real slide features: two slides built from real tissue are embedded with
# `medfm embed --slides`; a cohort of bags is cut from their tiles (each bag a TRIDENT-layout file,
# label = the slide it came from, two bags per patient). Checks the report, attention files that
# `medfm heatmap` draws over the real slide, exact reproduction, every head, and the bad inputs.
# Usage: mil_test.sh MEDFM_BINARY
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
S=$D/slides/tiling
need_data "$S/t025.tif" "$S/t05.tif"
Q="--log-level error"
ARCH='["patch_size=4","depth=2","embed_dim=64","num_heads=2","mlp_hidden=128","img_size=32"]'
"$BIN" embed --model vit_tiny_patch16_224 --set "model.overrides=$ARCH" --set preprocess.resize=32 --set preprocess.crop=32 \
  --slides "$S/t025.tif" "$S/t05.tif" --mpp 0.5 --tile 224 --out "$T/slides" $Q > /dev/null 2>&1 || { echo "FAIL embed slides"; exit 1; }

# 24 bags of 6..20 tiles drawn from one slide's tiles each; labels.csv: slide, label, patient. (The
# two slides hold the same tissue at 0.25 and 0.5 um/px: these labels test mechanics, not learning.)
$PY - "$T/slides" "$T/bags" "$T/labels.csv" <<'EOF'
import csv, os, sys
import h5py, numpy as np
src, out, labels = sys.argv[1:]
os.makedirs(out)
rng = np.random.default_rng(0)
rows = []
for b in range(24):
    name = ["t025", "t05"][b % 2]
    with h5py.File(f"{src}/{name}.h5") as f:
        x, c = f["features"][:], f["coords"]
        pick = np.sort(rng.choice(len(x), size=min(len(x), int(rng.integers(6, 21))), replace=False))
        with h5py.File(f"{out}/bag{b:02d}.h5", "w") as g:
            g["features"] = x[pick]
            g["coords"] = c[:][pick]
            for k, v in c.attrs.items():
                g["coords"].attrs[k] = v
    rows.append([f"bag{b:02d}", name, f"P{b // 2:02d}"])
with open(labels, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["slide", "label", "patient"])
    w.writerows(rows)
EOF
[ -s "$T/labels.csv" ] || { echo "FAIL cohort"; exit 1; }
MIL="--features $T/bags --labels $T/labels.csv --patient-column patient --folds 3 --epochs 8 --set mil.hidden=32 --set mil.attention_dim=16 $Q"

check "abmil, 3 folds by patient: report, predictions, plots, an attention file per slide" bash -c "'$BIN' mil $MIL --method abmil --out '$T/ab' > '$T/ab.txt' && grep -q auroc_macro '$T/ab.txt' && for f in report.json report.md predictions.csv confusion.png roc.png; do test -s '$T/ab/'\$f || exit 1; done && [ \$(ls '$T/ab/attention' | wc -l) -eq 24 ]"
check "report: 24 slides tested once, patients never split, CIs around each value" $PY -c "
import csv, json
r = json.load(open('$T/ab/report.json'))
assert r['protocol'] == 'folds' and r['n_slides'] == 24 and r['n_test'] == 24 and len(r['folds']) == 3, r
for m, v in r['metrics'].items():
    assert v['ci_low'] <= v['value'] <= v['ci_high'], (m, v)
fold_of = {}
for x in csv.DictReader(open('$T/ab/predictions.csv')):
    fold_of.setdefault(x['patient'], set()).add(x['fold'])
assert len(fold_of) == 12 and all(len(f) == 1 for f in fold_of.values()), fold_of
"
check "attention beside coords sums to 1 per slide; medfm heatmap draws it over the real slide" bash -c "$PY -c \"
import h5py, numpy as np
for b in range(24):
    f = h5py.File('$T/ab/attention/bag%02d.h5' % b)
    w, c = f['attention'][:], f['coords'][:]
    g = h5py.File('$T/bags/bag%02d.h5' % b)
    assert len(w) == len(g['features']) and (c == g['coords'][:]).all() and abs(w.sum() - 1) < 1e-5 and (w >= 0).all()
\" && '$BIN' heatmap '$S/t05.tif' --scores '$T/ab/attention/bag01.h5' --dataset attention --out '$T/att.png' $Q > /dev/null && test -s '$T/att.png'"
check "the same seed: byte-identical report.json, predictions and attention" bash -c "'$BIN' mil $MIL --method abmil --out '$T/ab2' > /dev/null && sed 's#/ab2#/ab#' '$T/ab2/report.json' | cmp - '$T/ab/report.json' && cmp '$T/ab2/predictions.csv' '$T/ab/predictions.csv' && $PY -c \"
import h5py, numpy as np
for b in range(24):
    assert (h5py.File('$T/ab/attention/bag%02d.h5' % b)['attention'][:] == h5py.File('$T/ab2/attention/bag%02d.h5' % b)['attention'][:]).all()
\""
check "mean pooling and transmil heads (transmil with a cap of 8 training tiles per bag)" bash -c "'$BIN' mil $MIL --method mean --out '$T/mean' > /dev/null && '$BIN' mil $MIL --method transmil --set mil.heads=2 --set mil.max_tiles=8 --out '$T/tm' > /dev/null && test -s '$T/mean/report.json' && test -s '$T/tm/report.json'"

# Learning: bags of 12 real MRI patches (Brodmann task, embedded by a random-weight ViT); a bag is
# positive when 6 of its patches lie in area 24 (anterior cingulate, the area these features tell
# apart best), negative when none does. Measured: AUROC 0.98 over 5 folds of 80 bags.
$PY "$(dirname "$0")/../../bench/learning/brodmann_task.py" "$D/mricron" "$T/task" 40 32 0 > /dev/null && \
  "$BIN" embed --model vit_tiny_patch16_224 --set "model.overrides=$ARCH" --set preprocess.resize=32 --set preprocess.crop=32 \
    --input "$T/task/train.csv" --out "$T/mri.h5" $Q > /dev/null 2>&1 || { echo "FAIL embed mri"; exit 1; }
$PY - "$T/mri.h5" "$T/mbags" "$T/mlabels.csv" <<'EOF2'
import csv, os, sys
import h5py, numpy as np
src, out, labels = sys.argv[1:]
os.makedirs(out)
f = h5py.File(src)
x, lab = f["features"][:], f["meta/label"][:].astype(str)
v1, rest = np.flatnonzero(lab == "24"), np.flatnonzero(lab != "24")
rng = np.random.default_rng(1)
rows = []
for b in range(80):
    pos = b % 2
    pick = np.concatenate([rng.choice(v1, 6, replace=False), rng.choice(rest, 6, replace=False)]) if pos else rng.choice(rest, 12, replace=False)
    with h5py.File(f"{out}/m{b:02d}.h5", "w") as g:
        g["features"] = x[rng.permutation(pick)]
    rows.append([f"m{b:02d}", "a24" if pos else "other"])
with open(labels, "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["slide", "label"])
    w.writerows(rows)
EOF2
check "abmil learns which bags hold anterior cingulate (AUROC >= 0.85 over 5 folds)" bash -c "'$BIN' mil --features '$T/mbags' --labels '$T/mlabels.csv' --folds 5 --epochs 30 --set mil.lr=1e-3 --method abmil --out '$T/mri' $Q > /dev/null && $PY -c \"
import json
r = json.load(open('$T/mri/report.json'))
assert r['metrics']['auroc_macro']['value'] >= 0.85, r['metrics']
\""

# Bad inputs: exit 1 naming the problem, no report.
no_report() { [ ! -e "$1" ] || { echo "  $1 exists"; return 1; }; }
cp -r "$T/bags" "$T/bad_empty" && $PY -c "
import h5py, numpy as np
with h5py.File('$T/bad_empty/bag03.h5', 'w') as g:
    g['features'] = np.zeros((0, 64), np.float32)
"
check "an empty bag is named" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 'bag03.h5.* is an empty bag' '$BIN' mil --features '$T/bad_empty' --labels '$T/labels.csv' --out '$T/e1' && no_report '$T/e1'"
cp -r "$T/bags" "$T/bad_nan" && $PY -c "
import h5py
with h5py.File('$T/bad_nan/bag05.h5', 'a') as g:
    x = g['features'][:]; x[2, 0] = float('nan'); g['features'][...] = x
"
check "NaN tile features are named" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 'bag05.h5.*NaN or Inf' '$BIN' mil --features '$T/bad_nan' --labels '$T/labels.csv' --epochs 1 --out '$T/e2' && no_report '$T/e2'"
cp -r "$T/bags" "$T/bad_dim" && $PY -c "
import h5py
with h5py.File('$T/bad_dim/bag07.h5', 'a') as g:
    x = g['features'][:, :16]; del g['features']; g['features'] = x
"
check "a bag of another dimension is named" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 'bag07.h5.* has 16-dim features' '$BIN' mil --features '$T/bad_dim' --labels '$T/labels.csv' --out '$T/e3' && no_report '$T/e3'"
cp "$T/labels.csv" "$T/ghost.csv" && echo "bag99,t05,P99" >> "$T/ghost.csv"
check "a labelled slide with no feature file is named" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 \"bag99\" '$BIN' mil --features '$T/bags' --labels '$T/ghost.csv' --out '$T/e4' && no_report '$T/e4'"
finish
