"""MAE golden (facebookresearch/mae models_mae.py semantics, rewritten with Debian's torch 1.13):
random_masking from given noise (argsort, keep the first len_keep, mask in the original order,
ids_restore), patchify, and the normalised-pixel loss on removed patches with its gradient.
Output: mae.safetensors. Usage: gen_mae_golden.py OUT_DIR"""
import os
import sys

import torch

import st


def random_masking(x, mask_ratio, noise):
    N, L, D = x.shape
    len_keep = int(L * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, D))
    mask = torch.ones([N, L])
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, dim=1, index=ids_restore)
    return x_masked, mask, ids_restore


def patchify(imgs, p):
    h = w = imgs.shape[2] // p
    x = imgs.reshape(shape=(imgs.shape[0], 3, h, p, w, p))
    x = torch.einsum("nchpwq->nhwpqc", x)
    return x.reshape(shape=(imgs.shape[0], h * w, p ** 2 * 3))


def forward_loss(imgs, pred, mask, p):
    target = patchify(imgs, p)
    mean = target.mean(dim=-1, keepdim=True)
    var = target.var(dim=-1, keepdim=True)
    target = (target - mean) / (var + 1.e-6) ** .5
    loss = ((pred - target) ** 2).mean(dim=-1)
    return (loss * mask).sum() / mask.sum()


def main(out):
    g = torch.Generator().manual_seed(13)
    N, P, S, D = 3, 8, 32, 12
    L = (S // P) ** 2
    x = torch.randn(N, L, D, generator=g)
    noise = torch.rand(N, L, generator=g)
    imgs = torch.randn(N, 3, S, S, generator=g)
    pred = torch.randn(N, L, P * P * 3, generator=g, requires_grad=True)
    kept, mask, ids_restore = random_masking(x, 0.75, noise)
    loss = forward_loss(imgs, pred, mask, P)
    loss.backward()
    st.save(os.path.join(out, "mae.safetensors"),
            {"x": x, "noise": noise, "imgs": imgs, "pred": pred.detach(), "kept": kept, "mask": mask,
             "ids_restore": ids_restore, "patches": patchify(imgs, P), "loss": loss.detach().reshape(1),
             "grad_pred": pred.grad})


if __name__ == "__main__":
    main(sys.argv[1])
