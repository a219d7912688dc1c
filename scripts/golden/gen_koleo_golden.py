"""KoLeo golden (dinov2/loss/koleo_loss.py semantics, rewritten with Debian's torch 1.13): loss and
gradient for a batch of embeddings, including two identical rows (distance 0: the eps terms).
Output: koleo.safetensors. Usage: gen_koleo_golden.py OUT_DIR"""
import os
import sys

import torch
import torch.nn.functional as F

import st


def koleo(x, eps=1e-8):
    pdist = torch.nn.PairwiseDistance(2, eps=1e-8)
    x = F.normalize(x, eps=eps, p=2, dim=-1)
    with torch.no_grad():
        dots = torch.mm(x, x.t())
        n = x.shape[0]
        dots.view(-1)[:: (n + 1)].fill_(-1)
        _, idx = torch.max(dots, dim=1)
    distances = pdist(x, x[idx])
    return -torch.log(distances + eps).mean()


def main(out):
    g = torch.Generator().manual_seed(17)
    x = torch.randn(10, 16, generator=g)
    x[7] = x[2] * 2.0  # same direction: a zero distance after normalisation
    x.requires_grad_(True)
    loss = koleo(x)
    loss.backward()
    st.save(os.path.join(out, "koleo.safetensors"), {"x": x.detach(), "loss": loss.detach().reshape(1), "grad": x.grad})


if __name__ == "__main__":
    main(sys.argv[1])
