"""Writes tiny-ViT golden fixtures (<= 1 MB each) for tests/golden/vit_golden_test.cpp.

Each case file holds the timm-layout parameters (prefix "p."), the input, the expected tokens
(forward_features), pooled embedding and block-0 intermediate, and the config as metadata.
Extra files hold the same weights in the other key layouts medfm remaps (dinov2, hf_dinov2,
hf_vit, torchvision). Usage: gen_vit_golden.py OUT_DIR
"""
import json
import os
import sys

import torch

import st
import vit_ref

BASE = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_hidden=64, qkv_bias=True,
            class_token=True, reg_tokens=0, no_embed_class=False, init_values=0.0, swiglu=False,
            norm_eps=1e-6, pool="cls")
CASES = {
    "basic": dict(),
    "noqkvbias_mean": dict(qkv_bias=False, pool="mean"),
    "layerscale_reg_clsmean": dict(init_values=0.1, reg_tokens=2, pool="cls+mean"),
    "swiglu_reg_noembedclass": dict(swiglu=True, reg_tokens=4, no_embed_class=True, patch_size=14, img_size=28,
                                    init_values=0.1, mlp_hidden=96),
    "patch16_interp": dict(patch_size=16, img_size=64, input_hw=(48, 80)),
    "layerscale_interp": dict(init_values=0.1, input_hw=(40, 56)),
}


def qkv_split(w):
    return w.chunk(3, 0)


def to_hf(cfg, p, vit):
    o = {"embeddings.cls_token": p["cls_token"], "embeddings.position_embeddings": p["pos_embed"],
         "embeddings.patch_embeddings.projection.weight": p["patch_embed.proj.weight"],
         "embeddings.patch_embeddings.projection.bias": p["patch_embed.proj.bias"],
         "layernorm.weight": p["norm.weight"], "layernorm.bias": p["norm.bias"]}
    if not vit:
        o["embeddings.mask_token"] = torch.zeros(1, cfg["embed_dim"])
    for i in range(cfg["depth"]):
        b, h = f"blocks.{i}.", f"encoder.layer.{i}."
        for part, name in zip(("query", "key", "value"), range(3)):
            o[h + f"attention.attention.{part}.weight"] = qkv_split(p[b + "attn.qkv.weight"])[name]
            o[h + f"attention.attention.{part}.bias"] = qkv_split(p[b + "attn.qkv.bias"])[name]
        o[h + "attention.output.dense.weight"] = p[b + "attn.proj.weight"]
        o[h + "attention.output.dense.bias"] = p[b + "attn.proj.bias"]
        n1, n2 = ("layernorm_before", "layernorm_after") if vit else ("norm1", "norm2")
        for s in ("weight", "bias"):
            o[h + f"{n1}.{s}"] = p[b + f"norm1.{s}"]
            o[h + f"{n2}.{s}"] = p[b + f"norm2.{s}"]
            if vit:
                o[h + f"intermediate.dense.{s}"] = p[b + f"mlp.fc1.{s}"]
                o[h + f"output.dense.{s}"] = p[b + f"mlp.fc2.{s}"]
            else:
                o[h + f"mlp.fc1.{s}"] = p[b + f"mlp.fc1.{s}"]
                o[h + f"mlp.fc2.{s}"] = p[b + f"mlp.fc2.{s}"]
        if cfg["init_values"]:
            o[h + "layer_scale1.lambda1"] = p[b + "ls1.gamma"]
            o[h + "layer_scale2.lambda1"] = p[b + "ls2.gamma"]
    prefix = "vit." if vit else "dinov2."
    o = {prefix + k: v for k, v in o.items()}
    o["classifier.weight"] = torch.zeros(3, cfg["embed_dim"])  # a head to ignore
    return o


def to_torchvision(cfg, p):
    o = {"class_token": p["cls_token"], "encoder.pos_embedding": p["pos_embed"],
         "conv_proj.weight": p["patch_embed.proj.weight"], "conv_proj.bias": p["patch_embed.proj.bias"],
         "encoder.ln.weight": p["norm.weight"], "encoder.ln.bias": p["norm.bias"],
         "heads.head.weight": torch.zeros(5, cfg["embed_dim"]), "heads.head.bias": torch.zeros(5)}
    for i in range(cfg["depth"]):
        b, t = f"blocks.{i}.", f"encoder.layers.encoder_layer_{i}."
        o[t + "self_attention.in_proj_weight"] = p[b + "attn.qkv.weight"]
        o[t + "self_attention.in_proj_bias"] = p[b + "attn.qkv.bias"]
        for s in ("weight", "bias"):
            o[t + f"self_attention.out_proj.{s}"] = p[b + f"attn.proj.{s}"]
            o[t + f"ln_1.{s}"] = p[b + f"norm1.{s}"]
            o[t + f"ln_2.{s}"] = p[b + f"norm2.{s}"]
            o[t + f"mlp.0.{s}"] = p[b + f"mlp.fc1.{s}"]
            o[t + f"mlp.3.{s}"] = p[b + f"mlp.fc2.{s}"]
    return o


def to_dinov2(cfg, p, gen):
    """Original DINOv2 layout: register_tokens, pos_embed covering cls only, w12/w3, mask_token, chunks."""
    o = {}
    for k, v in p.items():
        k = k.replace("mlp.fc1", "mlp.w12").replace("mlp.fc2", "mlp.w3") if cfg["swiglu"] else k
        if k.startswith("blocks."):
            i = int(k.split(".")[1])
            k = f"blocks.0.{i}." + k.split(".", 2)[2]  # one block chunk, as block_chunks>0 saves
        o[k] = v
    o["mask_token"] = torch.zeros(1, cfg["embed_dim"])
    if cfg["reg_tokens"]:
        o["register_tokens"] = o.pop("reg_token")
        pos_cls = torch.randn(1, 1, cfg["embed_dim"], generator=gen) * 0.05
        o["cls_token"] = p["cls_token"] - pos_cls
        o["pos_embed"] = torch.cat([pos_cls, p["pos_embed"]], 1)
    return o


def main(out):
    os.makedirs(out, exist_ok=True)
    gen = torch.Generator().manual_seed(1234)
    for name, over in CASES.items():
        cfg = dict(BASE)
        cfg.update({k: v for k, v in over.items() if k != "input_hw"})
        hw = over.get("input_hw", (cfg["img_size"], cfg["img_size"]))
        p = vit_ref.init_params(cfg, gen)
        x = torch.randn(2, 3, *hw, generator=gen)
        with torch.no_grad():
            tokens, inter = vit_ref.forward_tokens(cfg, p, x)
            pooled = vit_ref.pool(cfg, tokens)
        tensors = {"p." + k: v for k, v in p.items()}
        # timm's forward_intermediates(output_fmt="NCHW"): patch tokens (prefix dropped) as a map.
        n_prefix = int(cfg["class_token"]) + cfg["reg_tokens"]
        gh, gw = hw[0] // cfg["patch_size"], hw[1] // cfg["patch_size"]
        map0 = inter[0][:, n_prefix:].reshape(x.shape[0], gh, gw, -1).permute(0, 3, 1, 2).contiguous()
        tensors.update({"input": x, "expected.tokens": tokens, "expected.pooled": pooled,
                        "expected.block0": inter[0], "expected.map0": map0})
        st.save(os.path.join(out, f"vit_{name}.safetensors"), tensors, {"config": json.dumps(cfg)})
        if name == "basic":
            st.save(os.path.join(out, f"vit_{name}.hf_vit.safetensors"), to_hf(cfg, p, vit=True))
            st.save(os.path.join(out, f"vit_{name}.torchvision.safetensors"), to_torchvision(cfg, p))
        if name == "layerscale_interp":
            st.save(os.path.join(out, f"vit_{name}.hf_dinov2.safetensors"), to_hf(cfg, p, vit=False))
        if name in ("swiglu_reg_noembedclass", "layerscale_interp"):
            st.save(os.path.join(out, f"vit_{name}.dinov2.safetensors"), to_dinov2(cfg, p, gen))
    print(f"wrote {len(CASES)} ViT golden cases to {out}")


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1])
