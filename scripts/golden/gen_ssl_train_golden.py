"""10-step training goldens for MAE (facebookresearch/mae's MaskedAutoencoderViT + engine_pretrain) and
SimCLR (google-research/simclr v1 head, NT-Xent) with Debian's torch 1.13, on a tiny ViT (vit_ref) with
fixed views, medfm's parameter groups (no weight decay on 1-D parameters, biases, tokens, pos_embed,
mask_token), AdamW, cosine lr with warm-up, cosine weight decay.
  mae_train.safetensors     MAE: per-step noise from torch.manual_seed(1000 + step) then torch.rand(B, L);
                            decoder with fixed 2D sin-cos positions (MAE's get_2d_sincos_pos_embed), 1
                            block; normalised-pixel loss on removed patches; no gradient clipping
  simclr_train.safetensors  SimCLR: 2 views, cls embedding -> Linear-ReLU-Linear -> NT-Xent (T 0.1); global
                            gradient-norm clipping at 3.0
Each: initial parameters ("p."), views, per-step losses, final parameters ("final.").
Usage: gen_ssl_train_golden.py OUT_DIR"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import st
import vit_ref
from gen_dino_golden import cosine_scheduler
from gen_mae_golden import forward_loss, random_masking
from gen_simclr_golden import nt_xent

CFG = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_hidden=64, qkv_bias=True,
           class_token=True, reg_tokens=0, no_embed_class=False, init_values=0.0, swiglu=False, norm_eps=1e-6,
           pool="cls")
STEPS, B = 10, 4


def sincos_1d(dim, pos):  # MAE util/pos_embed.py get_1d_sincos_pos_embed_from_grid
    omega = np.arange(dim // 2, dtype=np.float64) / (dim / 2.0)
    omega = 1.0 / 10000 ** omega
    out = np.einsum("m,d->md", pos.reshape(-1), omega)
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)


def sincos_2d(dim, grid_size):  # get_2d_sincos_pos_embed(..., cls_token=True)
    gh = np.arange(grid_size, dtype=np.float32)
    gw = np.arange(grid_size, dtype=np.float32)
    grid = np.stack(np.meshgrid(gw, gh), axis=0).reshape([2, 1, grid_size, grid_size])
    emb = np.concatenate([sincos_1d(dim // 2, grid[0]), sincos_1d(dim // 2, grid[1])], axis=1)
    return np.concatenate([np.zeros([1, dim]), emb], axis=0)


def adamw(named, no_decay_names):
    nd = lambda n, q: q.ndim <= 1 or n.endswith(".bias") or n in no_decay_names
    decay = [q for n, q in named if not nd(n, q)]
    no_decay = [q for n, q in named if nd(n, q)]
    return torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.0, betas=(0.9, 0.999),
                             eps=1e-8)


def mae(out):
    g = torch.Generator().manual_seed(21)
    D, DD, HEADS, P = CFG["embed_dim"], 16, 2, CFG["patch_size"]
    grid = CFG["img_size"] // P
    L = grid * grid
    p = {"encoder." + k: v for k, v in vit_ref.trained_params(CFG, g).items()}
    r = lambda *s: torch.randn(*s, generator=g) * 0.05
    p["decoder_embed.weight"], p["decoder_embed.bias"] = r(DD, D), torch.zeros(DD)
    p["mask_token"] = r(1, 1, DD)
    b = "decoder_blocks.0."
    p[b + "norm1.weight"], p[b + "norm1.bias"] = torch.ones(DD), torch.zeros(DD)
    p[b + "attn.qkv.weight"], p[b + "attn.qkv.bias"] = r(3 * DD, DD), torch.zeros(3 * DD)
    p[b + "attn.proj.weight"], p[b + "attn.proj.bias"] = r(DD, DD), torch.zeros(DD)
    p[b + "norm2.weight"], p[b + "norm2.bias"] = torch.ones(DD), torch.zeros(DD)
    p[b + "mlp.fc1.weight"], p[b + "mlp.fc1.bias"] = r(4 * DD, DD), torch.zeros(4 * DD)
    p[b + "mlp.fc2.weight"], p[b + "mlp.fc2.bias"] = r(DD, 4 * DD), torch.zeros(DD)
    p["decoder_norm.weight"], p["decoder_norm.bias"] = torch.ones(DD), torch.zeros(DD)
    p["decoder_pred.weight"], p["decoder_pred.bias"] = r(P * P * 3, DD), torch.zeros(P * P * 3)
    pos = torch.from_numpy(sincos_2d(DD, grid)).float().unsqueeze(0)
    t = {"p." + k: v.clone() for k, v in p.items()}
    t["decoder_pos_embed"] = pos
    w = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    enc = lambda: {k[len("encoder."):]: v for k, v in w.items() if k.startswith("encoder.")}
    opt = adamw(list(w.items()), {"encoder.cls_token", "encoder.pos_embed", "mask_token"})
    lr, wd = cosine_scheduler(1e-3, 1e-5, STEPS, warmup=3), cosine_scheduler(0.05, 0.05, STEPS)
    losses = []
    for it in range(STEPS):
        imgs = torch.randn(B, 3, 32, 32, generator=g)
        t[f"view.{it}"] = imgs
        for pg in opt.param_groups:
            pg["lr"] = lr[it]
        opt.param_groups[0]["weight_decay"] = wd[it]
        torch.manual_seed(1000 + it)
        noise = torch.rand(B, L)
        e = enc()
        tok = vit_ref.prepare_tokens(CFG, e, imgs)
        kept, mask, ids_restore = random_masking(tok[:, 1:], 0.75, noise)
        x = vit_ref.run_blocks(CFG, e, torch.cat([tok[:, :1], kept], 1), "blocks.", CFG["depth"], D, CFG["num_heads"], 1e-6)
        x = F.layer_norm(x, (D,), e["norm.weight"], e["norm.bias"], 1e-6)
        x = F.linear(x, w["decoder_embed.weight"], w["decoder_embed.bias"])
        mask_tokens = w["mask_token"].repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + pos
        dcfg = dict(CFG, init_values=0.0, swiglu=False)
        x = vit_ref.run_blocks(dcfg, w, x, "decoder_blocks.", 1, DD, HEADS, 1e-6)
        x = F.layer_norm(x, (DD,), w["decoder_norm.weight"], w["decoder_norm.bias"], 1e-6)
        pred = F.linear(x, w["decoder_pred.weight"], w["decoder_pred.bias"])[:, 1:, :]
        loss = forward_loss(imgs, pred, mask, P)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    t["losses"] = torch.tensor(losses, dtype=torch.float64)
    t.update({"final." + k: v.detach() for k, v in w.items()})
    st.save(os.path.join(out, "mae_train.safetensors"), t,
            {"config": json.dumps(CFG), "lr": json.dumps(list(lr)), "wd": json.dumps(list(wd))})


def simclr(out):
    g = torch.Generator().manual_seed(23)
    D = CFG["embed_dim"]
    p = {"encoder." + k: v for k, v in vit_ref.trained_params(CFG, g).items()}
    r = lambda *s: torch.randn(*s, generator=g) * 0.1
    p["head.mlp.0.weight"], p["head.mlp.0.bias"] = r(48, D), torch.zeros(48)
    p["head.mlp.2.weight"], p["head.mlp.2.bias"] = r(16, 48), torch.zeros(16)
    t = {"p." + k: v.clone() for k, v in p.items()}
    w = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    enc = lambda: {k[len("encoder."):]: v for k, v in w.items() if k.startswith("encoder.")}
    opt = adamw(list(w.items()), {"encoder.cls_token", "encoder.pos_embed"})
    lr, wd = cosine_scheduler(1e-3, 1e-5, STEPS, warmup=3), cosine_scheduler(1e-4, 1e-4, STEPS)
    losses = []
    for it in range(STEPS):
        v1, v2 = torch.randn(B, 3, 32, 32, generator=g), torch.randn(B, 3, 32, 32, generator=g)
        t[f"view.{it}.0"], t[f"view.{it}.1"] = v1, v2
        for pg in opt.param_groups:
            pg["lr"] = lr[it]
        opt.param_groups[0]["weight_decay"] = wd[it]
        e = enc()
        h = vit_ref.pool(CFG, vit_ref.forward_tokens(CFG, e, torch.cat([v1, v2]))[0])
        z = F.linear(F.relu(F.linear(h, w["head.mlp.0.weight"], w["head.mlp.0.bias"])), w["head.mlp.2.weight"],
                     w["head.mlp.2.bias"])
        loss = nt_xent(z[:B], z[B:], 0.1)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(w.values()), 3.0)
        opt.step()
        losses.append(loss.item())
    t["losses"] = torch.tensor(losses, dtype=torch.float64)
    t.update({"final." + k: v.detach() for k, v in w.items()})
    st.save(os.path.join(out, "simclr_train.safetensors"), t,
            {"config": json.dumps(CFG), "lr": json.dumps(list(lr)), "wd": json.dumps(list(wd))})


if __name__ == "__main__":
    mae(sys.argv[1])
    simclr(sys.argv[1])
