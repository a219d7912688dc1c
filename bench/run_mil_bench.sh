#!/usr/bin/env bash
# ABMIL training throughput: `medfm mil --method abmil` against the same head in PyTorch eager
# (mil_peer.py, Debian's torch 1.13) on 500 bags of 2,000 x 1,024 tile features read from their
# HDF5 files every epoch (490 train, 10 test; split column), alternating, twice each. Wall time
# covers reading, training, scoring the test bags; medfm's report is written with bootstrap off.
# Usage: run_mil_bench.sh [BUILD_DIR=build] [OUT=/tmp/medfm_mil_bench] [EPOCHS=2]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(readlink -f "${1:-$HERE/../build}")
OUT=${2:-/tmp/medfm_mil_bench}
EPOCHS=${3:-2}
PY=/usr/bin/python3
mkdir -p "$OUT"
[ -f "$OUT/labels.csv" ] || $PY "$HERE/mil_peer.py" make "$OUT" 500 2000 1024
for rep in 1 2; do
  t0=$(date +%s.%N)
  "$B/medfm" mil --features "$OUT/bags" --labels "$OUT/labels.csv" --split-column split --method abmil --epochs "$EPOCHS" \
    --threads 2 --set mil.bootstrap=0 --set mil.attention=false --out "$OUT/medfm" --log-level error --json 2>/dev/null > "$OUT/medfm.json"
  t1=$(date +%s.%N)
  $PY -c "import json; r=json.load(open('$OUT/medfm.json')); s=$t1-$t0; print(json.dumps({'tool': 'medfm', 'seconds': s, 'epochs_per_s': $EPOCHS / s, 'test_accuracy': r['metrics']['accuracy']}))"
  $PY "$HERE/mil_peer.py" train "$OUT" "$EPOCHS"
done
