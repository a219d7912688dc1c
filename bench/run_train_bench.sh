#!/usr/bin/env bash
# Training-step throughput: medfm's objectives (medfm_bench_train) against the same objectives in
# PyTorch eager (train_peer.py, Debian's torch 1.13) in the same run, alternating, on fixed random
# views; then two-process scaling of `medfm pretrain` (c10d Gloo on loopback) drawn as a figure.
# Usage: [REPS=3] [ROWS=tiny] [TUNED=0] run_train_bench.sh [BUILD_DIR=build] [OUT=/tmp/medfm_train_bench]
# (ROWS greps the table of configurations below: "tiny" for the ViT-Ti rows only; TUNED=0 leaves out
# the eager run with medfm's allocator setting. MEDFM_BENCH_PHASES=1 adds forward and backward times.)
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(readlink -f "${1:-$HERE/../build}")
OUT=${2:-/tmp/medfm_train_bench}
PY=/usr/bin/python3
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
mkdir -p "$OUT"
: > "$OUT/steps.jsonl"
cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$5+$6+$7+$8+$9, $9}' /proc/stat; }  # total, steal (ticks)
read -r tot0 steal0 < <(cpu_ticks)
TUNABLES=glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483647
# method model img local n_local batch dino_out (ROWS=tiny: the ViT-Ti rows only)
while read -r m model img local nl batch out; do
  for rep in $(seq "${REPS:-3}"); do
    DINO_OUT=$out "$B/bench/medfm_bench_train" "$m" "$model" "$img" "$local" "$nl" "$batch" 5 >> "$OUT/steps.jsonl"
    DINO_OUT=$out $PY "$HERE/train_peer.py" "$m" "$model" "$img" "$local" "$nl" "$batch" 5 >> "$OUT/steps.jsonl"
    # The eager peer given the allocator setting medfm makes for itself (runtime.h retain_freed_memory),
    # through glibc's environment tunables: what a PyTorch user could set by hand.
    [ "${TUNED:-1}" = 0 ] || GLIBC_TUNABLES=$TUNABLES PEER_LABEL=pytorch-eager-tuned DINO_OUT=$out $PY "$HERE/train_peer.py" "$m" "$model" "$img" "$local" "$nl" "$batch" 5 >> "$OUT/steps.jsonl"
  done
done < <(grep "${ROWS:-}" <<'EOF2'
dino vit_tiny_patch16_224 96 48 6 32 4096
mae vit_tiny_patch16_224 96 96 0 64 0
simclr vit_tiny_patch16_224 96 96 0 64 0
dino vit_small_patch16_224 224 96 8 16 65536
mae vit_small_patch16_224 224 224 0 32 0
simclr vit_small_patch16_224 224 224 0 16 0
EOF2
)
read -r tot1 steal1 < <(cpu_ticks)
echo "$(echo "($steal1 - $steal0) / ($tot1 - $tot0)" | bc -l)" > "$OUT/steal.txt"
# Two-process scaling of the whole pipeline (views made on loader threads, DINO tiny, 16 steps).
: > "$OUT/scaling.jsonl"
for n in 1 2; do
  rm -rf "$OUT/scale_$n"
  args=(pretrain --config "$HERE/../configs/pretrain/dino_tiny.toml" --images "$D/images" --max-steps 16
        --set train.warmup_steps=2 --set dino.teacher_temp_warmup_steps=4 --set dino.freeze_last_layer_steps=2
        --set train.checkpoint_every=0 --out "$OUT/scale_$n" --log-level error)
  if [ "$n" = 1 ]; then "$B/medfm" "${args[@]}" > /dev/null 2>&1; else "$B/medfm" launch -n "$n" -- medfm "${args[@]}" > /dev/null 2>&1; fi
  $PY -c "import json,sys; r=json.load(open('$OUT/scale_$n/run.json')); print(json.dumps({'processes': $n, 'images_per_s': r['images_per_s']}))" >> "$OUT/scaling.jsonl"
done
$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
rows = [json.loads(l) for l in open(out + "/steps.jsonl")]
keys = []
for r in rows:
    k = (r["method"], r["model"], r["img"], r["batch"], r["n_local"])
    if k not in keys:
        keys.append(k)
print("| method | model | img | local crops | batch | medfm img/s | eager img/s | ratio | median of paired ratios | eager, tuned malloc, img/s | ratio | medfm img/CPU-s | eager img/CPU-s | ratio (CPU time) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for k in keys:
    def med(field, impl):  # the median over repetitions
        v = sorted(r[field] for r in rows if (r["method"], r["model"], r["img"], r["batch"], r["n_local"]) == k and r["impl"] == impl)
        return v[len(v) // 2] if v else float("nan")
    mm, pp, pt = med("images_per_s", "medfm"), med("images_per_s", "pytorch-eager"), med("images_per_s", "pytorch-eager-tuned")
    mc, pc = med("images_per_cpu_s", "medfm"), med("images_per_cpu_s", "pytorch-eager")
    # Each repetition runs medfm then eager back to back: the ratio within a pair cancels most of the
    # host's slow drift in speed, which on a shared VM can exceed the difference being measured.
    mine = [r for r in rows if (r["method"], r["model"], r["img"], r["batch"], r["n_local"]) == k]
    pairs = [a["images_per_s"] / b["images_per_s"] for a, b in zip(mine, mine[1:]) if a["impl"] == "medfm" and b["impl"] == "pytorch-eager"]
    pr = sorted(pairs)[len(pairs) // 2] if pairs else float("nan")
    loc = f"{k[4]}" if k[4] else "-"
    print(f"| {k[0]} | {k[1]} | {k[2]} | {loc} | {k[3]} | {mm:.1f} | {pp:.1f} | {mm / pp:.2f}x | {pr:.2f}x ({', '.join(f'{x:.2f}' for x in pairs)}) | {pt:.1f} | {mm / pt:.2f}x | {mc:.1f} | {pc:.1f} | {mc / pc:.2f}x |")
st = open(out + "/steal.txt").read().split()
print(f"\nCPU time stolen by the hypervisor during the step runs: {100 * float(st[0]):.0f}% (/proc/stat)")
sc = [json.loads(l) for l in open(out + "/scaling.jsonl")]
print()
for r in sc:
    print(f"processes {r['processes']}: {r['images_per_s']:.1f} img/s")
# The figure: images/s against processes, with the ideal line.
from PIL import Image, ImageDraw
W, H, L, Bm, T = 520, 340, 70, 50, 40
img = Image.new("RGB", (W, H), "white")
d = ImageDraw.Draw(img)
xs = [r["processes"] for r in sc]
ys = [r["images_per_s"] for r in sc]
ymax = max(ys[0] * max(xs), max(ys)) * 1.1
px = lambda x: L + (x - 0.5) / (max(xs) + 0.5 - 0.5) * (W - L - 20)
py = lambda y: H - Bm - y / ymax * (H - Bm - T)
d.rectangle([L, T, W - 20, H - Bm], outline=(40, 40, 40))
for i in range(6):
    v = ymax * i / 5
    d.line([L, py(v), W - 20, py(v)], fill=(225, 225, 225))
    d.text((8, py(v) - 6), f"{v:.0f}", fill=(40, 40, 40))
d.line([px(1), py(ys[0]), px(max(xs)), py(ys[0] * max(xs))], fill=(180, 180, 180), width=2)
d.line([(px(x), py(y)) for x, y in zip(xs, ys)], fill=(31, 119, 180), width=3)
for x, y in zip(xs, ys):
    d.ellipse([px(x) - 4, py(y) - 4, px(x) + 4, py(y) + 4], fill=(31, 119, 180))
    d.text((px(x) - 8, H - Bm + 8), str(x), fill=(40, 40, 40))
d.text((L, 12), "medfm pretrain, DINO tiny: images/s (grey: ideal)", fill=(40, 40, 40))
d.text((W // 2 - 30, H - 22), "processes", fill=(40, 40, 40))
img.save(out + "/train_scaling.png")
PYEOF
