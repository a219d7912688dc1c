"""PyTorch peer for the large-model load benchmark (Debian torch 1.13, no safetensors package):
builds the model's parameters with random init (as timm's create_model does), reads the
safetensors file into fresh tensors as safetensors.torch.load_file does, copies them into the
parameters as load_state_dict does, then embeds with the eager timm-semantics reference.
Usage: load_peer.py WEIGHTS.safetensors CONFIG_JSON [batch] [iters]. Prints one JSON line."""
import json
import os
import resource
import struct
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "golden"))
import vit_ref  # noqa: E402


def peak_gib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def load_file(path):
    """What safetensors.torch.load_file returns: every tensor in its own new buffer."""
    out = {}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        header.pop("__metadata__", None)
        for k, v in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            a, b = v["data_offsets"]
            buf = bytearray(b - a)
            f.seek(8 + n + a)
            f.readinto(buf)
            out[k] = torch.frombuffer(buf, dtype=torch.float32).reshape(v["shape"])
    return out


def main(weights, cfg_json, batch=4, iters=2):
    torch.set_num_threads(os.cpu_count())
    cfg = json.loads(cfg_json)
    base = peak_gib()
    t0 = time.perf_counter()
    params = vit_ref.init_params(cfg, torch.Generator().manual_seed(1))
    build_s = time.perf_counter() - t0
    param_gib = sum(p.numel() for p in params.values()) * 4 / 2**30
    after_build = peak_gib()
    t0 = time.perf_counter()
    sd = load_file(weights)
    with torch.no_grad():
        for k, p in params.items():
            p.copy_(sd[k])
    del sd
    load_s = time.perf_counter() - t0
    after_load = peak_gib()
    torch.manual_seed(0)
    x = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode():
        out = vit_ref.pool(cfg, vit_ref.forward_tokens(cfg, params, x)[0])
        best = 0
        for _ in range(iters):
            t0 = time.perf_counter()
            out = vit_ref.pool(cfg, vit_ref.forward_tokens(cfg, params, x)[0])
            best = max(best, batch / (time.perf_counter() - t0))
    print(json.dumps({"impl": "pytorch", "param_gib": param_gib, "base_gib": base, "build_s": build_s,
                      "peak_after_build_gib": after_build, "load_s": load_s, "peak_after_load_gib": after_load,
                      "load_peak_over_params": (after_load - base) / param_gib, "images_per_s": best,
                      "checksum": float(out.sum())}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *[int(a) for a in sys.argv[3:]])
