"""pydicom peer for the DICOM series benchmark: what a careful pydicom user does to load a folder.
Reads every file in DIR, groups by SeriesInstanceUID, sorts each series along the slice normal
(cross(row, column) of ImageOrientationPatient), stacks [Z, Y, X] and applies RescaleSlope /
RescaleIntercept into float32. Best of N repeats (warm page cache), at most 2 threads.
Usage: series_peer.py DIR [--repeats N] [--threads 1|2]   (Debian's /usr/bin/python3)
Prints one JSON object."""
import argparse
import json
import os
import sys
import time

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
import pydicom  # noqa: E402


def read(path):
    try:
        return pydicom.dcmread(path)
    except pydicom.errors.InvalidDicomError:
        return None


def load(folder, threads):
    """{series uid: float32 [Z, Y, X]}"""
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if os.path.isfile(os.path.join(folder, f)))
    with ThreadPoolExecutor(threads) as pool:
        datasets = [d for d in pool.map(read, paths) if d is not None and "PixelData" in d]
    series = {}
    for d in datasets:
        series.setdefault(str(d.SeriesInstanceUID), []).append(d)
    out = {}
    for uid, ds in series.items():
        iop = np.array([float(v) for v in ds[0].ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        ds.sort(key=lambda d: float(np.dot([float(v) for v in d.ImagePositionPatient], normal)))
        vol = np.empty((len(ds), int(ds[0].Rows), int(ds[0].Columns)), dtype=np.float32)
        for k, d in enumerate(ds):
            slope = float(d.get("RescaleSlope", 1) or 1)
            inter = float(d.get("RescaleIntercept", 0) or 0)
            vol[k] = d.pixel_array.astype(np.float32) * np.float32(slope) + np.float32(inter)
        out[uid] = vol
    return out, len(paths)


def main():
    ap = argparse.ArgumentParser(description="pydicom series loading peer")
    ap.add_argument("dir")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, choices=(1, 2))
    a = ap.parse_args()
    load(a.dir, a.threads)  # warm-up: page cache, imports, handler selection
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        vols, n_files = load(a.dir, a.threads)
        times.append(time.perf_counter() - t0)
    best = min(times)
    n_bytes = sum(os.path.getsize(os.path.join(a.dir, f)) for f in os.listdir(a.dir))
    print(json.dumps({
        "impl": f"pydicom {pydicom.__version__}", "dir": os.path.abspath(a.dir),
        "threads": a.threads, "repeats": a.repeats, "files": n_files,
        "series": [{"uid": uid, "shape_zyx": list(v.shape), "checksum": float(v.sum(dtype=np.float64))}
                   for uid, v in sorted(vols.items())],
        "best_s": best, "median_s": sorted(times)[len(times) // 2],
        "files_per_s": n_files / best, "mb_per_s": n_bytes / best / 1e6}))


if __name__ == "__main__":
    sys.exit(main())
