"""DINO golden (facebookresearch/dino semantics, written here with Debian's torch 1.13):
DINOHead (3-layer MLP, GELU, bottleneck, L2 norm, weight-normalised last layer with g frozen at 1),
DINOLoss (teacher centring and sharpening, student temperature 0.1, cross-entropy over crop pairs
without same-view pairs, centre momentum 0.9), two steps (the centre moves between them), the
gradients of the loss w.r.t. the student's output and every head parameter, one EMA update, and
the cosine / warm-up schedules. Output: dino.safetensors (+ schedules in metadata).
Usage: gen_dino_golden.py OUT_DIR"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import st


class DINOHead(nn.Module):
    def __init__(self, in_dim, out_dim, nlayers=3, hidden_dim=2048, bottleneck_dim=256):
        super().__init__()
        layers = [nn.Linear(in_dim, hidden_dim), nn.GELU()]
        for _ in range(nlayers - 2):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.GELU()]
        layers.append(nn.Linear(hidden_dim, bottleneck_dim))
        self.mlp = nn.Sequential(*layers)
        self.last_layer = nn.utils.weight_norm(nn.Linear(bottleneck_dim, out_dim, bias=False))
        self.last_layer.weight_g.data.fill_(1)
        self.last_layer.weight_g.requires_grad = False

    def forward(self, x):
        x = F.normalize(self.mlp(x), dim=-1, p=2)
        return self.last_layer(x)


class DINOLoss(nn.Module):
    def __init__(self, out_dim, ncrops, teacher_temps, student_temp=0.1, center_momentum=0.9):
        super().__init__()
        self.student_temp, self.center_momentum, self.ncrops = student_temp, center_momentum, ncrops
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.teacher_temp_schedule = teacher_temps

    def forward(self, student_output, teacher_output, step):
        student_out = (student_output / self.student_temp).chunk(self.ncrops)
        temp = self.teacher_temp_schedule[step]
        teacher_out = F.softmax((teacher_output - self.center) / temp, dim=-1).detach().chunk(2)
        total_loss, n_loss_terms = 0, 0
        for iq, q in enumerate(teacher_out):
            for v in range(len(student_out)):
                if v == iq:
                    continue
                total_loss += torch.sum(-q * F.log_softmax(student_out[v], dim=-1), dim=-1).mean()
                n_loss_terms += 1
        total_loss /= n_loss_terms
        with torch.no_grad():
            batch_center = torch.sum(teacher_output, dim=0, keepdim=True) / len(teacher_output)
            self.center = self.center * self.center_momentum + batch_center * (1 - self.center_momentum)
        return total_loss


def cosine_scheduler(base, final, total, warmup=0, start_warmup=0, freeze=0):  # DINOv2's CosineScheduler
    iters = np.arange(total - warmup - freeze)
    sched = final + 0.5 * (base - final) * (1 + np.cos(np.pi * iters / len(iters)))
    return np.concatenate((np.zeros(freeze), np.linspace(start_warmup, base, warmup), sched))


def main(out):
    torch.manual_seed(0)
    IN, K, HID, BOT, B, NCROPS = 24, 40, 48, 16, 3, 4
    head = DINOHead(IN, K, hidden_dim=HID, bottleneck_dim=BOT)
    with torch.no_grad():  # weights that make every term matter
        for p in head.mlp.parameters():
            p.normal_(0, 0.3)
    teacher_temps = np.concatenate((np.linspace(0.04, 0.07, 3), np.full(7, 0.07)))
    loss_fn = DINOLoss(K, NCROPS, teacher_temps)
    t = {}
    x = torch.randn(NCROPS * B, IN)
    teacher_out = torch.randn(2 * B, K) * 3
    t["input"] = x
    t["teacher_out"] = teacher_out
    for name, p in head.named_parameters():
        t["p." + name] = p.detach().clone()
    out_s = head(x)
    t["head_out"] = out_s.detach()
    out_s.retain_grad()
    loss1 = loss_fn(out_s, teacher_out, 1)
    loss1.backward()
    t["loss1"] = loss1.detach().reshape(1)
    t["center1"] = loss_fn.center.clone()
    t["grad_student_out"] = out_s.grad.detach()
    for name, p in head.named_parameters():
        if p.grad is not None:
            t["grad." + name] = p.grad.detach()
    with torch.no_grad():
        loss2 = loss_fn(head(x), teacher_out * 0.5, 5)
    t["loss2"] = loss2.reshape(1)
    t["center2"] = loss_fn.center.clone()
    # EMA: teacher = 0.9 * teacher + 0.1 * student, teacher from a second random head
    teacher = DINOHead(IN, K, hidden_dim=HID, bottleneck_dim=BOT)
    for name, p in teacher.named_parameters():
        t["ema_teacher." + name] = p.detach().clone()
    with torch.no_grad():
        for (n, pt), (_, ps) in zip(teacher.named_parameters(), head.named_parameters()):
            pt.mul_(0.9).add_(ps.detach(), alpha=0.1)
    for name, p in teacher.named_parameters():
        t["ema_after." + name] = p.detach().clone()
    meta = {"cosine": json.dumps(list(cosine_scheduler(5e-4, 1e-6, 50, warmup=10, start_warmup=1e-5, freeze=3))),
            "teacher_temp": json.dumps(list(teacher_temps)),
            "dims": json.dumps(dict(in_dim=IN, out_dim=K, hidden_dim=HID, bottleneck_dim=BOT, batch=B, ncrops=NCROPS))}
    st.save(os.path.join(out, "dino.safetensors"), t, meta)


if __name__ == "__main__":
    main(sys.argv[1])
