#!/usr/bin/env bash
# Each method briefly on pathology tiles of a slide built from real tissue (skimage's ihc.png,
# scripts/make_test_slides.py) and on fundus patches (skimage's retina.jpg): does the loss fall?
# A small ViT (4 blocks, 128 wide, 8 px patches at 64 px), STEPS (200) steps of 32 images, domain presets.
# Data: tissue tiles of 96 px at the slide's own 0.25 um/px; 128 px patches of the 1411 px fundus
# photograph centred on its field of view (data.image_patch). The DINO family: teacher temperature
# 0.03, base lr 1e-3, K = 2,048 prototypes.
# A falling loss is not enough:
# - each objective has a value it reaches when every image gets the same output (DINO's term: ln K,
#   uniform targets; SimCLR's NT-Xent: ln(2B - 1));
# - the DINO term starts low for any network (the centre is 0 at step 0, so every image gets the
#   same sharp target) and rises while the centre catches up. It is judged from its highest 10-step
#   mean after step 10, and against a control: the same DINO run with its weights not updated
#   (blr 1e-12, min_lr 0).
# "learns": MAE: the last 10 steps' mean is below the first 10's; SimCLR: that, and below ln(2B - 1);
# DINO, iBOT, DINOv2 (their DINO term): the last 10 steps' mean is below the peak and more than 0.1
# below the control's.
# Usage: [STEPS=200] run_domains.sh MEDFM_BINARY OUT   (writes OUT/domains.jsonl and prints a table)
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$2
STEPS=${STEPS:-200}
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=$HERE/../../configs/pretrain
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
PY=/usr/bin/python3
mkdir -p "$OUT"
ARCH='["patch_size=8","depth=4","embed_dim=128","num_heads=4","mlp_hidden=512"]'
: > "$OUT/domains.jsonl"
for domain in pathology ophthalmology; do
  if [ $domain = pathology ]; then data=(--slides "$D/slides/tiling/t025.tif" --set data.slide_mpp=0.25 --set data.slide_tile=96)
  else data=(--images "$D/images/retina.jpg" --set data.image_patch=128); fi
  for spec in dino_frozen:dino:1e-12 dino:dino:1e-3 ibot:ibot:1e-3 dinov2:dinov2:1e-3 mae:mae:1.5e-3 simclr:simclr:1e-3; do
    IFS=: read -r name m blr <<< "$spec"
    run=$OUT/${domain}_$name
    rm -rf "$run"
    extra=()
    [ "$name" = dino_frozen ] && extra=(--set train.min_lr=0)
    "$BIN" pretrain --config "$CFG/${m}_tiny.toml" "${data[@]}" --set views.preset=$domain --set "model.overrides=$ARCH" \
      --set views.global_size=64 --set views.local_size=32 --set views.n_local=4 --set dino.out_dim=2048 \
      --set dino.momentum_teacher=0.99 --set dino.warmup_teacher_temp=0.03 --set dino.teacher_temp=0.03 \
      --set dino.freeze_last_layer_steps=10 --set train.batch_size=32 --set train.warmup_steps=10 --set train.blr=$blr \
      --set train.checkpoint_every=0 "${extra[@]}" --max-steps "$STEPS" --out "$run" --log-level warn > /dev/null 2> "$run.log"
    $PY - "$run" "$domain" "$name" "$OUT/${domain}_dino_frozen" >> "$OUT/domains.jsonl" <<'PYEOF'
import json, math, sys
run, domain, name, control = sys.argv[1:]
def rows(d): return [json.loads(l) for l in open(d + '/metrics.jsonl')]
r = rows(run)
info = json.load(open(run + '/run.json'))
term = 'dino' if 'dino' in r[0] else 'nt_xent' if 'nt_xent' in r[0] else 'loss'
same = {'dino': math.log(2048), 'nt_xent': math.log(2 * 32 - 1)}.get(term)
mean = lambda xs, key=term: sum(x[key] for x in xs) / len(xs)
first, last = mean(r[:10]), mean(r[-10:])
out = {'domain': domain, 'method': name, 'steps': len(r), 'term': term, 'first10': first, 'last10': last,
       'same_output_value': same, 'images_per_s': info['images_per_s'], 'data': info['data']}
if term == 'dino':
    out['peak10'] = max(mean(r[i:i + 10]) for i in range(10, len(r) - 9))
    out['control_last10'] = mean(rows(control)[-10:])
    for key in ('teacher_entropy', 'teacher_mean_entropy'):
        out[key + '_last10'] = mean(r[-10:], key)
    out['learns'] = None if name == 'dino_frozen' else last < out['peak10'] and last < out['control_last10'] - 0.1
else:
    out['learns'] = last < first and (same is None or last < same - 0.01)
print(json.dumps(out))
PYEOF
  done
done
$PY - "$OUT/domains.jsonl" <<'PYEOF'
import json, sys
print('| domain | method | steps | term | first 10 steps | peak (10 steps, after step 10) | last 10 steps | value if all outputs were equal | weights not updated: last 10 | learns | images/s |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
f = lambda v: '-' if v is None else f'{v:.3f}'
for l in open(sys.argv[1]):
    r = json.loads(l)
    learns = {None: 'control', True: 'yes', False: 'no'}[r['learns']]
    print(f"| {r['domain']} | {r['method']} | {r['steps']} | {r['term']} | {f(r['first10'])} | {f(r.get('peak10'))} | "
          f"{f(r['last10'])} | {f(r['same_output_value'])} | {f(r.get('control_last10'))} | {learns} | {r['images_per_s']:.0f} |")
PYEOF
