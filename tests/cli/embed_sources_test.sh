#!/usr/bin/env bash
# `medfm embed` on every kind of source: a DICOM CT series per slice (windowed), a NIfTI volume
# along another plane, a DICOM radiograph (12-bit MONOCHROME1), mixed folders, CSV and single-file
# inputs, --keep-going, and the refusals. References: scripts/golden/slice_reference.py (pydicom,
# nibabel) writes the same slice as a 16-bit PNG; embedding that PNG must give the slice's row.
# Usage: embed_sources_test.sh MEDFM_BINARY   (data from scripts/fetch_data.sh; missing data fails)
set -u
BIN=$1
source "$(dirname "$0")/lib.sh"
REF="$PY $(cd "$(dirname "$0")/../../scripts/golden" && pwd)/slice_reference.py"
D=${MEDFM_DATA:-$HOME/.cache/medfm/data}
# same_row A.h5 ROW B.h5 TOL: row ROW of A equals the only row of B (max abs diff, relative to B's scale)
same_row() {
  $PY - "$@" <<'PYEOF'
import sys, h5py, numpy as np
a, row, b, tol = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
fa, fb = np.asarray(h5py.File(a)["features"]), np.asarray(h5py.File(b)["features"])
assert fb.shape[0] == 1, fb.shape
d = np.abs(fa[row] - fb[0]).max() / np.abs(fb[0]).max()
print(f"  relative max difference {d:.2e} (tolerance {tol})")
sys.exit(0 if d < tol else 1)
PYEOF
}
export PY
export -f same_row
for f in generated/ct_head_small/IM0000.dcm generated/radiograph_dx.dcm mricron/ch2.nii.gz images/ihc.png slides/ihc_pyramid.tif; do
  [ -e "$D/$f" ] || { echo "FAIL missing test data $D/$f (run scripts/fetch_data.sh)"; exit 1; }
done
Q="--log-level error"

# CT series, per axial slice, brain window, DINOv2 ViT-S/14 (seeded random init: both runs share it).
CT=$D/generated/ct_head_small
check "CT series: one row per slice" bash -c "'$BIN' embed --model dinov2_vits14 --input '$CT' --window brain --out '$T/ct.h5' $Q >/dev/null && $PY -c \"
import h5py; f=h5py.File('$T/ct.h5'); assert f['features'].shape==(24,384), f['features'].shape
m=f['meta']; assert list(m['slice_index'].asstr())==[str(i) for i in range(24)]
assert set(m['plane'].asstr())=={'axial'} and set(m['intensity'].asstr())=={'window [0, 80] (preset:brain)'}, set(m['intensity'].asstr())
assert list(f['ids'].asstr())[3]=='ct_head_small@axial:3'\""
$REF ct "$CT" 10 80 40 "$T/ct10.png" > "$T/ct_centres.json"
check "CT series: slice centres = pydicom's positions (1e-3 mm)" $PY -c "
import h5py, json, numpy as np
got = np.array([[float(v) for v in s.split(',')] for s in h5py.File('$T/ct.h5')['meta']['slice_position_ras'].asstr()])
want = np.array(json.load(open('$T/ct_centres.json')))
assert got.shape == want.shape and np.abs(got - want).max() < 1e-3, np.abs(got - want).max()"
check "CT slice 10 == the same slice windowed by pydicom, as a 16-bit PNG" bash -c "'$BIN' embed --model dinov2_vits14 --input '$T/ct10.png' --out '$T/ct10.h5' $Q >/dev/null && same_row '$T/ct.h5' 10 '$T/ct10.h5' 1e-4"
check "CT: --slices and W/L select and window" bash -c "'$BIN' embed --model dinov2_vits14 --set 'model.overrides=depth=1' --input '$CT' --slices 2:20:6 --window 400/40 --out '$T/cts.h5' $Q >/dev/null && $PY -c \"
import h5py; m=h5py.File('$T/cts.h5')['meta']; assert list(m['slice_index'].asstr())==['2','8','14'] and set(m['intensity'].asstr())=={'window [-160, 240] (W/L)'}\""

check "CT: the model's intensity handling (preprocess.intensity) applies unless --window is given" bash -c "'$BIN' embed --model dinov2_vits14 --set 'model.overrides=depth=1' --input '$CT' --slices 0:1 --set preprocess.intensity=lung --out '$T/cti.h5' $Q >/dev/null && $PY -c \"
import h5py; f=h5py.File('$T/cti.h5'); assert list(f['meta']['intensity'].asstr())==['window [-1350, 150] (preset:lung)']; import json; assert json.loads(f.attrs['preprocess'])['intensity']=='lung'\""

# NIfTI along the sagittal plane with percentile scaling.
NII=$D/mricron/ch2.nii.gz
check "NIfTI sagittal slices" bash -c "'$BIN' embed --model dinov2_vits14 --input '$NII' --plane sagittal --slices 80:100:5 --window percentile --set embed.percentile_lo=1 --set embed.percentile_hi=99 --out '$T/nii.h5' $Q >/dev/null && $PY -c \"
import h5py; f=h5py.File('$T/nii.h5'); assert f['features'].shape==(4,384); assert list(f['meta']['slice_index'].asstr())==['80','85','90','95']\""
$REF nifti "$NII" sagittal 90 1 99 "$T/sag90.png" > "$T/nii_centres.json"
check "NIfTI slice centres = nibabel's canonical affine" $PY -c "
import h5py, json, numpy as np
got = np.array([[float(v) for v in s.split(',')] for s in h5py.File('$T/nii.h5')['meta']['slice_position_ras'].asstr()])
want = np.array(json.load(open('$T/nii_centres.json')))[[80, 85, 90, 95]]
assert np.abs(got - want).max() < 1e-3, (got, want)"
check "NIfTI slice 90 == nibabel's slice as a 16-bit PNG" bash -c "'$BIN' embed --model dinov2_vits14 --input '$T/sag90.png' --out '$T/sag90.h5' $Q >/dev/null && same_row '$T/nii.h5' 2 '$T/sag90.h5' 1e-4"

# A DICOM radiograph (DX, 12-bit, MONOCHROME1) with RAD-DINO's entry and preprocessing (518 px).
DX=$D/generated/radiograph_dx.dcm
$REF dx "$DX" "$T/dx.png" >/dev/null
check "DICOM radiograph with RAD-DINO == pydicom's display as PNG" bash -c "'$BIN' embed --model rad_dino --input '$DX' --out '$T/dx.h5' $Q >/dev/null && '$BIN' embed --model rad_dino --input '$T/dx.png' --out '$T/dxpng.h5' $Q >/dev/null && same_row '$T/dx.h5' 0 '$T/dxpng.h5' 1e-4 && $PY -c \"
import h5py; f=h5py.File('$T/dx.h5'); assert f['features'].shape==(1,768); assert 'minmax' in list(f['meta']['intensity'].asstr())[0]\""

# Mixed folder: a PNG, a DICOM file, a NIfTI volume, a DICOM series folder, a hidden file.
mkdir -p "$T/mixed"
cp "$D/images/ihc.png" "$T/mixed/a.png"; cp "$DX" "$T/mixed/b.dcm"; cp -r "$CT" "$T/mixed/c_series"
cp "$D/mricron/ch2.nii.gz" "$T/mixed/d.nii.gz"; cp "$D/images/ihc.png" "$T/mixed/.hidden.png"
check "mixed folder: images, DICOM, series, NIfTI in name order" bash -c "'$BIN' embed --model vit_tiny_patch16_224 --input '$T/mixed' --slices 0:2 --out '$T/mixed.h5' --json $Q | $PY -c \"
import json, sys, h5py; r=json.load(sys.stdin); assert r['n_inputs']==4 and r['n_samples']==6, r
ids=list(h5py.File('$T/mixed.h5')['ids'].asstr()); assert ids==['a.png','b.dcm','c_series@axial:0','c_series@axial:1','d.nii.gz@axial:0','d.nii.gz@axial:1'], ids\""

# --input forms: a single PNG is an image, not a CSV; a CSV with a BOM; a repeated column.
check "--input x.png embeds that image" bash -c "'$BIN' embed --model vit_tiny_patch16_224 --input '$D/images/ihc.png' --out '$T/one.h5' $Q >/dev/null && $PY -c \"import h5py; assert h5py.File('$T/one.h5')['features'].shape==(1,192)\""
printf '\xef\xbb\xbfpath,label\n%s,x\n' "$D/images/ihc.png" > "$T/bom.csv"
check "CSV with a UTF-8 BOM" bash -c "'$BIN' embed --model vit_tiny_patch16_224 --input '$T/bom.csv' --out '$T/bom.h5' $Q >/dev/null && $PY -c \"import h5py; assert list(h5py.File('$T/bom.h5')['meta']['label'].asstr())==['x']\""
printf 'path,label,label\n%s,x,y\n' "$D/images/ihc.png" > "$T/dup.csv"
check "CSV with a repeated column -> exit 1 naming it" expect_exit 1 "column 'label' appears twice" "$BIN" embed --input "$T/dup.csv" --out "$T/dup.h5"

# Bad inputs: stop naming the file, or skip with --keep-going and record why.
mkdir -p "$T/some_bad"; cp "$D/images/ihc.png" "$T/some_bad/a.png"; printf 'not a png' > "$T/some_bad/b.png"
check "bad input stops the run, naming it" expect_exit 1 "b.png" "$BIN" embed --model vit_tiny_patch16_224 --input "$T/some_bad" --out "$T/bad.h5"
check "no output after the error" test ! -e "$T/bad.h5"
check "--keep-going records the bad input in /skipped" bash -c "'$BIN' embed --model vit_tiny_patch16_224 --input '$T/some_bad' --keep-going --out '$T/kg.h5' $Q >/dev/null && $PY -c \"
import h5py; f=h5py.File('$T/kg.h5'); assert f['features'].shape==(1,192)
assert list(f['skipped']['path'].asstr())==['$T/some_bad/b.png'] and 'not a format' in list(f['skipped']['reason'].asstr())[0], list(f['skipped']['reason'].asstr())
assert f.attrs['n_skipped']=='1'\""
mkdir -p "$T/all_bad"; printf 'x' > "$T/all_bad/b.png"
check "--keep-going with nothing readable -> exit 1" expect_exit 1 "none of the 1 inputs" "$BIN" embed --input "$T/all_bad" --keep-going --out "$T/ab.h5"
mkdir -p "$T/empty"
check "zero inputs -> exit 1" expect_exit 1 "no image, volume or slide" "$BIN" embed --input "$T/empty" --out "$T/e.h5"
check "a slide is refused, not decoded whole" expect_exit 1 "whole-slide" "$BIN" embed --model vit_tiny_patch16_224 --input "$D/slides/ihc_pyramid.tif" --out "$T/s.h5"
check "bad plane -> exit 1" expect_exit 1 "unknown plane 'diagonal'" "$BIN" embed --input "$NII" --plane diagonal --out "$T/p.h5"
check "bad window -> exit 1" expect_exit 1 "unknown preset 'lungs'" "$BIN" embed --model vit_tiny_patch16_224 --input "$NII" --window lungs --out "$T/w.h5"
check "bad slice range -> exit 1" expect_exit 1 "not start:stop" "$BIN" embed --input "$NII" --slices 5 --out "$T/r.h5"

finish
