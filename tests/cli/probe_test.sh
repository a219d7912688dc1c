#!/usr/bin/env bash
# `medfm probe` end to end on real features: Brodmann-area patches of the Colin27 T1 (mricron-data)
# embedded by `medfm embed`; reports, exact reproduction, patient-grouped folds, and the bad inputs
# (unknown ids, NaN rows, other dimensions, an unseen class, patient leakage) that must stop the run
# with no report.
# Usage: probe_test.sh MEDFM_BINARY
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
need_data "$D/mricron/ch2.nii.gz" "$D/mricron/brodmann.nii.gz"
HERE=$(cd "$(dirname "$0")" && pwd)
Q="--log-level error"
ARCH='["patch_size=4","depth=2","embed_dim=64","num_heads=2","mlp_hidden=128","img_size=32"]'

$PY "$HERE/../../bench/learning/brodmann_task.py" "$D/mricron" "$T/task" 12 32 0 > /dev/null || { echo "FAIL task"; exit 1; }
for s in train test; do
  "$BIN" embed --model vit_tiny_patch16_224 --set "model.overrides=$ARCH" --set preprocess.resize=32 --set preprocess.crop=32 \
    --input "$T/task/$s.csv" --out "$T/$s.h5" $Q > /dev/null 2>&1 || { echo "FAIL embed $s"; exit 1; }
done

check "linear train/test: report.json, report.md, predictions, confusion and ROC plots" bash -c "'$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method linear --set probe.c_steps=5 --out '$T/lin' $Q > '$T/lin.txt' && grep -q 'accuracy' '$T/lin.txt' && for f in report.json report.md predictions.csv confusion.png roc.png; do test -s '$T/lin/'\$f || exit 1; done"
check "report.json: every metric with a CI around it; accuracy and the confusion matrix agree with predictions.csv" $PY -c "
import csv, json
r = json.load(open('$T/lin/report.json'))
assert r['protocol'] == 'train_test' and r['method'] == 'linear' and len(r['classes']) >= 30, r['classes']
for m in ('accuracy', 'balanced_accuracy', 'auroc_macro', 'f1_weighted'):
    v = r['metrics'][m]
    assert v['ci_low'] <= v['value'] <= v['ci_high'] and v['n_resamples'] == 1000, (m, v)
rows = list(csv.DictReader(open('$T/lin/predictions.csv')))
assert len(rows) == r['n_test']
acc = sum(x['label'] == x['predicted'] for x in rows) / len(rows)
assert abs(acc - r['metrics']['accuracy']['value']) < 1e-12, (acc, r['metrics']['accuracy'])
cm = r['confusion_matrix']
assert sum(cm[i][i] for i in range(len(cm))) == sum(x['label'] == x['predicted'] for x in rows)
assert len(r['inputs']) == 2 and all(len(i['sha256']) == 64 for i in r['inputs'])
assert r['folds'][0]['linear']['c'] in r['folds'][0]['linear']['c_grid']
"
check "the same command and seed: byte-identical report.json and predictions.csv" bash -c "'$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method linear --set probe.c_steps=5 --out '$T/lin2' $Q > /dev/null && sed 's#/lin2#/lin#' '$T/lin2/report.json' | cmp - '$T/lin/report.json' && cmp '$T/lin2/predictions.csv' '$T/lin/predictions.csv'"
check "knn beats chance; simpleshot writes few-shot rows for 1..16 shots and fewshot.png" bash -c "'$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method knn --out '$T/knn' $Q > /dev/null && '$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method simpleshot --set probe.episodes=5 --out '$T/ss' $Q > /dev/null && test -s '$T/ss/fewshot.png' && $PY -c \"
import json
k = json.load(open('$T/knn/report.json')); s = json.load(open('$T/ss/report.json'))
assert k['metrics']['accuracy']['value'] > 2.0 / len(k['classes']), k['metrics']
assert [r['shots'] for r in s['few_shot']] == [1, 2, 4, 8, 16] and all(r['episodes'] == 5 for r in s['few_shot'])
assert all(0 <= r['accuracy']['mean'] <= 1 for r in s['few_shot'])
\""

check "mlp: the epoch chosen on validation rows; beats chance; the same seed gives the same report" bash -c "'$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method mlp --set probe.mlp_epochs=30 --out '$T/mlp' $Q > /dev/null && '$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method mlp --set probe.mlp_epochs=30 --out '$T/mlp2' $Q > /dev/null && sed 's#/mlp2#/mlp#' '$T/mlp2/report.json' | cmp - '$T/mlp/report.json' && $PY -c \"
import json
r = json.load(open('$T/mlp/report.json'))
d = r['folds'][0]['mlp']
assert 0 <= d['best_epoch'] < d['epochs_run'] <= 30 and d['n_val'] > 0, d
assert r['metrics']['accuracy']['value'] > 2.0 / len(r['classes']), r['metrics']
\""

# A labels CSV for the training file: patients of 3 consecutive patches, grades for --ordinal.
$PY - "$T/train.h5" "$T/labels.csv" <<'EOF'
import csv, sys, h5py
ids = [i.decode() for i in h5py.File(sys.argv[1])['ids'][:]]
with open(sys.argv[2], 'w', newline='') as f:
    w = csv.writer(f)
    w.writerow(['id', 'area', 'grade', 'patient'])
    for n, i in enumerate(ids):
        w.writerow([i, i.split('_')[0], int(i[1:3]) % 3, f'P{n // 3:04d}'])
EOF
check "5 folds grouped by patient, labels from a CSV: every patient in one fold, fold mean +- std" bash -c "'$BIN' probe --features '$T/train.h5' --labels '$T/labels.csv' --label-column area --patient-column patient --folds 5 --method knn --out '$T/cv' $Q > /dev/null && $PY -c \"
import csv, json
r = json.load(open('$T/cv/report.json'))
assert r['protocol'] == 'folds' and len(r['folds']) == 5 and r['patients_disjoint_checked']
assert 'fold_mean' in r['metrics']['accuracy'] and r['metrics']['accuracy']['fold_std'] >= 0
folds = {}
for x in csv.DictReader(open('$T/cv/predictions.csv')):
    folds.setdefault(x['patient'], set()).add(x['fold'])
assert all(len(f) == 1 for f in folds.values()) and len(folds) == r['n_test'] // 3 + (r['n_test'] % 3 > 0)
\""
check "--ordinal adds quadratic-weighted kappa" bash -c "'$BIN' probe --features '$T/train.h5' --labels '$T/labels.csv' --label-column grade --folds 3 --method linear --set probe.c_steps=3 --set probe.ordinal=true --out '$T/ord' $Q > /dev/null && grep -q kappa_quadratic '$T/ord/report.md'"

# Bad inputs: exit 1, a message naming the problem, no report directory.
no_report() { [ ! -e "$1" ] || { echo "  $1 exists"; return 1; }; }
cp "$T/labels.csv" "$T/unknown.csv" && echo "ghost_007,a01,0,P9999" >> "$T/unknown.csv"
check "a labels id in no feature file" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 \"ghost_007\" '$BIN' probe --features '$T/train.h5' --labels '$T/unknown.csv' --label-column area --folds 5 --out '$T/e1' && no_report '$T/e1'"
$PY - "$T/train.h5" "$T/nan.h5" "$T/d32.h5" "$T/newclass.h5" <<'EOF'
import shutil, sys, h5py, numpy as np
src, nan, d32, newc = sys.argv[1:]
shutil.copy(src, nan)
with h5py.File(nan, 'a') as f:
    x = f['features'][:]; x[5, 3] = np.nan; f['features'][...] = x
shutil.copy(src, d32)
with h5py.File(d32, 'a') as f:
    x = f['features'][:, :32]; del f['features']; f['features'] = x
shutil.copy(src, newc)
with h5py.File(newc, 'a') as f:
    lab = f['meta/label'][:].astype(str); lab[0] = '99'; del f['meta/label']
    f.create_dataset('meta/label', data=lab.astype(object), dtype=h5py.string_dtype())
EOF
check "NaN features: the row is named" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 \"NaN or Inf features: 5 \" '$BIN' probe --train '$T/nan.h5' --test '$T/test.h5' --out '$T/e2' && no_report '$T/e2'"
check "feature files of different dimensions" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 \"32-dim features\" '$BIN' probe --train '$T/d32.h5' --test '$T/test.h5' --out '$T/e3' && no_report '$T/e3'"
check "a test class with no training rows" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 \"class '99' has no training samples\" '$BIN' probe --train '$T/train.h5' --test '$T/newclass.h5' --out '$T/e4' && no_report '$T/e4'"
# A split column that puts patient P0000's rows on both sides.
$PY - "$T/labels.csv" "$T/leak.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
rows[0].append('split')
for n, r in enumerate(rows[1:]):
    r.append('test' if n % 3 == 2 or n == 1 else 'train')
csv.writer(open(sys.argv[2], 'w', newline='')).writerows(rows)
EOF
check "a patient on both sides of the split column is refused, by name" bash -c "$(declare -f expect_exit no_report); T='$T'; expect_exit 1 \"patient 'P0000' is on both sides\" '$BIN' probe --features '$T/train.h5' --labels '$T/leak.csv' --label-column area --patient-column patient --split-column split --out '$T/e5' && no_report '$T/e5'"
check "--train without --test; an unknown method" bash -c "$(declare -f expect_exit); T='$T'; expect_exit 1 'needs --test' '$BIN' probe --train '$T/train.h5' --out '$T/e6' && expect_exit 1 'is not linear, knn, simpleshot or mlp' '$BIN' probe --train '$T/train.h5' --test '$T/test.h5' --method svm --out '$T/e7'"
finish
