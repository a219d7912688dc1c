"""DINOv2 / iBOT goldens written to facebookresearch/dinov2's semantics with Debian's torch 1.13:
  ibot.safetensors          iBOTPatchLoss: centred, sharpened teacher targets, forward_masked (per-crop
                            weights), the gradient, the centre after one update; Sinkhorn-Knopp targets
                            (the cls and the patch variants)
  dinov2_train.safetensors  10 steps of SSLMetaArch.forward_backward + the train loop on a tiny ViT with a
                            mask token: 2 global 32 px + 2 local 16 px crops of 4 images, block masks made
                            with dinov2's MaskingGenerator and collate rule (saved, so the C++ run uses the
                            same), DINO cls loss with swapped global chunks, iBOT on masked patches through
                            the shared head, KoLeo 0.1; DINOv2's parameter groups (no decay on biases, norms,
                            gammas; patch_embed lr x 0.2; the last layer's lr 0 while frozen), per-module
                            gradient clipping at 3.0, AdamW, EMA teacher.
Usage: gen_dinov2_golden.py OUT_DIR"""
import json
import math
import os
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F

import st
import vit_ref
from gen_dino_golden import DINOHead, cosine_scheduler
from gen_koleo_golden import koleo

# ---- dinov2/data/masking.py (BEiT block masking) and collate.py, verbatim semantics ----------------


class MaskingGenerator:
    def __init__(self, input_size, max_num_patches, min_num_patches=4, min_aspect=0.3):
        self.height, self.width = input_size
        self.min_num_patches, self.max_num_patches = min_num_patches, max_num_patches
        self.log_aspect_ratio = (math.log(min_aspect), math.log(1 / min_aspect))

    def _mask(self, mask, max_mask_patches):
        delta = 0
        for _ in range(10):
            target_area = random.uniform(self.min_num_patches, max_mask_patches)
            aspect_ratio = math.exp(random.uniform(*self.log_aspect_ratio))
            h = int(round(math.sqrt(target_area * aspect_ratio)))
            w = int(round(math.sqrt(target_area / aspect_ratio)))
            if w < self.width and h < self.height:
                top = random.randint(0, self.height - h)
                left = random.randint(0, self.width - w)
                num_masked = mask[top: top + h, left: left + w].sum()
                if 0 < h * w - num_masked <= max_mask_patches:
                    for i in range(top, top + h):
                        for j in range(left, left + w):
                            if mask[i, j] == 0:
                                mask[i, j] = 1
                                delta += 1
                if delta > 0:
                    break
        return delta

    def __call__(self, num_masking_patches=0):
        mask = np.zeros((self.height, self.width), dtype=bool)
        count = 0
        while count < num_masking_patches:
            delta = self._mask(mask, min(num_masking_patches - count, self.max_num_patches))
            if delta == 0:
                break
            count += delta
        return mask


def collate_masks(n_crops, grid, ratio=(0.1, 0.5), probability=0.5):
    gen = MaskingGenerator((grid, grid), max_num_patches=int(0.5 * grid * grid))
    N = grid * grid
    n_masked = int(n_crops * probability)
    probs = torch.linspace(*ratio, n_masked + 1)
    masks = [torch.BoolTensor(gen(int(N * random.uniform(probs[i], probs[i + 1])))) for i in range(n_masked)]
    masks += [torch.BoolTensor(gen(0)) for _ in range(n_masked, n_crops)]
    random.shuffle(masks)
    return torch.stack(masks).flatten(1)


# ---- losses (dinov2/loss) -------------------------------------------------------------------------


def sinkhorn_knopp(teacher_output, teacher_temp, B, n_iterations=3):
    Q = torch.exp(teacher_output.float() / teacher_temp).t()
    K = Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(n_iterations):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


class Centre:  # DINOLoss / iBOTPatchLoss centring with the lazy (next-call) update
    def __init__(self, k, momentum=0.9):
        self.center, self.m, self.pending = torch.zeros(1, k), momentum, None

    def softmax(self, t, temp):
        if self.pending is not None:
            self.center = self.center * self.m + self.pending * (1 - self.m)
            self.pending = None
        return F.softmax((t - self.center) / temp, dim=-1)

    def update_cls(self, t):  # DINOLoss.reduce_center_update: sum(t, 0) / len(t)
        self.pending = torch.sum(t, dim=0, keepdim=True) / len(t)

    def update_patch(self, t3):  # iBOTPatchLoss.reduce_center_update on [1, n, K]
        self.pending = torch.sum(t3.mean(1), dim=0, keepdim=True) / len(t3)


def dino_loss(student_list, teacher_list, student_temp=0.1):
    total = 0
    for s in student_list:
        lsm = F.log_softmax(s / student_temp, dim=-1)
        for t in teacher_list:
            total -= torch.sum(t * lsm, dim=-1).mean()
    return total


def ibot_forward_masked(s, t, masks, masks_weight, student_temp=0.1):
    loss = torch.sum(t * F.log_softmax(s / student_temp, dim=-1), dim=-1)
    return -(loss * masks_weight).sum() / masks.shape[0]


def mask_weights(masks):
    return (1 / masks.sum(-1).clamp(min=1.0)).unsqueeze(-1).expand_as(masks)[masks]


def ibot_golden(out):
    g = torch.Generator().manual_seed(5)
    random.seed(5)
    K, grid, n_crops = 24, 4, 6
    masks = collate_masks(n_crops, grid)
    n = int(masks.sum())
    s = (torch.randn(n, K, generator=g) * 2).requires_grad_(True)
    t_raw = torch.randn(n, K, generator=g) * 2
    c = Centre(K)
    c.center = torch.randn(1, K, generator=g) * 0.1
    t = {"masks": masks, "s": s.detach().clone(), "t_raw": t_raw, "center0": c.center.clone()}
    probs = c.softmax(t_raw, 0.05)
    c.update_patch(t_raw.unsqueeze(0))
    loss = ibot_forward_masked(s, probs, masks, mask_weights(masks))
    loss.backward()
    t["loss"], t["grad"] = loss.detach().reshape(1), s.grad
    c.softmax(t_raw, 0.05)  # applies the pending update
    t["center1"] = c.center.clone()
    # Head outputs are cosines (|x| <= 1): exp(x / temp) stays finite in float32.
    cls = torch.rand(8, K, generator=g) * 2 - 1
    patch = torch.rand(n, K, generator=g) * 2 - 1
    t["sk_in"], t["sk_cls"] = cls, sinkhorn_knopp(cls, 0.07, cls.shape[0])
    t["sk_patch_in"], t["sk_patch"] = patch, sinkhorn_knopp(patch, 0.05, n)
    assert torch.isfinite(t["sk_cls"]).all() and torch.isfinite(t["sk_patch"]).all()
    st.save(os.path.join(out, "ibot.safetensors"), t)


# ---- 10 training steps -----------------------------------------------------------------------------

CFG = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_hidden=64, qkv_bias=True,
           class_token=True, reg_tokens=0, no_embed_class=False, init_values=0.0, swiglu=False, norm_eps=1e-6,
           pool="cls")
STEPS, B, K, NL = 10, 4, 64, 2


def train_golden(out):
    g = torch.Generator().manual_seed(7)
    random.seed(7)
    p = vit_ref.trained_params(CFG, g)
    p["mask_token"] = torch.randn(1, CFG["embed_dim"], generator=g) * 0.05
    torch.manual_seed(7)
    head = DINOHead(CFG["embed_dim"], K, hidden_dim=48, bottleneck_dim=16)
    head.last_layer.weight_g.requires_grad = True  # DINOv2's head trains it
    t = {"p." + k: v.clone() for k, v in p.items()}
    t.update({"h." + k: v.detach().clone() for k, v in head.named_parameters()})
    student = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    teacher_p = {k: v.clone() for k, v in p.items()}
    teacher_head = DINOHead(CFG["embed_dim"], K, hidden_dim=48, bottleneck_dim=16)
    teacher_head.load_state_dict(head.state_dict())
    for q in teacher_head.parameters():
        q.requires_grad = False

    lr = cosine_scheduler(1e-3, 1e-5, STEPS, warmup=3)
    last_lr = lr.copy()
    last_lr[:2] = 0  # freeze_last_layer for 2 steps
    wd = cosine_scheduler(0.04, 0.2, STEPS)
    mom = cosine_scheduler(0.9, 1.0, STEPS)
    temps = np.concatenate((np.linspace(0.04, 0.07, 5), np.full(STEPS - 5, 0.07)))

    # get_params_groups_with_decay (layerwise decay 1.0) + fuse by (lr mult, wd mult, is_last_layer)
    named = list(student.items()) + [("dino_head." + n, q) for n, q in head.named_parameters()]
    groups = {}
    for n, q in named:
        wd_m = 0.0 if (n.endswith(".bias") or "norm" in n or "gamma" in n) else 1.0
        lr_m = 0.2 if "patch_embed" in n else 1.0
        last = "last_layer" in n
        groups.setdefault((lr_m, wd_m, last), []).append(q)
    keys = list(groups)
    opt = torch.optim.AdamW([{"params": groups[k_]} for k_ in keys], lr=0.0, betas=(0.9, 0.999), eps=1e-8)
    dino_c, ibot_c = Centre(K), Centre(K)

    def feats(params, x, masks=None):
        return vit_ref.forward_tokens(CFG, params, x, masks=masks)[0]

    losses, terms = [], []
    n_global_terms, n_local_terms = 2, max(NL * 2, 1)
    for it in range(STEPS):
        g0, g1 = [torch.randn(B, 3, 32, 32, generator=g) for _ in range(2)]
        locs = [torch.randn(B, 3, 16, 16, generator=g) for _ in range(NL)]
        masks = collate_masks(2 * B, 4)
        for v, x in enumerate([g0, g1] + locs):
            t[f"view.{it}.{v}"] = x
        t[f"masks.{it}"] = masks
        for k_, pg in zip(keys, opt.param_groups):
            pg["lr"] = (last_lr[it] if k_[2] else lr[it]) * k_[0]
            pg["weight_decay"] = wd[it] * k_[1]
        glob, loc = torch.cat([g0, g1]), torch.cat(locs)
        idx = masks.flatten().nonzero().flatten()
        n_masked = idx.shape[0]
        mw = mask_weights(masks)
        with torch.no_grad():
            tt = feats(teacher_p, glob)
            tcls = tt[:, 0].chunk(2)
            tcls = torch.cat((tcls[1], tcls[0]))
            tpatch = tt[:, 1:].flatten(0, 1).index_select(0, idx)
            th = teacher_head(torch.cat([tcls, tpatch]))
            tcls_h, tpatch_h = th[: 2 * B], th[2 * B:]
            tdino = dino_c.softmax(tcls_h, temps[it]).view(2, -1, K)
            dino_c.update_cls(tcls_h)
            tibot = ibot_c.softmax(tpatch_h.unsqueeze(0), temps[it]).squeeze(0)
            ibot_c.update_patch(tpatch_h.unsqueeze(0))
        sg = feats(student, glob, masks)
        sl = feats(student, loc)
        scls, lcls = sg[:, 0], sl[:, 0]
        spatch = sg[:, 1:].flatten(0, 1).index_select(0, idx)
        sh = head(torch.cat([lcls, scls, spatch]))
        lh, gh_, ph = sh[: NL * B], sh[NL * B: NL * B + 2 * B], sh[NL * B + 2 * B:]
        d_local = dino_loss(lh.chunk(NL), tdino) / (n_global_terms + n_local_terms)
        d_global = dino_loss([gh_], [tdino.flatten(0, 1)]) * 2 / (n_global_terms + n_local_terms)
        kl = 0.1 * sum(koleo(c_) for c_ in scls.chunk(2))
        ib = ibot_forward_masked(ph, tibot, masks, mw) * 2 * 0.5
        loss = d_local + d_global + kl + ib
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(student.values()), 3.0)  # per module: backbone, head
        torch.nn.utils.clip_grad_norm_(list(head.parameters()), 3.0)
        opt.step()
        with torch.no_grad():
            for k_ in teacher_p:
                teacher_p[k_].mul_(mom[it]).add_((1 - mom[it]) * student[k_].detach())
            for qt, qs in zip(teacher_head.parameters(), head.parameters()):
                qt.mul_(mom[it]).add_((1 - mom[it]) * qs.detach())
        losses.append(loss.item())
        terms.append([(d_local + d_global).item(), kl.item(), ib.item()])
    t["losses"] = torch.tensor(losses, dtype=torch.float64)
    t["terms"] = torch.tensor(terms, dtype=torch.float64)  # dino, koleo, ibot
    t.update({"final.student.backbone." + k_: v.detach() for k_, v in student.items()})
    t.update({"final.student.head." + k_: v.detach() for k_, v in head.named_parameters()})
    t.update({"final.teacher.backbone." + k_: v for k_, v in teacher_p.items()})
    meta = {"config": json.dumps(CFG), "lr": json.dumps(list(lr)), "wd": json.dumps(list(wd)),
            "momentum": json.dumps(list(mom)), "teacher_temp": json.dumps(list(temps))}
    st.save(os.path.join(out, "dinov2_train.safetensors"), t, meta)


if __name__ == "__main__":
    ibot_golden(sys.argv[1])
    train_golden(sys.argv[1])
