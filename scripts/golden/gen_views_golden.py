"""Golden for the deterministic view operations (medfm/data/views.h) against torchvision 0.14's
functional transforms on tensors (Debian python3-torchvision): resized_crop (bicubic and bilinear,
antialias, then clamped to [0,1] as a PIL image is), adjust_brightness / contrast / saturation /
hue, rgb_to_grayscale, gaussian_blur, solarize, on a crop of a real fundus photograph.
Output: views.safetensors. Usage: gen_views_golden.py OUT_DIR SKIMAGE_DATA_DIR"""
import os
import sys

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

import st


def main(out, data):
    img = TF.to_tensor(Image.open(os.path.join(data, "retina.jpg")).convert("RGB"))[:, 500:564, 600:680].contiguous()
    t = {"img": img}
    t["crop_bicubic"] = TF.resized_crop(img, 5, 7, 40, 50, [32, 32], InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
    t["crop_bilinear"] = TF.resized_crop(img, 0, 3, 64, 61, [96, 96], InterpolationMode.BILINEAR, antialias=True).clamp(0, 1)
    t["brightness"] = TF.adjust_brightness(img, 1.3)
    t["contrast"] = TF.adjust_contrast(img, 0.7)
    t["saturation"] = TF.adjust_saturation(img, 1.4)
    t["hue_pos"] = TF.adjust_hue(img, 0.08)
    t["hue_neg"] = TF.adjust_hue(img, -0.3)
    t["gray"] = TF.rgb_to_grayscale(img, num_output_channels=3)
    t["blur"] = TF.gaussian_blur(img, [9, 9], [1.3, 1.3])
    t["solarize"] = TF.solarize(img, 128.0 / 255.0)
    st.save(os.path.join(out, "views.safetensors"), {k: v.contiguous() for k, v in t.items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
