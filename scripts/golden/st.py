"""Minimal safetensors writer/reader for the golden generators (Debian 12 has no python3-safetensors)."""
import json
import struct

import numpy as np
import torch

_DT = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16", torch.int64: "I64",
       torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def save(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        b = t.numpy().tobytes()
        header[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
