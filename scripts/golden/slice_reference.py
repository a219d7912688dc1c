"""Independent references for `medfm embed` on DICOM and NIfTI (tests/cli/embed_sources_test.sh).

Reads with pydicom / nibabel (not medfm), windows and orients a slice the way medfm documents
(medfm/data/model_input.h: axial rows anterior->posterior, columns right->left; sagittal rows
superior->inferior, columns anterior->posterior), writes it as a 16-bit PNG and prints, as JSON,
the RAS position of every slice centre of the chosen plane.

  slice_reference.py ct SERIES_DIR K WIDTH LEVEL OUT.png     axial slice K (0 = most inferior)
  slice_reference.py nifti FILE sagittal I LO_PCT HI_PCT OUT.png
  slice_reference.py dx FILE OUT.png                         radiograph, min-max after MONOCHROME1
"""
import glob
import json
import os
import sys

import numpy as np
from PIL import Image


def save16(path, v):
    """v in [0, 1] -> 16-bit grayscale PNG."""
    Image.fromarray(np.round(np.clip(v, 0, 1) * 65535).astype(np.uint16)).save(path)


def ct(series_dir, k, width, level, out):
    import pydicom
    dss = [pydicom.dcmread(f) for f in glob.glob(os.path.join(series_dir, "*.dcm"))]
    dss.sort(key=lambda d: float(d.ImagePositionPatient[2]))
    centres = []
    for d in dss:
        ipp = np.array([float(v) for v in d.ImagePositionPatient])
        iop = np.array([float(v) for v in d.ImageOrientationPatient])
        dy, dx = (float(v) for v in d.PixelSpacing)
        c = ipp + (d.Columns - 1) / 2 * dx * iop[:3] + (d.Rows - 1) / 2 * dy * iop[3:]
        centres.append([-c[0], -c[1], c[2]])  # LPS -> RAS
    d = dss[k]
    assert [float(v) for v in d.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0], "axial series expected"
    hu = d.pixel_array.astype(np.float64) * float(d.RescaleSlope) + float(d.RescaleIntercept)
    save16(out, (hu - (level - width / 2)) / width)  # rows already anterior->posterior, columns right->left
    print(json.dumps(centres))


def nifti(path, plane, i, lo, hi, out):
    import nibabel as nib
    assert plane == "sagittal"
    img = nib.as_closest_canonical(nib.load(path))
    data = np.asarray(img.dataobj).astype(np.float64)
    a, b = np.percentile(data[np.isfinite(data)], [lo, hi])
    nx, ny, nz = data.shape[:3]
    view = data[i].T[::-1, ::-1]  # [y, z] -> rows superior->inferior, columns anterior->posterior
    save16(out, (view - a) / (b - a))
    centres = [(img.affine @ [x, (ny - 1) / 2, (nz - 1) / 2, 1])[:3].tolist() for x in range(nx)]
    print(json.dumps(centres))


def dx(path, out):
    import pydicom
    d = pydicom.dcmread(path)
    v = d.pixel_array.astype(np.float64)
    if d.PhotometricInterpretation == "MONOCHROME1":
        v = (2 ** int(d.BitsStored) - 1) - v
    save16(out, (v - v.min()) / (v.max() - v.min()))
    print(json.dumps([]))


if __name__ == "__main__":
    what, args = sys.argv[1], sys.argv[2:]
    if what == "ct":
        ct(args[0], int(args[1]), float(args[2]), float(args[3]), args[4])
    elif what == "nifti":
        nifti(args[0], args[1], int(args[2]), float(args[3]), float(args[4]), args[5])
    elif what == "dx":
        dx(args[0], args[1])
    else:
        sys.exit(__doc__)
