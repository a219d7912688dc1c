"""Reference ViT written to timm's VisionTransformer semantics (timm is not packaged in Debian 12).

Token order [cls, reg..., patches]; pos_embed covers prefix+patches, or patches only when
no_embed_class; pos_embed resampled bicubic/antialias/align_corners=False to other grids (timm's
resample_abs_pos_embed); LayerScale; GELU MLP or packed SwiGLU (silu(first half) * second half);
pools cls | mean (patch tokens) | cls+mean. Parameter names are timm's state_dict keys.
"""
import math

import torch
import torch.nn.functional as F


def init_params(cfg, gen):
    D, R = cfg["embed_dim"], cfg["reg_tokens"]
    n_pre = (1 if cfg["class_token"] else 0) + R
    g = cfg["img_size"] // cfg["patch_size"]
    n_pos = g * g + (0 if cfg["no_embed_class"] else n_pre)
    r = lambda *s: torch.randn(*s, generator=gen) * 0.05
    p = {}
    if cfg["class_token"]:
        p["cls_token"] = r(1, 1, D)
    if R:
        p["reg_token"] = r(1, R, D)
    p["pos_embed"] = r(1, n_pos, D)
    p["patch_embed.proj.weight"] = r(D, 3, cfg["patch_size"], cfg["patch_size"])
    p["patch_embed.proj.bias"] = r(D)
    H = cfg["mlp_hidden"]
    for i in range(cfg["depth"]):
        b = f"blocks.{i}."
        p[b + "norm1.weight"] = 1 + r(D)
        p[b + "norm1.bias"] = r(D)
        p[b + "attn.qkv.weight"] = r(3 * D, D) * 4
        if cfg["qkv_bias"]:
            p[b + "attn.qkv.bias"] = r(3 * D)
        p[b + "attn.proj.weight"] = r(D, D) * 4
        p[b + "attn.proj.bias"] = r(D)
        if cfg["init_values"]:
            p[b + "ls1.gamma"] = 0.5 + r(D)
            p[b + "ls2.gamma"] = 0.5 + r(D)
        p[b + "norm2.weight"] = 1 + r(D)
        p[b + "norm2.bias"] = r(D)
        p[b + "mlp.fc1.weight"] = r(H, D) * 4
        p[b + "mlp.fc1.bias"] = r(H)
        p[b + "mlp.fc2.weight"] = r(D, H // 2 if cfg["swiglu"] else H) * 4
        p[b + "mlp.fc2.bias"] = r(D)
    p["norm.weight"] = 1 + r(D)
    p["norm.bias"] = r(D)
    return p


def trained_params(cfg, gen):
    """Parameters with a trained network's magnitudes for training goldens: norms 1, biases 0, the
    rest N(0, 0.05), drawn after init_params from the same generator."""
    p = init_params(cfg, gen)
    for k, v in p.items():
        if "norm" in k and k.endswith("weight"):
            p[k] = torch.ones_like(v)
        elif k.endswith(".bias"):
            p[k] = torch.zeros_like(v)
        else:
            p[k] = torch.randn(v.shape, generator=gen) * 0.05
    return p


def resample_pos(pos, n_pre, gh, gw):
    n_old = pos.shape[1] - n_pre
    g = int(math.sqrt(n_old))
    if g == gh and g == gw:
        return pos
    pre, grid = pos[:, :n_pre], pos[:, n_pre:]
    D = pos.shape[-1]
    grid = grid.reshape(1, g, g, D).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(gh, gw), mode="bicubic", antialias=True, align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, gh * gw, D)
    return torch.cat([pre, grid], 1)


def prepare_tokens(cfg, p, x, masks=None):
    """Patch embedding (masked patches -> mask_token), prefix tokens, position embedding."""
    P = cfg["patch_size"]
    B = x.shape[0]
    t = F.conv2d(x, p["patch_embed.proj.weight"], p["patch_embed.proj.bias"], stride=P)
    gh, gw = t.shape[2], t.shape[3]
    t = t.flatten(2).transpose(1, 2)
    if masks is not None:  # DINOv2 / iBOT: masked patches become the learnable mask token
        t = torch.where(masks.unsqueeze(-1), p["mask_token"].to(t.dtype).unsqueeze(0), t)
    n_pre = (1 if cfg["class_token"] else 0) + cfg["reg_tokens"]
    pos = resample_pos(p["pos_embed"], 0 if cfg["no_embed_class"] else n_pre, gh, gw)
    prefix = []
    if cfg["class_token"]:
        prefix.append(p["cls_token"].expand(B, -1, -1))
    if cfg["reg_tokens"]:
        prefix.append(p["reg_token"].expand(B, -1, -1))
    if cfg["no_embed_class"]:
        return torch.cat(prefix + [t + pos], 1)
    return torch.cat(prefix + [t], 1) + pos


def forward_tokens(cfg, p, x, upto=None, masks=None):
    D, heads, eps = cfg["embed_dim"], cfg["num_heads"], cfg["norm_eps"]
    t = prepare_tokens(cfg, p, x, masks)
    inter = []
    t = run_blocks(cfg, p, t, "blocks.", cfg["depth"], D, heads, eps, inter)
    return F.layer_norm(t, (D,), p["norm.weight"], p["norm.bias"], eps), inter


def run_blocks(cfg, p, t, prefix, depth, D, heads, eps, inter=None):
    """Transformer blocks (timm Block) named prefix + i + '.norm1.weight' ...; appends each output to inter."""
    B = t.shape[0]
    for i in range(depth):
        b = f"{prefix}{i}."
        h = F.layer_norm(t, (D,), p[b + "norm1.weight"], p[b + "norm1.bias"], eps)
        qkv = F.linear(h, p[b + "attn.qkv.weight"], p.get(b + "attn.qkv.bias"))
        T = t.shape[1]
        q, k, v = qkv.reshape(B, T, 3, heads, D // heads).permute(2, 0, 3, 1, 4).unbind(0)
        a = (q * (D // heads) ** -0.5) @ k.transpose(-2, -1)
        o = (a.softmax(-1) @ v).transpose(1, 2).reshape(B, T, D)
        o = F.linear(o, p[b + "attn.proj.weight"], p[b + "attn.proj.bias"])
        t = t + (o * p[b + "ls1.gamma"] if cfg["init_values"] else o)
        h = F.layer_norm(t, (D,), p[b + "norm2.weight"], p[b + "norm2.bias"], eps)
        h = F.linear(h, p[b + "mlp.fc1.weight"], p[b + "mlp.fc1.bias"])
        if cfg["swiglu"]:
            x1, x2 = h.chunk(2, -1)
            h = F.silu(x1) * x2
        else:
            h = F.gelu(h)
        h = F.linear(h, p[b + "mlp.fc2.weight"], p[b + "mlp.fc2.bias"])
        t = t + (h * p[b + "ls2.gamma"] if cfg["init_values"] else h)
        if inter is not None:
            inter.append(t)
    return t


def pool(cfg, tokens):
    n_pre = (1 if cfg["class_token"] else 0) + cfg["reg_tokens"]
    cls, mean = tokens[:, 0], tokens[:, n_pre:].mean(1)
    return {"cls": cls, "mean": mean, "cls+mean": torch.cat([cls, mean], -1)}[cfg["pool"]]
