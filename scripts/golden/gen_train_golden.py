"""Training-mode goldens for tests/golden/vit_train_golden_test.cpp (tiny ViTs, <= 1 MB each).

train_sgd: a ViT with LayerScale, a register and a 3-class head (timm's `head.*`): cross-entropy
loss, every parameter's gradient at step 0, then the loss after each of 3 SGD steps (lr 0.1,
momentum 0.9, weight decay 1e-4, torch.optim.SGD semantics).
mask_token: DINOv2/iBOT masking: masked patch embeddings replaced by `mask_token` before the
position embedding; expected tokens for a fixed mask. Usage: gen_train_golden.py OUT_DIR
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

import st
import vit_ref

BASE = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_hidden=64, qkv_bias=True,
            class_token=True, reg_tokens=1, no_embed_class=False, init_values=0.1, swiglu=False,
            norm_eps=1e-6, pool="cls")


def logits_of(cfg, p, x):
    tokens, _ = vit_ref.forward_tokens(cfg, p, x)
    return F.linear(vit_ref.pool(cfg, tokens), p["head.weight"], p["head.bias"])


def train_sgd(out, gen):
    cfg = dict(BASE, num_classes=3)
    p = vit_ref.init_params(cfg, gen)
    p["head.weight"] = torch.randn(3, cfg["embed_dim"], generator=gen) * 0.3
    p["head.bias"] = torch.randn(3, generator=gen) * 0.1
    x = torch.randn(4, 3, 32, 32, generator=gen)
    y = torch.tensor([0, 2, 1, 2])
    init = {k: v.clone() for k, v in p.items()}
    params = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    opt = torch.optim.SGD(list(params.values()), lr=0.1, momentum=0.9, weight_decay=1e-4)
    losses, grads = [], {}
    for step in range(4):
        opt.zero_grad()
        loss = F.cross_entropy(logits_of(cfg, params, x), y)
        losses.append(loss.item())
        if step == 3:
            break
        loss.backward()
        if step == 0:
            grads = {k: v.grad.clone() for k, v in params.items()}
        opt.step()
    t = {"p." + k: v for k, v in init.items()}
    t.update({"g." + k: v for k, v in grads.items()})
    t.update({"input": x, "labels": y, "expected.losses": torch.tensor(losses, dtype=torch.float64)})
    st.save(os.path.join(out, "train_sgd.safetensors"), t, {"config": json.dumps(cfg)})


def mask_token(out, gen):
    cfg = dict(BASE, init_values=0.0, reg_tokens=0)
    p = vit_ref.init_params(cfg, gen)
    p["mask_token"] = torch.randn(1, cfg["embed_dim"], generator=gen)
    x = torch.randn(2, 3, 32, 32, generator=gen)
    masks = torch.rand(2, 16, generator=gen) < 0.4
    with torch.no_grad():
        tokens, _ = vit_ref.forward_tokens(cfg, p, x, masks=masks)
    t = {"p." + k: v for k, v in p.items()}
    t.update({"input": x, "mask": masks.to(torch.uint8), "expected.tokens": tokens})
    st.save(os.path.join(out, "mask_token.safetensors"), t, {"config": json.dumps(cfg)})


if __name__ == "__main__":
    torch.set_num_threads(2)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(4321)
    train_sgd(out, gen)
    mask_token(out, gen)
    print(f"wrote training goldens to {out}")
