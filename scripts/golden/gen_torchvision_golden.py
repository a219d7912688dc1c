"""torchvision vit_b_16 golden for `medfm embed` (Debian python3-torchvision 0.14).

Writes into OUT_DIR:
  tv_vit_b_16.safetensors   random-init weights (seeded), torchvision key layout (~330 MB, never committed)
  tv_images/*.png           crops of real images (skimage ihc.png, retina.jpg) at several sizes
  tv_expected.safetensors   features [N,768] in sorted file order: Resize(224, bicubic, antialias)
                            -> CenterCrop(224) -> Normalize(ImageNet) -> encoder -> class token;
                            ts_features [N,16] of ts_tiny.pt on the same inputs
  ts_tiny.pt                a small scripted conv net, for `medfm embed --torchscript`
Usage: gen_torchvision_golden.py OUT_DIR SKIMAGE_DATA_DIR
"""
import os
import sys

import torch
import torchvision
from PIL import Image
from torchvision.transforms import functional as TF
from torchvision.transforms import InterpolationMode

import st


def main(out, data):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    os.makedirs(os.path.join(out, "tv_images"), exist_ok=True)
    model = torchvision.models.vit_b_16()
    model.heads = torch.nn.Identity()  # features, not the zero-initialised head's logits
    model.eval()
    st.save(os.path.join(out, "tv_vit_b_16.safetensors"),
            {**model.state_dict(), "heads.head.weight": torch.zeros(1000, 768), "heads.head.bias": torch.zeros(1000)})
    torch.save(model.state_dict(), os.path.join(out, "tv_vit_b_16.pth"))  # as torchvision's own download is
    ihc = Image.open(os.path.join(data, "ihc.png")).convert("RGB")
    retina = Image.open(os.path.join(data, "retina.jpg")).convert("RGB")
    crops = {
        "a_ihc_224.png": ihc.crop((10, 20, 234, 244)),
        "b_ihc_full_512.png": ihc,
        "c_ihc_300x260.png": ihc.crop((100, 50, 400, 310)),
        "d_retina_640x480.png": retina.crop((300, 400, 940, 880)),
        "e_retina_150x180.png": retina.crop((600, 600, 750, 780)),
    }
    torch.manual_seed(1)
    tiny = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 16, 8, stride=8), torch.nn.GELU(),
                                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()).eval())
    tiny.save(os.path.join(out, "ts_tiny.pt"))
    feats, ts_feats = [], []
    for name in sorted(crops):
        crops[name].save(os.path.join(out, "tv_images", name))
        x = TF.to_tensor(Image.open(os.path.join(out, "tv_images", name)).convert("RGB"))
        x = TF.resize(x, 224, interpolation=InterpolationMode.BICUBIC, antialias=True)
        x = TF.center_crop(x, 224)
        x = TF.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
        with torch.no_grad():
            feats.append(model(x[None])[0])
            ts_feats.append(tiny(x[None])[0])
    st.save(os.path.join(out, "tv_expected.safetensors"),
            {"features": torch.stack(feats), "ts_features": torch.stack(ts_feats)},
            {"ids": ",".join(sorted(crops))})
    print(f"wrote torchvision vit_b_16 golden ({len(crops)} images) to {out}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
