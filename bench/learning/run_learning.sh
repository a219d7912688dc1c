#!/usr/bin/env bash
# The learning table of issue 9: pre-train a small ViT (ViT-Ti family: 4 blocks, 128 wide, 4 px
# patches at 32 px) with each method on unlabelled 2D patches of the Colin27 volume (three planes,
# radiology views) for a fixed number of steps (at most 15 CPU minutes each on 2 cores: the issue's
# budget, also enforced by train.max_minutes), export, embed the
# Brodmann task's patches (brodmann_task.py) and probe (probe.py: linear and kNN) against the same
# architecture with random weights and raw pixels. One subject: feature quality, not generalisation.
# Usage: run_learning.sh MEDFM_BINARY OUT   (writes OUT/results.jsonl and OUT/table.md)
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=$HERE/../../configs/pretrain
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
PY=/usr/bin/python3
mkdir -p "$OUT"
[ -f "$OUT/task/train.csv" ] || $PY "$HERE/brodmann_task.py" "$D/mricron" "$OUT/task" 40 32
ARCH='["patch_size=4","depth=4","embed_dim=128","num_heads=4","mlp_hidden=512","img_size=32"]'
COMMON=(--volumes "$D/mricron/ch2.nii.gz" --set data.volume_patch=48 --set views.preset=radiology
        --set "model.overrides=$ARCH" --set views.global_size=32 --set views.local_size=16 --set views.n_local=4
        --set dino.out_dim=2048 --set dino.momentum_teacher=0.99 --set dino.teacher_temp_warmup_steps=100
        --set dino.freeze_last_layer_steps=50 --set train.batch_size=64 --set train.warmup_steps=40
        --set train.checkpoint_every=0 --log-level warn)
embed_probe() {  # name, then embed flags
  local name=$1; shift
  for s in train test; do
    "$BIN" embed "$@" --input "$OUT/task/$s.csv" --out "$OUT/$name.$s.h5" --log-level error > /dev/null
  done
  $PY "$HERE/probe.py" "$OUT/$name.train.h5" "$OUT/$name.test.h5"
}
: > "$OUT/results.jsonl"
echo "{\"method\": \"raw pixels\", \"probe\": $($PY "$HERE/probe.py" --pixels "$OUT/task/train.csv" "$OUT/task/test.csv")}" >> "$OUT/results.jsonl"
echo "{\"method\": \"random weights\", \"probe\": $(embed_probe random --model vit_tiny_patch16_224 --set "model.overrides=$ARCH" --set preprocess.resize=32 --set preprocess.crop=32)}" >> "$OUT/results.jsonl"
# method:steps:base lr (METHODS overrides, e.g. METHODS="dino:100:2e-3" for a quick look; EXTRA adds
# pre-training flags, e.g. EXTRA="--set ibot.koleo_weight=0.02")
for spec in ${METHODS:-dino:900:2e-3 ibot:400:2e-3 dinov2:420:2e-3 mae:1900:1.5e-3 simclr:600:1e-3}; do
  IFS=: read -r m steps blr <<< "$spec"
  rm -rf "$OUT/run_$m"
  start=$(date +%s.%N)
  "$BIN" pretrain --config "$CFG/${m}_tiny.toml" "${COMMON[@]}" --max-steps "$steps" --set train.blr="$blr" --set train.max_minutes=15 ${EXTRA:-} \
    --out "$OUT/run_$m" --json > "$OUT/run_$m.json" 2> "$OUT/run_$m.log"
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  "$BIN" export "$OUT/run_$m" --out "$OUT/$m.safetensors" > /dev/null
  probe=$(embed_probe "$m" --weights "$OUT/$m.safetensors")
  echo "{\"method\": \"$m\", \"steps\": $steps, \"seconds\": $secs, \"run\": $(cat "$OUT/run_$m.json" | tr -d '\n'), \"probe\": $probe}" >> "$OUT/results.jsonl"
done
$PY - "$OUT/results.jsonl" > "$OUT/table.md" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
base = {r["method"]: r["probe"] for r in rows if "run" not in r}
print("| method | minutes | steps | images/s | linear probe | kNN (k=20) | vs random weights (linear) |")
print("|---|---|---|---|---|---|---|")
for r in rows:
    p = r["probe"]
    if "run" in r:
        steps = r["run"].get("steps_done", r["steps"])  # fewer when train.max_minutes stopped it
        print(f"| {r['method']} | {r['seconds'] / 60:.1f} | {steps} | {r['run']['images_per_s']:.0f} | "
              f"{100 * p['linear']:.1f}% | {100 * p['knn']:.1f}% | {100 * (p['linear'] - base['random weights']['linear']):+.1f} pts |")
    else:
        print(f"| {r['method']} | - | - | - | {100 * p['linear']:.1f}% | {100 * p['knn']:.1f}% | |")
PYEOF
cat "$OUT/table.md"
