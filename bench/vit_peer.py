"""PyTorch eager peer for the ViT benchmark: the timm-semantics reference (scripts/golden/vit_ref.py)
as nn.Module-free eager code on Debian's torch 1.13, same weights, same threads.
Usage: vit_peer.py MODEL WEIGHTS.safetensors CONFIG_JSON [batch] [iters]"""
import json
import os
import struct
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "golden"))
import vit_ref  # noqa: E402


def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    h = json.loads(raw[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(raw[8 + n + a:8 + n + b], dtype=np.float32).reshape(v["shape"]).copy())
    return out


def main(model, weights, cfg_json, batch=32, iters=3):
    torch.set_num_threads(os.cpu_count())
    cfg = json.loads(cfg_json)
    p = load(weights)
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        out = vit_ref.pool(cfg, vit_ref.forward_tokens(cfg, p, x)[0])
        rates = []
        for _ in range(iters):
            t0 = time.perf_counter()
            out = vit_ref.pool(cfg, vit_ref.forward_tokens(cfg, p, x)[0])
            rates.append(batch / (time.perf_counter() - t0))
    rates.sort()
    print(json.dumps({"impl": "pytorch-eager", "model": model, "batch": batch, "threads": torch.get_num_threads(),
                      "images_per_s": rates[len(rates) // 2], "checksum": float(out.sum())}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], *(int(a) for a in sys.argv[4:6]))
