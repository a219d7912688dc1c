"""10-step DINO training golden (facebookresearch/dino's train_one_epoch, with medfm's parameter
groups: no weight decay on biases, 1-D parameters, cls_token and pos_embed) on a tiny ViT
(vit_ref, timm semantics; local crops resample pos_embed as timm does) with fixed views:
2 global 32 px + 2 local 16 px crops of 4 images per step. AdamW (betas 0.9/0.999), cosine lr with
warm-up, cosine weight decay, teacher momentum cosine to 1, teacher temperature warm-up, DINO's
per-parameter gradient clipping at 3.0, last layer frozen for 2 steps, EMA teacher.
Output dino_train.safetensors: initial parameters ("p." backbone, "h." head), the views, per-step
losses, the final student and teacher parameters; schedules in metadata.
Usage: gen_dino_train_golden.py OUT_DIR"""
import json
import os
import sys

import numpy as np
import torch

import st
import vit_ref
from gen_dino_golden import DINOHead, DINOLoss, cosine_scheduler

CFG = dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, mlp_hidden=64, qkv_bias=True,
           class_token=True, reg_tokens=0, no_embed_class=False, init_values=0.0, swiglu=False, norm_eps=1e-6,
           pool="cls")
STEPS, B, K = 10, 4, 64


def main(out):
    g = torch.Generator().manual_seed(3)
    p = vit_ref.trained_params(CFG, g)
    torch.manual_seed(3)
    head = DINOHead(CFG["embed_dim"], K, hidden_dim=48, bottleneck_dim=16)
    t = {"p." + k: v.clone() for k, v in p.items()}
    t.update({"h." + k: v.detach().clone() for k, v in head.named_parameters()})
    student = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    teacher_p = {k: v.clone() for k, v in p.items()}
    teacher_head = DINOHead(CFG["embed_dim"], K, hidden_dim=48, bottleneck_dim=16)
    teacher_head.load_state_dict(head.state_dict())
    for q in teacher_head.parameters():
        q.requires_grad = False

    lr = cosine_scheduler(1e-3, 1e-5, STEPS, warmup=3)
    wd = cosine_scheduler(0.04, 0.4, STEPS)
    mom = cosine_scheduler(0.9, 1.0, STEPS)
    temps = np.concatenate((np.linspace(0.04, 0.07, 5), np.full(STEPS - 5, 0.07)))
    loss_fn = DINOLoss(K, 4, temps)
    named = list(student.items()) + [("head." + n, q) for n, q in head.named_parameters() if q.requires_grad]
    decay = [q for n, q in named if q.ndim > 1 and not n.endswith(".bias") and n not in ("cls_token", "pos_embed")]
    no_decay = [q for n, q in named if not (q.ndim > 1 and not n.endswith(".bias") and n not in ("cls_token", "pos_embed"))]
    opt = torch.optim.AdamW([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], lr=0.0, betas=(0.9, 0.999),
                            eps=1e-8)

    def embed(params, x):
        return vit_ref.pool(CFG, vit_ref.forward_tokens(CFG, params, x)[0])

    losses = []
    for it in range(STEPS):
        views = [torch.randn(B, 3, 32, 32, generator=g) for _ in range(2)] + \
                [torch.randn(B, 3, 16, 16, generator=g) for _ in range(2)]
        for v, x in enumerate(views):
            t[f"view.{it}.{v}"] = x
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = lr[it]
        opt.param_groups[0]["weight_decay"] = wd[it]
        with torch.no_grad():
            t_out = teacher_head(embed(teacher_p, torch.cat(views[:2])))
        s_out = head(torch.cat([embed(student, torch.cat(views[:2])), embed(student, torch.cat(views[2:]))]))
        loss = loss_fn(s_out, t_out, it)
        opt.zero_grad()
        loss.backward()
        for _, q in named:  # DINO's clip_gradients(model, 3.0)
            if q.grad is not None:
                coef = 3.0 / (q.grad.data.norm(2) + 1e-6)
                if coef < 1:
                    q.grad.data.mul_(coef)
        if it < 2:  # cancel_gradients_last_layer
            for n, q in head.named_parameters():
                if "last_layer" in n:
                    q.grad = None
        opt.step()
        with torch.no_grad():
            for k in teacher_p:
                teacher_p[k].mul_(mom[it]).add_((1 - mom[it]) * student[k].detach())
            for qt, qs in zip(teacher_head.parameters(), head.parameters()):
                qt.mul_(mom[it]).add_((1 - mom[it]) * qs.detach())
        losses.append(loss.item())
    t["losses"] = torch.tensor(losses, dtype=torch.float64)
    t.update({"final.student.backbone." + k: v.detach() for k, v in student.items()})
    t.update({"final.student.head." + k: v.detach() for k, v in head.named_parameters()})
    t.update({"final.teacher.backbone." + k: v for k, v in teacher_p.items()})
    meta = {"config": json.dumps(CFG), "lr": json.dumps(list(lr)), "wd": json.dumps(list(wd)),
            "momentum": json.dumps(list(mom)), "teacher_temp": json.dumps(list(temps))}
    st.save(os.path.join(out, "dino_train.safetensors"), t, meta)


if __name__ == "__main__":
    main(sys.argv[1])
