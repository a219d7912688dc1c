#!/usr/bin/env bash
# Frozen-feature probes at scale: `medfm probe` (linear: C from a 5-value grid on a validation fifth,
# refit; knn: k=20 cosine, DINO votes) against scikit-learn doing the same (probe_peer.py) on
# 100,000 x 1,024 training and 10,000 test features (Gaussian class clusters, 10 classes, float32 in
# HDF5), alternating, twice each. Wall time includes reading the files; medfm's bootstrap is off
# (probe.bootstrap=0) so both sides fit and predict only. Prints one JSON line per run.
# Usage: run_probe_bench.sh [BUILD_DIR=build] [OUT=/tmp/medfm_probe_bench]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(readlink -f "${1:-$HERE/../build}")
OUT=${2:-/tmp/medfm_probe_bench}
PY=/usr/bin/python3
mkdir -p "$OUT"
[ -f "$OUT/train.h5" ] || $PY "$HERE/probe_peer.py" make "$OUT" 100000 10000 1024 10
for rep in 1 2; do
  for m in linear knn; do
    t0=$(date +%s.%N)
    "$B/medfm" probe --train "$OUT/train.h5" --test "$OUT/test.h5" --method $m --set probe.c_steps=5 --set probe.bootstrap=0 \
      --out "$OUT/medfm_$m" --log-level error --json 2>/dev/null > "$OUT/medfm_$m.json"
    t1=$(date +%s.%N)
    $PY -c "import json; r=json.load(open('$OUT/medfm_$m.json')); print(json.dumps({'tool': 'medfm', 'method': '$m', 'seconds': $t1 - $t0, 'accuracy': r['metrics']['accuracy']}))"
    if [ $m = linear ]; then $PY "$HERE/probe_peer.py" linear "$OUT/train.h5" "$OUT/test.h5" 5; else $PY "$HERE/probe_peer.py" knn "$OUT/train.h5" "$OUT/test.h5"; fi
  done
done
