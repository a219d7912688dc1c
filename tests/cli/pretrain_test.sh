#!/usr/bin/env bash
# `medfm pretrain` / `medfm export` end to end from the shipped configs (shrunk with --set) on real
# data: fundus / histology images, a slide built from real tissue, the Colin27 MRI volume. Checks
# the run directory, that a resumed run's losses equal an uninterrupted run's (with another loader
# thread count), that the exported file embeds without --model, and the errors.
# Usage: pretrain_test.sh MEDFM_BINARY CONFIG_DIR
set -u
BIN=$1
CFG=$2
source "$(dirname "$0")/lib.sh"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
need_data "$D/images/retina.jpg" "$D/slides/tiling/t05.tif" "$D/mricron/ch2.nii.gz"
Q="--log-level error"
SMALL="--set train.batch_size=8 --set train.warmup_steps=1 --set views.global_size=64 --set views.local_size=32 --set views.n_local=2 --set dino.out_dim=256 --set dino.hidden_dim=64 --set dino.bottleneck_dim=32 --set mae.decoder_dim=64 --set mae.decoder_depth=1 --set simclr.hidden_dim=64 --set dino.teacher_temp_warmup_steps=2 --set dino.freeze_last_layer_steps=1"

losses() { $PY -c "import json,sys; print(' '.join(repr(json.loads(l)['loss']) for l in open(sys.argv[1])))" "$1"; }
export -f losses
export PY

check "dino on images: 4 steps, run directory" bash -c "'$BIN' pretrain --config '$CFG/dino_tiny.toml' $SMALL --images '$D/images' --max-steps 4 --set train.checkpoint_every=2 --out '$T/a' $Q > '$T/a.txt' && grep -q 'steps 0 -> 4 of 4' '$T/a.txt' && test -s '$T/a/loss.png' && test -s '$T/a/views.png' && test -s '$T/a/config.toml' && test -s '$T/a/run.json' && test -s '$T/a/checkpoints/step_00000004.safetensors' && test -s '$T/a/checkpoints/step_00000002.safetensors'"
check "metrics.jsonl: a finite loss, lr, wd and the method's terms per step" $PY -c "
import json, math
rows = [json.loads(l) for l in open('$T/a/metrics.jsonl')]
assert [r['step'] for r in rows] == [0, 1, 2, 3], rows
for r in rows:
    assert math.isfinite(r['loss']) and r['loss'] > 0 and 'dino' in r and 'teacher_temp' in r and r['images_per_s'] > 0
assert rows[0]['lr'] == 0 and rows[1]['lr'] > 0  # the warm-up starts at 0
"
check "stop after 2, resume with 1 loader thread: the same losses bit for bit" bash -c "'$BIN' pretrain --config '$CFG/dino_tiny.toml' $SMALL --images '$D/images' --max-steps 4 --set train.checkpoint_every=2 --set train.stop_after=2 --out '$T/b' $Q > /dev/null && '$BIN' pretrain --out '$T/b' --resume --set train.stop_after=0 --set train.workers=1 $Q > '$T/b.txt' && grep -q 'steps 2 -> 4 of 4' '$T/b.txt' && a=\$(losses '$T/a/metrics.jsonl') && b=\$(losses '$T/b/metrics.jsonl') && [ \$(echo \$a | wc -w) -eq 4 ] && [ \"\$a\" = \"\$b\" ]"
check "ibot: stop after 2 and resume (both centres, masks by step): the same losses bit for bit" bash -c "'$BIN' pretrain --config '$CFG/ibot_tiny.toml' $SMALL --images '$D/images' --max-steps 4 --out '$T/i1' $Q > /dev/null && '$BIN' pretrain --config '$CFG/ibot_tiny.toml' $SMALL --images '$D/images' --max-steps 4 --set train.checkpoint_every=2 --set train.stop_after=2 --out '$T/i2' $Q > /dev/null && '$BIN' pretrain --out '$T/i2' --resume --set train.stop_after=0 $Q > /dev/null && a=\$(losses '$T/i1/metrics.jsonl') && b=\$(losses '$T/i2/metrics.jsonl') && [ \$(echo \$a | wc -w) -eq 4 ] && [ \"\$a\" = \"\$b\" ] && grep -q '\"ibot\"' '$T/i1/metrics.jsonl' && ! grep -q '\"koleo\"' '$T/i1/metrics.jsonl'"
check "dinov2 with Sinkhorn-Knopp targets on a volume: finite dino, ibot and koleo terms; export drops the mask token" bash -c "'$BIN' pretrain --config '$CFG/dinov2_tiny.toml' $SMALL --volumes '$D/mricron/ch2.nii.gz' --set ibot.centering=sinkhorn_knopp --max-steps 3 --out '$T/v2' $Q > /dev/null && '$BIN' export '$T/v2' --out '$T/v2.safetensors' > /dev/null && $PY -c \"
import json, math, struct
rows = [json.loads(l) for l in open('$T/v2/metrics.jsonl')]
assert len(rows) == 3 and all(math.isfinite(r[k]) for r in rows for k in ('dino', 'ibot', 'koleo')), rows
raw = open('$T/v2.safetensors', 'rb').read(); h = json.loads(raw[8:8 + struct.unpack('<Q', raw[:8])[0]])
assert 'mask_token' not in h and 'mask_token' not in h['__metadata__']['medfm.overrides'], h['__metadata__']
\""
check "export, then embed with no --model: the run's architecture and size" bash -c "'$BIN' export '$T/a' --out '$T/a.safetensors' > /dev/null && '$BIN' embed --weights '$T/a.safetensors' --input '$D/images' --out '$T/a.h5' $Q > /dev/null && $PY -c \"
import h5py, json
f = h5py.File('$T/a.h5')
assert f['features'].shape == (3, 192), f['features'].shape
pre = json.loads(f.attrs['preprocess'])
assert pre['crop'] == 64, pre
\""
check "the exported file loads in plain PyTorch (timm key layout)" $PY -c "
import json, struct, torch
raw = open('$T/a.safetensors', 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
h = json.loads(raw[8:8 + n])
meta = h.pop('__metadata__')
assert meta['medfm.model'] == 'vit_tiny_patch16_224' and meta['medfm.method'] == 'dino'
assert 'blocks.1.attn.qkv.weight' in h and 'pos_embed' in h and 'cls_token' in h
assert not any(k.startswith(('head', 'student', 'teacher')) for k in h)
assert h['pos_embed']['shape'] == [1, 1 + 16, 192]
"
# MAE's normalised targets here: the tiny config's plain pixel loss moves with each batch's brightness,
# more than 12 steps of 8 patches can show falling.
check "mae on the Colin27 volume (patches in 3 planes): loss falls" bash -c "'$BIN' pretrain --config '$CFG/mae_tiny.toml' $SMALL --volumes '$D/mricron/ch2.nii.gz' --set data.volume_patch=96 --max-steps 12 --set train.blr=1.5e-3 --set mae.norm_pix_loss=true --out '$T/m' $Q > /dev/null && $PY -c \"
import json
l = [json.loads(x)['loss'] for x in open('$T/m/metrics.jsonl')]
assert len(l) == 12 and sum(l[-3:]) < sum(l[:3]), l
\""
check "simclr on tissue tiles of a slide at 1 um/px" bash -c "'$BIN' pretrain --config '$CFG/simclr_tiny.toml' $SMALL --slides '$D/slides/tiling/t05.tif' --set data.slide_mpp=1.0 --set data.slide_tile=96 --set views.preset=pathology --max-steps 3 --out '$T/s' $Q > '$T/s.txt' && grep -q 'steps 0 -> 3' '$T/s.txt' && grep -q '\"stopped_by\": \"max_steps\"' '$T/s/run.json' && grep -q 'tissue tiles' '$T/s/run.json'"
check "dino on a mixture of images and a volume, bf16 autocast" bash -c "'$BIN' pretrain --config '$CFG/dino_tiny.toml' $SMALL --images '$D/images' --volumes '$D/mricron/ch2.nii.gz' --set data.weights=[1.0,1.0] --set train.precision=bf16 --max-steps 2 --out '$T/x' $Q > /dev/null && grep -q 'weight 0.5' '$T/x/run.json'"
# Two processes on loopback (c10d Gloo), half the batch each: the losses of one process with all of it.
for m in dino dinov2 simclr mae; do
  check "$m: 2 processes x 4 images = 1 process x 8 images (losses within 1e-5)" bash -c "'$BIN' pretrain --config '$CFG/${m}_tiny.toml' $SMALL --images '$D/images' --max-steps 4 --out '$T/one_$m' $Q > /dev/null && '$BIN' launch -n 2 -- medfm pretrain --config '$CFG/${m}_tiny.toml' $SMALL --images '$D/images' --max-steps 4 --out '$T/two_$m' $Q > '$T/two_$m.txt' 2>&1 && grep -q '\"processes\": 2' '$T/two_$m/run.json' && $PY -c \"
import json, sys
a = [json.loads(l)['loss'] for l in open('$T/one_$m/metrics.jsonl')]; b = [json.loads(l)['loss'] for l in open('$T/two_$m/metrics.jsonl')]
assert len(a) == len(b) == 4, (a, b)
assert all(abs(x - y) <= 1e-5 * abs(x) for x, y in zip(a, b)), (a, b)
\""
done
check "launch: a failing process fails the launch" expect_exit 1 "" "$BIN" launch -n 2 -- medfm pretrain --config "$CFG/dino_tiny.toml" --out "$T/n" $Q
check "a batch that does not split over the processes" expect_exit 1 "must split evenly" "$BIN" launch -n 3 -- medfm pretrain --config "$CFG/dino_tiny.toml" $SMALL --images "$D/images" --out "$T/n3" $Q
for m in dino ibot dinov2 mae simclr; do
  check "$m from its shipped config on images + a slide + a volume at once" bash -c "'$BIN' pretrain --config '$CFG/${m}_tiny.toml' $SMALL --images '$D/images' --slides '$D/slides/tiling/t05.tif' --set data.slide_mpp=1.0 --set data.slide_tile=96 --volumes '$D/mricron/ch2.nii.gz' --max-steps 2 --out '$T/all_$m' $Q > /dev/null && $PY -c \"
import json, math
r = json.load(open('$T/all_$m/run.json'))
assert r['steps_done'] == 2 and math.isfinite(r['last_loss']), r
assert 'images: 3 files' in r['data'] and 'tissue tiles' in r['data'] and 'volumes: 1 volumes' in r['data'], r['data']
\""
done
check "an existing run is not overwritten without --resume" expect_exit 1 "holds a run already" "$BIN" pretrain --config "$CFG/dino_tiny.toml" $SMALL --images "$D/images" --max-steps 4 --out "$T/a" $Q
check "no data" expect_exit 1 "no data" "$BIN" pretrain --config "$CFG/dino_tiny.toml" --out "$T/n" $Q
check "unknown method" expect_exit 1 "is not dino, ibot, dinov2, mae or simclr" "$BIN" pretrain --method byol --images "$D/images" --out "$T/n" $Q
check "unknown key names itself" expect_exit 1 "train.max_stepz" "$BIN" pretrain --config "$CFG/dino_tiny.toml" --set train.max_stepz=3 --out "$T/n" $Q
check "DINO with one global crop is refused" expect_exit 1 "views.n_global" "$BIN" pretrain --config "$CFG/dino_tiny.toml" --set views.n_global=1 --images "$D/images" --out "$T/n" $Q
check "export of a folder that is no run" expect_exit 1 "not a pretrain run" "$BIN" export "$T" --out "$T/z.safetensors"
finish
