#!/usr/bin/env bash
# Generates every golden fixture into OUT_DIR with Debian's python3-torch (skips when the
# generators have not changed since the last run). Used as a ctest fixture.
set -euo pipefail
OUT=$1
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$OUT"
stamp=$(cat "$HERE"/*.py | sha256sum | cut -d' ' -f1)
[ -f "$OUT/.stamp" ] && [ "$(cat "$OUT/.stamp")" = "$stamp" ] && [ -f "$OUT/tv_vit_b_16.safetensors" ] && [ -f "$OUT/dino.safetensors" ] && [ -f "$OUT/probe.safetensors" ] && [ -f "$OUT/mil_abmil.safetensors" ] && [ -f "$OUT/ckpt/plain_zip.pth" ] && exit 0
bash "$HERE/../fetch_data.sh" >/dev/null
DATA=${MEDFM_DATA:-$HOME/.cache/medfm/data}
source "$DATA/paths.env"
cd "$HERE"
/usr/bin/python3 gen_vit_golden.py "$OUT"
/usr/bin/python3 gen_torch_ckpt_golden.py "$OUT"
/usr/bin/python3 gen_train_golden.py "$OUT"
/usr/bin/python3 gen_torchvision_golden.py "$OUT" "$skimage_data"
/usr/bin/python3 gen_stain_golden.py "$medfm_data/images/ihc.png" "$OUT"
/usr/bin/python3 gen_tissue_models.py "$OUT"
/usr/bin/python3 gen_bf16_golden.py "$OUT"
/usr/bin/python3 gen_dino_golden.py "$OUT"
/usr/bin/python3 gen_dino_train_golden.py "$OUT"
/usr/bin/python3 gen_simclr_golden.py "$OUT"
/usr/bin/python3 gen_mae_golden.py "$OUT"
/usr/bin/python3 gen_koleo_golden.py "$OUT"
/usr/bin/python3 gen_views_golden.py "$OUT" "$skimage_data"
/usr/bin/python3 gen_dinov2_golden.py "$OUT"
/usr/bin/python3 gen_ssl_train_golden.py "$OUT"
/usr/bin/python3 gen_probe_golden.py "$OUT" "$medfm_data/mricron"
/usr/bin/python3 gen_mil_golden.py "$OUT"
echo "$stamp" > "$OUT/.stamp"
