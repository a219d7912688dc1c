#!/usr/bin/env bash
# Command-line robustness (issue "bad input and faults never silent, never destructive"): each
# case is a command a careless or hostile user could type; each ends in a one-line error or the
# right result, never a crash, a hang, a lost input or a leftover temporary file.
# Usage: robust_test.sh MEDFM_BINARY GOLDEN_DIR
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
G=$(cd "$2" && pwd)
need_data "$G/tv_images" "$G/tv_vit_b_16.safetensors"
M="--model vit_tiny_patch16_224 --log-level error"
mkdir -p "$T/imgs"
cp "$G"/tv_images/*.png "$T/imgs/"
IMG=$(ls "$T"/imgs/*.png | head -1)
sum() { sha256sum "$1" | cut -d' ' -f1; }
IMG_SUM=$(sum "$IMG")

# An output that is one of the inputs is refused before anything is written (by any path to it).
check "--out = an input image -> exit 1, image kept" bash -c "
  $(declare -f expect_exit); T='$T'
  expect_exit 1 'is one of the inputs' '$BIN' embed $M --input '$T/imgs' --out '$T/imgs/../imgs/$(basename "$IMG")' &&
  [ \"\$(sha256sum '$IMG' | cut -d' ' -f1)\" = '$IMG_SUM' ]"
{ echo "path"; ls "$T"/imgs/*.png; } > "$T/list.csv"
cp "$T/list.csv" "$T/list.orig"
check "--out = the input CSV -> exit 1, CSV kept" bash -c "
  $(declare -f expect_exit); T='$T'
  expect_exit 1 'is one of the inputs' '$BIN' embed $M --input '$T/list.csv' --out '$T/list.csv' && cmp -s '$T/list.csv' '$T/list.orig'"
ln -s "$G/tv_vit_b_16.safetensors" "$T/w.safetensors"
check "--out = the weights -> exit 1, weights kept" bash -c "
  $(declare -f expect_exit); T='$T'
  expect_exit 1 'is one of the inputs' '$BIN' embed --model vit_base_patch16_224 --weights '$T/w.safetensors' --input '$T/imgs' --out '$T/w.safetensors' --log-level error &&
  [ -L '$T/w.safetensors' ]"

# Output problems found before the model runs.
check "--out in a missing folder -> exit 1 naming it" expect_exit 1 "the folder '$T/nope' does not exist" "$BIN" embed $M --input "$T/imgs" --out "$T/nope/x.h5"
check "--out is a folder -> exit 1" expect_exit 1 "is a folder" "$BIN" embed $M --input "$T/imgs" --out "$T/imgs"
{ echo "path,site/ward"; for f in "$T"/imgs/*.png; do echo "$f,a"; done; } > "$T/slash.csv"
check "CSV column HDF5 cannot name -> exit 1 naming it" expect_exit 1 "CSV column 'site/ward'" "$BIN" embed $M --input "$T/slash.csv" --out "$T/slash.h5"

# CSV headers repeating a column (these crashed embed): one line naming the column.
{ echo "path,path"; ls "$T"/imgs/*.png | sed 's/.*/&,&/'; } > "$T/pp.csv"
{ echo "id,id,path"; for f in "$T"/imgs/*.png; do echo "a,b,$f"; done; } > "$T/iip.csv"
check "CSV header 'path,path' -> exit 1 naming the column" expect_exit 1 "column 'path' appears twice" "$BIN" embed $M --input "$T/pp.csv" --out "$T/pp.h5"
check "CSV header 'id,id,path' -> exit 1 naming the column" expect_exit 1 "column 'id' appears twice" "$BIN" embed $M --input "$T/iip.csv" --out "$T/iip.h5"

# Only regular files and folders are opened: FIFOs and devices would block or never end.
mkfifo "$T/fifo.png" "$T/fifo.csv" "$T/fifo.toml"
check "FIFO as --input -> exit 1, no hang" expect_exit 1 "not a regular file" timeout 30 "$BIN" embed $M --input "$T/fifo.png" --out "$T/f.h5"
check "FIFO as the CSV -> exit 1, no hang" expect_exit 1 "not a regular file" timeout 30 "$BIN" embed $M --input "$T/fifo.csv" --out "$T/f.h5"
{ echo "path"; echo "$T/fifo.png"; } > "$T/rowfifo.csv"
check "FIFO as a CSV row -> exit 1, no hang" expect_exit 1 "not a regular file" timeout 30 "$BIN" embed $M --input "$T/rowfifo.csv" --out "$T/f.h5"
check "FIFO as --config -> exit 1, no hang" expect_exit 1 "not a regular file" timeout 30 "$BIN" embed --config "$T/fifo.toml" --input "$T/imgs" --out "$T/f.h5"
check "folder as --config -> exit 1" expect_exit 1 "not a regular file" "$BIN" embed --config "$T/imgs" --input "$T/imgs" --out "$T/f.h5"
check "/dev/zero as --input -> exit 1, no hang" expect_exit 1 "not a regular file" timeout 30 "$BIN" embed $M --input /dev/zero --out "$T/f.h5"
check "/dev/zero as info input -> exit 1, no hang" expect_exit 1 "not a regular file" timeout 30 "$BIN" info /dev/zero
check "FIFO as --weights -> exit 1, no hang" expect_exit 1 "" timeout 30 "$BIN" embed --model vit_tiny_patch16_224 --weights "$T/fifo.csv" --input "$T/imgs" --out "$T/f.h5"
check "--threads 100000 -> exit 1" expect_exit 1 "more than 4x" "$BIN" embed $M --threads 100000 --input "$T/imgs" --out "$T/f.h5"
check "--mpp -1 -> exit 1" expect_exit 1 "target um/px -1" "$BIN" embed $M --mpp -1 --input "$T/imgs" --out "$T/f.h5"
check "--mpp nan -> exit 1" expect_exit 1 "target um/px nan" "$BIN" embed $M --mpp nan --input "$T/imgs" --out "$T/f.h5"
check "no output after the refusals" bash -c "! ls '$T' | grep -q 'f.h5\|slash.h5\|x.h5'"

# Weights that would give silent nonsense: NaN/Inf values, integer or bool tensors.
ST="$(cd "$(dirname "$0")/../../scripts/golden" && pwd)"
$PY -c "
import sys, torch; sys.path.insert(0, '$ST'); import st
w, _ = st.load('$G/tv_vit_b_16.safetensors')
k = 'encoder.layers.encoder_layer_3.mlp.0.weight' if 'encoder.layers.encoder_layer_3.mlp.0.weight' in w else sorted(w)[5]
nan = dict(w); nan[k] = nan[k].clone(); nan[k][0, :3] = float('nan'); st.save('$T/nan.safetensors', nan)
i8 = dict(w); i8[k] = (i8[k] * 100).to(torch.int8); st.save('$T/int8.safetensors', i8)
print(k)" > "$T/bad_key.txt"
check "NaN in the weights -> exit 1 naming the tensor" expect_exit 1 "holds 3 NaN or infinite" "$BIN" embed --model vit_base_patch16_224 --weights "$T/nan.safetensors" --input "$T/imgs" --out "$T/n.h5"
check "int8 weights -> exit 1, not cast" expect_exit 1 "not a floating-point type" "$BIN" embed --model vit_base_patch16_224 --weights "$T/int8.safetensors" --input "$T/imgs" --out "$T/n.h5"
check "preprocess std 0 -> exit 1" expect_exit 1 "std" "$BIN" embed $M --set 'preprocess.std=[0.0,0.0,0.0]' --input "$T/imgs" --out "$T/n.h5"
rm -f "$T/nan.safetensors" "$T/int8.safetensors"
printf 'these are notes, not weights\n' > "$T/notes.pt"
check "a .pt that is no checkpoint -> says so (not 'bad safetensors header')" expect_exit 1 "neither a torch.save checkpoint" "$BIN" embed --model vit_tiny_patch16_224 --weights "$T/notes.pt" --input "$T/imgs" --out "$T/n.h5"

# Signals: the temporary removed, exit 128 + signal; kill -9 leaves one, which the next run removes.
mkdir -p "$T/many"
for i in $(seq 1 300); do ln -s "$IMG" "$T/many/i$i.png"; done
# Starts a long embed (SIGINT reset to its default: a script's background jobs inherit it ignored),
# waits for its temporary, sends the signal, prints the exit status and whether temporaries remain.
signal_run() {
  bash -c "
    $PY -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
      '$BIN' embed $M --input '$T/many' --out '$T/sig.h5' --batch-size 1 --workers 1 > /dev/null 2>&1 &
    pid=\$!
    for _ in \$(seq 1 600); do ls '$T' | grep -q 'sig.h5.tmp' && break; sleep 0.05; done
    kill -$1 \$pid; wait \$pid 2> /dev/null; echo rc=\$?
    ls '$T' | grep -q 'sig.h5.tmp' && echo temp-left || echo temp-gone"
}
check "SIGTERM -> exit 143, no temporary" bash -c "out=\$($(declare -f signal_run); BIN='$BIN' M='$M' T='$T' PY='$PY' signal_run TERM); echo \"  \$out\"; [ \"\$out\" = \$'rc=143\ntemp-gone' ]"
check "SIGINT -> exit 130, no temporary" bash -c "out=\$($(declare -f signal_run); BIN='$BIN' M='$M' T='$T' PY='$PY' signal_run INT); echo \"  \$out\"; [ \"\$out\" = \$'rc=130\ntemp-gone' ]"
check "kill -9 leaves a temporary; the next run removes it and finishes" bash -c "
  out=\$($(declare -f signal_run); BIN='$BIN' M='$M' T='$T' PY='$PY' signal_run KILL); echo \"  \$out\"
  [ \"\$out\" = \$'rc=137\ntemp-left' ] && '$BIN' embed $M --input '$T/imgs' --out '$T/sig.h5' > /dev/null 2>&1 &&
  ! ls '$T' | grep -q 'sig.h5.tmp' && [ -s '$T/sig.h5' ]"
# Reader inputs whose damage must not pass silently (issue 12); data from scripts/fetch_data.sh.
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
need_data "$D/generated/nifti_nan_inf.nii.gz" "$D/pydicom/MR_small_jp2klossless.dcm" "$D/generated/slide_truncated.tif"
# stderr holds one line besides the progress bar's
one_line() { [ "$(grep -vc '^embed \[' "$T/err")" -eq 1 ] || { echo "  stderr is not one line: $(cat "$T/err")"; return 1; }; }
check "NaN/Inf volume -> exit 1 counting them, before any preprocessing" bash -c "
  $(declare -f expect_exit one_line); T='$T'
  expect_exit 1 'holds 63078 NaN or infinite' '$BIN' embed $M --input '$D/generated/nifti_nan_inf.nii.gz' --out '$T/nan.h5' && one_line"
check "NaN/Inf volume with read.nonfinite=zero -> embedded" "$BIN" embed $M --set read.nonfinite=zero --input "$D/generated/nifti_nan_inf.nii.gz" --out "$T/nan.h5"
check "info --stats counts NaN and Inf" bash -c "'$BIN' info --json --stats '$D/generated/nifti_nan_inf.nii.gz' | $PY -c 'import json,sys; s=json.load(sys.stdin)[\"stats\"]; sys.exit(not (s[\"nan_count\"] == 63076 and s[\"inf_count\"] == 2))'"
check "NIfTI descrip (free text) only with --show-phi" bash -c "
  ! '$BIN' info '$D/generated/nifti_nan_inf.nii.gz' | grep -q 'Jane' && '$BIN' info --show-phi '$D/generated/nifti_nan_inf.nii.gz' | grep -q 'Jane'"
# A JPEG 2000 codestream damaged after its header: the isolated decoder fails that file, the batch goes on.
mkdir -p "$T/dcm"
cp "$D/pydicom/MR_small.dcm" "$T/dcm/good.dcm"
$PY - "$D/pydicom/MR_small_jp2klossless.dcm" "$T/dcm/bad.dcm" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], "rb").read())
cod = b.find(b"\xff\x52", b.find(b"\xff\x4f\xff\x51"))  # the COD marker: its coding style garbled
b[cod + 4:cod + 12] = b"\xff" * 8
open(sys.argv[2], "wb").write(bytes(b))
EOF
check "damaged JPEG 2000 DICOM -> one-line error naming the decoder" bash -c "
  $(declare -f expect_exit one_line); T='$T'
  expect_exit 1 'bad.dcm' '$BIN' info '$T/dcm/bad.dcm' && one_line"
printf 'path\n%s\n%s\n' "$T/dcm/good.dcm" "$T/dcm/bad.dcm" > "$T/dcm.csv"
check "damaged JPEG 2000 in a batch with --keep-going -> skipped, the rest embedded" bash -c "
  '$BIN' embed $M --keep-going --input '$T/dcm.csv' --out '$T/dcm.h5' 2> /dev/null &&
  $PY -c 'import h5py,sys; f=h5py.File(sys.argv[1]); sys.exit(not (f[\"features\"].shape[0] == 1 and len(f[\"skipped/path\"]) == 1))' '$T/dcm.h5'"
# A full disk (here a file size limit) ends in one line naming it: no crash at exit, no temporary.
check "full disk -> exit 1 'file too large', no temporary" bash -c "
  $(declare -f expect_exit one_line); T='$T'
  trap '' XFSZ; ulimit -f 2
  expect_exit 1 'file too large' '$BIN' embed $M --input '$T/imgs' --out '$T/full.h5' && one_line &&
  ! ls '$T' | grep -q 'full.h5'"
# Non-UTF-8 file names are written so that h5py decodes every string.
cp "$IMG" "$T/imgs/$(printf 'caf\xe9.png')"
cat > "$T/utf8.py" <<'EOF'
import sys, h5py
ids = list(h5py.File(sys.argv[1])["ids"].asstr()[:])
sys.exit(0 if "caf\\xe9.png" in ids else f"ids: {ids}")
EOF
check "Latin-1 file name -> ids h5py decodes (the byte written as \\xe9)" bash -c "
  '$BIN' embed $M --input '$T/imgs' --out '$T/u.h5' 2> /dev/null && $PY '$T/utf8.py' '$T/u.h5'"
rm -f "$T/imgs/$(printf 'caf\xe9.png')"
# Memory budget: sizes checked before large allocations.
$PY -c "
import numpy as np, sys, zlib, struct
w, h = 10000, 1
raw = b''.join(b'\\x00' + bytes([128] * w * 3) for _ in range(h))
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
open(sys.argv[1], 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))" "$T/thin.png"
check "1x10000 image over runtime.max_memory -> exit 1 before resizing" bash -c "
  $(declare -f expect_exit one_line); T='$T'
  expect_exit 1 'over runtime.max_memory' '$BIN' embed $M --set runtime.max_memory=1G --input '$T/thin.png' --out '$T/thin.h5' && one_line"
# A PNG whose header promises 30000 x 30000 RGB (5 GiB to decode and hold) and holds one row.
$PY -c "
import sys, zlib, struct
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
raw = b'\\x00' + bytes(30000 * 3)
open(sys.argv[1], 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 30000, 30000, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))" "$T/huge.png"
check "PNG header 30000x30000 over runtime.max_memory -> exit 1 before decoding" bash -c "
  $(declare -f expect_exit one_line); T='$T'
  expect_exit 1 'decoding the 30000x30000 image' '$BIN' embed $M --set runtime.max_memory=1G --input '$T/huge.png' --out '$T/huge.h5' && one_line"
check "runtime.max_memory=lots -> exit 1 naming the key" expect_exit 1 "memory size 'lots'" "$BIN" embed $M --set runtime.max_memory=lots --input "$T/imgs" --out "$T/m.h5"
# Slides: a damaged slide is called damaged, and a huge region is refused before allocating.
cp "$D/generated/slide_truncated.tif" "$T/cut.svs"
check "truncated .svs -> 'OpenSlide cannot open it'" expect_exit 1 "OpenSlide cannot open it" "$BIN" tile "$T/cut.svs" --out "$T/tiles"
if [ -f "$D/slides/ihc_pyramid.tif" ]; then
  check "region 2^20 x 2^20 -> exit 1 before allocating" expect_exit 1 "at most 2^28 pixels" "$BIN" region "$D/slides/ihc_pyramid.tif" --level 0 --x 0 --y 0 --width 1048576 --height 1048576 --out "$T/r.png"
fi

finish
