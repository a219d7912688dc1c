"""Compares an HDF5 feature file written by medfm with expected features in a safetensors file.
Usage: compare_features.py OUT.h5 EXPECTED.safetensors KEY TOL   (exit 1 on mismatch)"""
import json
import struct
import sys

import h5py
import numpy as np


def read_st(path, key):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    h = json.loads(raw[8:8 + n])
    a, b = h[key]["data_offsets"]
    arr = np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(h[key]["shape"])
    return arr, h.get("__metadata__", {})


def main(h5, expected, key, tol):
    want, meta = read_st(expected, key)
    with h5py.File(h5, "r") as f:
        got = f["features"][()]
        ids = [s.decode() if isinstance(s, bytes) else s for s in f["ids"][()]]
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    if "ids" in meta:
        assert ids == meta["ids"].split(","), f"ids {ids} != {meta['ids']}"
    err = float(np.abs(got - want).max())
    print(f"max abs difference {err:.3g} over {got.shape} (tolerance {tol})")
    sys.exit(0 if err <= float(tol) else 1)


if __name__ == "__main__":
    main(*sys.argv[1:5])
