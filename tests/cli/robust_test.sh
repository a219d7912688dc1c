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
finish
