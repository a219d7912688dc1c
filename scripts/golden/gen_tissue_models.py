"""TorchScript tissue models for the --tissue-model tests (Debian's torch 1.13, torch.jit.script):
  tissue_chroma2.pt   [1,3,H,W] RGB 0..1 -> [1,2,H,W]: class 1 where max-min over RGB > 20/255
  tissue_chroma_half.pt  -> [1,1,H/2,W/2] logits of the same rule on 2x2-averaged pixels
  tissue_bad_shape.pt -> [H,W] (not [1,C,h,w]): medfm must refuse it
Usage: gen_tissue_models.py OUT_DIR"""
import os
import sys

import torch


class Chroma2(torch.nn.Module):
    def forward(self, x):
        c = x.amax(1, keepdim=True) - x.amin(1, keepdim=True) - 20.0 / 255
        return torch.cat([-c, c], 1)


class ChromaHalf(torch.nn.Module):
    def forward(self, x):
        x = torch.nn.functional.avg_pool2d(x, 2)
        return (x.amax(1, keepdim=True) - x.amin(1, keepdim=True) - 20.0 / 255) * 100


class BadShape(torch.nn.Module):
    def forward(self, x):
        return x[0, 0]


def main(out):
    os.makedirs(out, exist_ok=True)
    for name, m in (("tissue_chroma2.pt", Chroma2()), ("tissue_chroma_half.pt", ChromaHalf()),
                    ("tissue_bad_shape.pt", BadShape())):
        torch.jit.script(m).save(os.path.join(out, name))


if __name__ == "__main__":
    main(sys.argv[1])
