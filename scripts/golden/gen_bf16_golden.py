"""bf16 autocast golden for tests/golden/vit_bf16_golden_test.cpp: a ViT (embed 96, 3 heads,
depth 3, layer scale) with timm-like initial weights (std 0.02; trained-network magnitudes, not the
stress weights of the other ViT goldens) run by vit_ref under torch.cpu.amp.autocast(bfloat16)
and in float32, on Debian's torch 1.13. Case layout as gen_vit_golden.py ("p." parameters,
"input", "expected.pooled" from autocast, "fp32.pooled").
Usage: gen_bf16_golden.py OUT_DIR"""
import json
import os
import sys

import torch

import st
import vit_ref

CFG = dict(img_size=64, patch_size=16, embed_dim=96, depth=3, num_heads=3, mlp_hidden=384, qkv_bias=True,
           class_token=True, reg_tokens=0, no_embed_class=False, init_values=0.1, swiglu=False, norm_eps=1e-6,
           pool="cls")


def main(out):
    g = torch.Generator().manual_seed(7)
    p = vit_ref.init_params(CFG, g)
    for k, v in p.items():  # timm-like magnitudes: weights ~ N(0, 0.02), norms at 1, biases 0
        if k.endswith("norm1.weight") or k.endswith("norm2.weight") or k == "norm.weight":
            p[k] = torch.ones_like(v)
        elif k.endswith(".bias"):
            p[k] = torch.zeros_like(v)
        elif "gamma" not in k:
            p[k] = torch.randn(v.shape, generator=g) * 0.02
    x = torch.randn(4, 3, 64, 64, generator=g)
    with torch.inference_mode():
        fp32 = vit_ref.pool(CFG, vit_ref.forward_tokens(CFG, p, x)[0])
        with torch.cpu.amp.autocast(dtype=torch.bfloat16):
            bf16 = vit_ref.pool(CFG, vit_ref.forward_tokens(CFG, p, x)[0]).float()
    t = {"p." + k: v for k, v in p.items()}
    t.update({"input": x, "expected.pooled": bf16, "fp32.pooled": fp32})
    st.save(os.path.join(out, "vit_bf16_autocast.safetensors"), t, {"config": json.dumps(CFG)})


if __name__ == "__main__":
    main(sys.argv[1])
