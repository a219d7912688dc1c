#!/usr/bin/env bash
# Each method briefly on pathology tiles of a slide built from real tissue (skimage's ihc.png,
# scripts/make_test_slides.py) and on fundus crops (skimage's retina.jpg): does the loss fall?
# A small ViT (4 blocks, 128 wide, 8 px patches at 64 px), STEPS (80) steps of 32 images, domain presets.
# A falling loss is not enough: each objective has a value it reaches when every image gets the same
# output (DINO's term: ln K, uniform targets; SimCLR's NT-Xent: ln(2B - 1)). "learns" asks for the
# last 10 steps' mean of that term to fall and to end below that value; MAE has no such value.
# Usage: [STEPS=80] run_domains.sh MEDFM_BINARY OUT   (writes OUT/domains.jsonl and prints a table)
set -euo pipefail
BIN=$(readlink -f "$1")
OUT=$2
HERE=$(cd "$(dirname "$0")" && pwd)
CFG=$HERE/../../configs/pretrain
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
PY=/usr/bin/python3
mkdir -p "$OUT"
ARCH='["patch_size=8","depth=4","embed_dim=128","num_heads=4","mlp_hidden=512"]'
: > "$OUT/domains.jsonl"
for domain in pathology ophthalmology; do
  if [ $domain = pathology ]; then data=(--slides "$D/slides/tiling/t025.tif" --set data.slide_mpp=1.0 --set data.slide_tile=96)
  else data=(--images "$D/images/retina.jpg"); fi
  for spec in dino:2e-3 ibot:2e-3 dinov2:2e-3 mae:1.5e-3 simclr:1e-3; do
    IFS=: read -r m blr <<< "$spec"
    rm -rf "$OUT/${domain}_$m"
    "$BIN" pretrain --config "$CFG/${m}_tiny.toml" "${data[@]}" --set views.preset=$domain --set "model.overrides=$ARCH" \
      --set views.global_size=64 --set views.local_size=32 --set views.n_local=4 --set dino.out_dim=2048 \
      --set dino.momentum_teacher=0.99 --set dino.teacher_temp_warmup_steps=20 --set dino.freeze_last_layer_steps=10 \
      --set train.batch_size=32 --set train.warmup_steps=10 --set train.blr=$blr --set train.checkpoint_every=0 \
      --max-steps "${STEPS:-80}" --out "$OUT/${domain}_$m" --log-level warn > /dev/null 2> "$OUT/${domain}_$m.log"
    $PY -c "
import json, math
r = [json.loads(l) for l in open('$OUT/${domain}_$m/metrics.jsonl')]
run = json.load(open('$OUT/${domain}_$m/run.json'))
term = 'dino' if 'dino' in r[0] else 'nt_xent' if 'nt_xent' in r[0] else 'loss'
same = {'dino': math.log(2048), 'nt_xent': math.log(2 * 32 - 1)}.get(term)
first, last = (sum(x[term] for x in rows) / len(rows) for rows in (r[:10], r[-10:]))
print(json.dumps({'domain': '$domain', 'method': '$m', 'steps': len(r), 'term': term, 'first10': first, 'last10': last,
                  'same_output_value': same, 'learns': last < first and (same is None or last < same - 0.01),
                  'images_per_s': run['images_per_s'], 'data': run['data']}))" >> "$OUT/domains.jsonl"
  done
done
$PY -c "
import json
print('| domain | method | steps | term | first 10 steps | last 10 steps | value if all outputs were equal | learns | images/s |')
print('|---|---|---|---|---|---|---|---|---|')
for l in open('$OUT/domains.jsonl'):
    r = json.loads(l)
    same = '-' if r['same_output_value'] is None else f\"{r['same_output_value']:.3f}\"
    print(f\"| {r['domain']} | {r['method']} | {r['steps']} | {r['term']} | {r['first10']:.3f} | {r['last10']:.3f} | {same} | {'yes' if r['learns'] else 'no'} | {r['images_per_s']:.0f} |\")
"
