"""Golden fixtures for adapt/mil.h: PyTorch references of the three MIL heads with medfm's parameter
names (mean pooling + MLP; gated attention as CLAM's Attn_Net_Gated; a TransMIL-style pre-norm
transformer with a class token), each on one bag [37, 24] in eval mode: logits, tile weights, the
cross-entropy loss for label 1 and every parameter's gradient.
Writes OUT/mil_<method>.safetensors: p.<name>, g.<name>, bag, logits, weights, loss.
Usage: gen_mil_golden.py OUT"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

import st

D, H, A, C = 24, 16, 8, 3


class Mean(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc, self.classifier = nn.Linear(D, H), nn.Linear(H, C)

    def forward(self, x):
        h = F.relu(self.fc(x))
        return self.classifier(h.mean(0)), torch.full((x.shape[0],), 1.0 / x.shape[0], dtype=x.dtype)


class AbMil(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, H)
        self.attention_a, self.attention_b, self.attention_c = nn.Linear(H, A), nn.Linear(H, A), nn.Linear(A, 1)
        self.classifier = nn.Linear(H, C)

    def forward(self, x):
        h = F.relu(self.fc(x))
        a = self.attention_c(torch.tanh(self.attention_a(h)) * torch.sigmoid(self.attention_b(h))).squeeze(1)
        w = torch.softmax(a, 0)
        return self.classifier(w @ h), w


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.qkv, self.proj = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm2, self.fc1, self.fc2 = nn.LayerNorm(dim), nn.Linear(dim, 2 * dim), nn.Linear(2 * dim, dim)

    def forward(self, x):
        n, d = x.shape
        hd = d // self.heads
        q, k, v = self.qkv(self.norm1(x)).reshape(n, 3, self.heads, hd).permute(1, 2, 0, 3)
        attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), -1)
        self.cls_attention = attn[:, 0].mean(0)
        y = x + self.proj((attn @ v).permute(1, 0, 2).reshape(n, d))
        return y + self.fc2(F.gelu(self.fc1(self.norm2(y))))


class TransMil(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(D, H)
        self.cls_token = nn.Parameter(torch.randn(1, H) * 0.02)
        self.blocks = nn.ModuleList([Block(H, 4), Block(H, 4)])
        self.norm, self.classifier = nn.LayerNorm(H), nn.Linear(H, C)

    def forward(self, x):
        x = torch.cat([self.cls_token, F.relu(self.fc(x))])
        for b in self.blocks:
            x = b(x)
        w = self.blocks[-1].cls_attention[1:]
        return self.classifier(self.norm(x[0])), w / w.sum()


def main(out):
    for name, cls in (("mean", Mean), ("abmil", AbMil), ("transmil", TransMil)):
        torch.manual_seed(4)
        m = cls().double()
        with torch.no_grad():  # non-trivial norms
            for n, p in m.named_parameters():
                if "norm" in n:
                    p.add_(0.1 * torch.randn_like(p))
        bag = torch.randn(37, D, dtype=torch.float64)
        logits, w = m(bag)
        loss = F.cross_entropy(logits[None], torch.tensor([1]))
        loss.backward()
        t = {"bag": bag, "logits": logits.detach(), "weights": w.detach(), "loss": loss.detach().reshape(1)}
        for n, p in m.named_parameters():
            t["p." + n] = p.detach()
            t["g." + n] = p.grad
        st.save(os.path.join(out, f"mil_{name}.safetensors"), t)


if __name__ == "__main__":
    main(sys.argv[1])
