"""PyTorch eager peer for the training benchmark: the same objectives written as their official
repositories do (DINO's train_one_epoch with MultiCropWrapper semantics, MAE's forward + loss, SimCLR's
NT-Xent), on the timm-semantics ViT of scripts/golden/vit_ref.py, Debian's torch 1.13, the same
threads, fixed random views, AdamW; one line of JSON (median images/s over STEPS after a warm-up).
Usage: train_peer.py METHOD MODEL IMG LOCAL_IMG N_LOCAL BATCH [STEPS=6] [DEPTH_OVERRIDE]"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "golden"))
import vit_ref  # noqa: E402
from gen_dino_golden import DINOHead, DINOLoss  # noqa: E402
from gen_mae_golden import forward_loss, random_masking  # noqa: E402
from gen_simclr_golden import nt_xent  # noqa: E402
from gen_ssl_train_golden import sincos_2d  # noqa: E402

SIZES = {"vit_tiny_patch16_224": (192, 12, 3), "vit_small_patch16_224": (384, 12, 6), "vit_base_patch16_224": (768, 12, 12)}


def main(method, model, img, local, n_local, batch, steps=6):
    torch.set_num_threads(os.cpu_count())
    D, depth, heads = SIZES[model]
    cfg = dict(img_size=img, patch_size=16, embed_dim=D, depth=depth, num_heads=heads, mlp_hidden=4 * D, qkv_bias=True,
               class_token=True, reg_tokens=0, no_embed_class=False, init_values=0.0, swiglu=False, norm_eps=1e-6,
               pool="cls")
    g = torch.Generator().manual_seed(0)
    p = {k: v.requires_grad_(True) for k, v in vit_ref.init_params(cfg, g).items()}
    embed = lambda params, x: vit_ref.pool(cfg, vit_ref.forward_tokens(cfg, params, x)[0])
    params = list(p.values())
    if method == "dino":
        K = int(os.environ.get("DINO_OUT", 65536))
        head = DINOHead(D, K)
        teacher = {k: v.detach().clone() for k, v in p.items()}
        t_head = DINOHead(D, K)
        t_head.load_state_dict(head.state_dict())
        for q in t_head.parameters():
            q.requires_grad = False
        loss_fn = DINOLoss(K, 2 + n_local, [0.04] * (steps + 1))
        params += [q for q in head.parameters() if q.requires_grad]
        crops = [torch.randn(batch, 3, img, img) for _ in range(2)] + [torch.randn(batch, 3, local, local) for _ in range(n_local)]

        def fwd(it):
            with torch.no_grad():
                t_out = t_head(embed(teacher, torch.cat(crops[:2])))
            outs = [embed(p, torch.cat(crops[:2]))]
            if n_local:
                outs.append(embed(p, torch.cat(crops[2:])))
            return loss_fn(head(torch.cat(outs)), t_out, it)

        def step(it):
            loss = fwd(it)
            opt.zero_grad()
            loss.backward()
            for q in params:
                if q.grad is not None:
                    coef = 3.0 / (q.grad.norm(2) + 1e-6)
                    if coef < 1:
                        q.grad.mul_(coef)
            opt.step()
            with torch.no_grad():
                for k in teacher:
                    teacher[k].mul_(0.996).add_(p[k].detach(), alpha=0.004)
                for qt, qs in zip(t_head.parameters(), head.parameters()):
                    qt.mul_(0.996).add_(qs.detach(), alpha=0.004)
            return loss
    elif method == "mae":
        DD, DH, DDEP = 256, 8, 4
        r = lambda *s: (torch.randn(*s, generator=g) * 0.02).requires_grad_(True)
        z = lambda *s: torch.zeros(*s).requires_grad_(True)
        o = lambda *s: torch.ones(*s).requires_grad_(True)
        dec = {"decoder_embed.weight": r(DD, D), "decoder_embed.bias": z(DD), "mask_token": r(1, 1, DD),
               "decoder_norm.weight": o(DD), "decoder_norm.bias": z(DD), "decoder_pred.weight": r(768, DD),
               "decoder_pred.bias": z(768)}
        for i in range(DDEP):
            b = f"decoder_blocks.{i}."
            dec.update({b + "norm1.weight": o(DD), b + "norm1.bias": z(DD), b + "attn.qkv.weight": r(3 * DD, DD),
                        b + "attn.qkv.bias": z(3 * DD), b + "attn.proj.weight": r(DD, DD), b + "attn.proj.bias": z(DD),
                        b + "norm2.weight": o(DD), b + "norm2.bias": z(DD), b + "mlp.fc1.weight": r(4 * DD, DD),
                        b + "mlp.fc1.bias": z(4 * DD), b + "mlp.fc2.weight": r(DD, 4 * DD), b + "mlp.fc2.bias": z(DD)})
        params += list(dec.values())
        grid = img // 16
        pos = torch.from_numpy(sincos_2d(DD, grid)).float().unsqueeze(0)
        x_img = torch.randn(batch, 3, img, img)

        def fwd(it):
            tok = vit_ref.prepare_tokens(cfg, p, x_img)
            kept, mask, ids_restore = random_masking(tok[:, 1:], 0.75, torch.rand(batch, grid * grid))
            x = vit_ref.run_blocks(cfg, p, torch.cat([tok[:, :1], kept], 1), "blocks.", depth, D, heads, 1e-6)
            x = F.layer_norm(x, (D,), p["norm.weight"], p["norm.bias"], 1e-6)
            x = F.linear(x, dec["decoder_embed.weight"], dec["decoder_embed.bias"])
            mt = dec["mask_token"].repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
            x_ = torch.gather(torch.cat([x[:, 1:], mt], 1), 1, ids_restore.unsqueeze(-1).repeat(1, 1, DD))
            x = torch.cat([x[:, :1], x_], 1) + pos
            x = vit_ref.run_blocks(dict(cfg, init_values=0.0, swiglu=False), dec, x, "decoder_blocks.", DDEP, DD, DH, 1e-6)
            x = F.layer_norm(x, (DD,), dec["decoder_norm.weight"], dec["decoder_norm.bias"], 1e-6)
            pred = F.linear(x, dec["decoder_pred.weight"], dec["decoder_pred.bias"])[:, 1:]
            return forward_loss(x_img, pred, mask, 16)

        def step(it):
            loss = fwd(it)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss
    else:
        head = torch.nn.Sequential(torch.nn.Linear(D, 2048), torch.nn.ReLU(), torch.nn.Linear(2048, 128))
        params += list(head.parameters())
        v1, v2 = torch.randn(batch, 3, img, img), torch.randn(batch, 3, img, img)

        def fwd(it):
            z = head(embed(p, torch.cat([v1, v2])))
            return nt_xent(z[:batch], z[batch:], 0.1)

        def step(it):
            loss = fwd(it)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 3.0)
            opt.step()
            return loss
    decay = [q for q in params if q.ndim > 1]
    no_decay = [q for q in params if q.ndim <= 1]
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-4, weight_decay=0.04)
    rates, cpu_rates = [], []
    prof = None  # MEDFM_PROFILE=trace.json: the autograd profiler's chrome trace of the timed steps
    for it in range(steps + 1):
        if it == 1 and os.environ.get("MEDFM_PROFILE"):
            prof = torch.autograd.profiler.profile()
            prof.__enter__()
        t0, c0 = time.perf_counter(), time.process_time()
        loss = step(it)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        if it > 0:
            rates.append(batch / dt)
            cpu_rates.append(batch / cpu)
    if prof is not None:
        prof.__exit__(None, None, None)
        prof.export_chrome_trace(os.environ["MEDFM_PROFILE"])
    # MEDFM_BENCH_PHASES=1: STEPS more forward and backward passes timed apart (as medfm_bench_train).
    phases = {}
    if os.environ.get("MEDFM_BENCH_PHASES"):
        f, b = [], []
        for it in range(steps):
            t0 = time.perf_counter()
            loss_ = fwd(steps)
            float(loss_)
            t1 = time.perf_counter()
            loss_.backward()
            t2 = time.perf_counter()
            f.append(t1 - t0)
            b.append(t2 - t1)
            opt.zero_grad()
        f.sort()
        b.sort()
        phases = {"forward_s": f[len(f) // 2], "backward_s": b[len(b) // 2]}
    rates.sort()
    cpu_rates.sort()
    print(json.dumps({"impl": os.environ.get("PEER_LABEL", "pytorch-eager"), "method": method, "model": model, "img": img, "batch": batch,
                      "n_local": n_local, "threads": torch.get_num_threads(), "images_per_s": rates[len(rates) // 2],
                      "images_per_cpu_s": cpu_rates[len(cpu_rates) // 2],
                      "last_loss": float(loss), "phases": phases}))


if __name__ == "__main__":
    a = sys.argv
    main(a[1], a[2], *(int(x) for x in a[3:8]))
