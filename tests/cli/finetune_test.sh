#!/usr/bin/env bash
# `medfm finetune` end to end on real images (Brodmann-area MRI patches of the Colin27 T1): full
# fine-tuning and LoRA, what each writes, that LoRA leaves every frozen weight as it was and that the
# merged backbone is base + (alpha/r) B A, exact reproduction, the exported backbone embedding without
# --model, and bad options.
# Usage: finetune_test.sh MEDFM_BINARY
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
need_data "$D/mricron/ch2.nii.gz" "$D/mricron/brodmann.nii.gz"
HERE=$(cd "$(dirname "$0")" && pwd)
Q="--log-level error"
ARCH='["patch_size=4","depth=2","embed_dim=64","num_heads=2","mlp_hidden=128","img_size=32"]'
$PY "$HERE/../../bench/learning/brodmann_task.py" "$D/mricron" "$T/task" 6 32 0 > /dev/null || { echo "FAIL task"; exit 1; }
M=(--model vit_tiny_patch16_224 --set "model.overrides=$ARCH" --set preprocess.resize=32 --set preprocess.crop=32
   --val "$T/task/test.csv" --batch-size 16 --views radiology $Q)
TR="--train $T/task/train.csv --lr 1e-3"

check "full: report, classifier, backbone, per-epoch metrics; the training loss falls" bash -c "$(declare -p M); '$BIN' finetune \"\${M[@]}\" $TR --epochs 3 --out '$T/full' > '$T/full.txt' 2>/dev/null && grep -q 'finetune full' '$T/full.txt' && for f in report.json report.md predictions.csv confusion.png roc.png classifier.safetensors backbone.safetensors metrics.jsonl; do test -s '$T/full/'\$f || exit 1; done && $PY -c \"
import json
rows = [json.loads(l) for l in open('$T/full/metrics.jsonl')]
assert len(rows) == 3 and rows[-1]['train_loss'] < rows[0]['train_loss'], rows
r = json.load(open('$T/full/report.json'))
assert r['mode'] == 'full' and r['n_test'] == 246 and len(r['classes']) == 41 and r['steps'] == 48, r
\""
check "the same command: byte-identical report and weights" bash -c "$(declare -p M); '$BIN' finetune \"\${M[@]}\" $TR --epochs 3 --out '$T/full2' > /dev/null 2>&1 && sed 's#/full2#/full#' '$T/full2/report.json' | cmp - '$T/full/report.json' && cmp '$T/full2/backbone.safetensors' '$T/full/backbone.safetensors'"
check "lora: adapters alone in lora.safetensors, only LoRA layers listed as trainable" bash -c "$(declare -p M); '$BIN' finetune \"\${M[@]}\" $TR --epochs 2 --lora r=4,alpha=8 --out '$T/la' > /dev/null 2>&1 && '$BIN' finetune \"\${M[@]}\" --train '$T/task/train.csv' --lr 5e-3 --epochs 1 --lora r=4,alpha=8 --out '$T/lb' > /dev/null 2>&1 && $PY -c \"
import json
r = json.load(open('$T/la/report.json'))
assert r['mode'] == 'lora' and r['lora_layers'] == ['blocks.0.attn.qkv', 'blocks.0.attn.proj', 'blocks.1.attn.qkv', 'blocks.1.attn.proj'], r['lora_layers']
full = json.load(open('$T/full/report.json'))
assert r['trainable_parameters'] < full['trainable_parameters'] / 5, (r['trainable_parameters'], full['trainable_parameters'])
\""
check "lora: frozen weights unchanged across runs; merged = base + (alpha/r) B A with the same base" $PY -c "
import json, struct, numpy as np
def load(p):
    raw = open(p, 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n]); out = {}
    for k, v in h.items():
        if k == '__metadata__': continue
        a, b = v['data_offsets']; out[k] = np.frombuffer(raw[8 + n + a: 8 + n + b], np.float32).reshape(v['shape'])
    return out
a, b = load('$T/la/backbone.safetensors'), load('$T/lb/backbone.safetensors')
la, lb = load('$T/la/lora.safetensors'), load('$T/lb/lora.safetensors')
adapted = {k[:-len('.lora_A')] for k in la if k.endswith('.lora_A')}
assert len(adapted) == 4, adapted
for k in a:
    layer = k.rsplit('.', 1)[0]
    if layer in adapted and k.endswith('.weight'):
        base_a = a[k] - 2.0 * la[layer + '.lora_B'] @ la[layer + '.lora_A']
        base_b = b[k] - 2.0 * lb[layer + '.lora_B'] @ lb[layer + '.lora_A']
        assert np.abs(base_a - base_b).max() < 1e-5, k
        assert np.abs(a[k] - b[k]).max() > 1e-6, k  # the adapters did move
    else:
        assert (a[k] == b[k]).all(), k   # frozen: bit-identical
"
check "the fine-tuned backbone embeds with no --model" bash -c "'$BIN' embed --weights '$T/full/backbone.safetensors' --input '$T/task/test.csv' --out '$T/emb.h5' $Q > /dev/null 2>&1 && $PY -c \"
import h5py
f = h5py.File('$T/emb.h5'); assert f['features'].shape == (246, 64), f['features'].shape
\""
check "bad options: an unknown --lora item, an unknown mode; a validation class never trained" bash -c "$(declare -f expect_exit); $(declare -p M); T='$T'; expect_exit 1 \"unknown item 'rank8'\" '$BIN' finetune \"\${M[@]}\" $TR --lora rank8 --out '$T/e1' && expect_exit 1 'is not full or lora' '$BIN' finetune \"\${M[@]}\" $TR --set finetune.mode=half --out '$T/e2' && head -13 '$T/task/train.csv' > '$T/few.csv' && expect_exit 1 'has no training samples' '$BIN' finetune \"\${M[@]}\" --train '$T/few.csv' --out '$T/e3'"
finish
