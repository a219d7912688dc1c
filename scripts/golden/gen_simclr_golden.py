"""SimCLR golden: the NT-Xent loss (google-research/simclr semantics: L2-normalised embeddings,
cosine / temperature, the other view as the positive, all other samples of both views negatives,
mean cross-entropy over the 2N anchors) and its gradients, and the v1 projection head
(Linear-ReLU-Linear), on Debian's torch 1.13. Output: simclr.safetensors.
Usage: gen_simclr_golden.py OUT_DIR"""
import os
import sys

import torch
import torch.nn.functional as F

import st


def nt_xent(z1, z2, t):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / t
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)


def main(out):
    g = torch.Generator().manual_seed(11)
    head = torch.nn.Sequential(torch.nn.Linear(24, 32), torch.nn.ReLU(), torch.nn.Linear(32, 16))
    with torch.no_grad():
        for p in head.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    h1, h2 = torch.randn(6, 24, generator=g), torch.randn(6, 24, generator=g)
    t = {"h1": h1, "h2": h2}
    t.update({"p.mlp." + k: v.detach().clone() for k, v in head.state_dict().items()})
    z1, z2 = head(h1), head(h2)
    z1.retain_grad()
    z2.retain_grad()
    loss = nt_xent(z1, z2, 0.5)
    loss.backward()
    t.update({"z1": z1.detach(), "z2": z2.detach(), "loss": loss.detach().reshape(1), "grad_z1": z1.grad, "grad_z2": z2.grad})
    t.update({"grad.mlp." + k: p.grad for k, p in head.named_parameters()})
    st.save(os.path.join(out, "simclr.safetensors"), t)


if __name__ == "__main__":
    main(sys.argv[1])
