"""Golden fixture for medfm/data/stain_test.cpp: skimage (0.19) colour deconvolution and CIELAB
on a crop of skimage's ihc.png, and numpy references for HED adjustment, Reinhard and Macenko
(the steps of Macenko et al. 2009 as commonly implemented: Io 240, alpha 1, beta 0.15; the plane's
eigenvectors signed to a positive sum). Usage: gen_stain_golden.py IHC_PNG OUT_DIR
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from skimage import color

import st


def macenko(img, he_ref, max_ref, io=240.0, alpha=1.0, beta=0.15):
    I = img.reshape(-1, 3) * 255.0
    od = -np.log((I + 1) / io)
    tissue = od[np.all(od >= beta, axis=1)]
    _, vecs = np.linalg.eigh(np.cov(tissue.T))
    vecs = vecs[:, 1:3].copy()
    for k in range(2):
        if vecs[:, k].sum() < 0:
            vecs[:, k] *= -1
    proj = tissue @ vecs
    phi = np.arctan2(proj[:, 1], proj[:, 0])
    lo, hi = np.percentile(phi, alpha), np.percentile(phi, 100 - alpha)
    v_min = vecs @ np.array([np.cos(lo), np.sin(lo)])
    v_max = vecs @ np.array([np.cos(hi), np.sin(hi)])
    he = np.stack([v_min, v_max], 1) if v_min[0] > v_max[0] else np.stack([v_max, v_min], 1)
    c = np.linalg.lstsq(he, od.T, rcond=None)[0]
    max_c = np.array([np.percentile(c[0], 99), np.percentile(c[1], 99)])
    c = c / max_c[:, None] * max_ref[:, None]
    out = np.clip(io * np.exp(-he_ref @ c), 0, 255) / 255.0
    return out.reshape(3, *img.shape[:2]), he, max_c


def main(ihc, out):
    os.makedirs(out, exist_ok=True)
    img = np.asarray(Image.open(ihc).convert("RGB"))[100:196, 140:236].astype(np.float64) / 255.0  # 96x96 crop
    ref = np.asarray(Image.open(ihc).convert("RGB"))[300:396, 300:396].astype(np.float64) / 255.0
    chw = lambda a: torch.from_numpy(np.ascontiguousarray(np.moveaxis(a, -1, 0)))
    hed = color.rgb2hed(img)
    scale, shift = np.array([1.1, 0.9, 1.05]), np.array([0.01, -0.02, 0.0])
    adjusted = color.hed2rgb(hed * scale + shift)
    lab = color.rgb2lab(img)
    ref_lab = color.rgb2lab(ref).reshape(-1, 3)
    tm, ts = ref_lab.mean(0), ref_lab.std(0)
    l = lab.reshape(-1, 3)
    rein = color.lab2rgb(((l - l.mean(0)) / l.std(0) * ts + tm).reshape(lab.shape))
    he_ref = np.array([[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]])
    max_ref = np.array([1.9705, 1.0308])
    mac, he, max_c = macenko(img, he_ref, max_ref)
    t = {"input": chw(img).float(), "reference": chw(ref).float(), "hed": chw(hed).float(),
         "hed_rgb": chw(color.hed2rgb(hed)).float(), "hed_adjusted": chw(adjusted).float(),
         "lab": chw(lab).float(), "lab_rgb": chw(color.lab2rgb(lab)).float(), "reinhard": chw(rein).float(),
         "reinhard_target": torch.from_numpy(np.concatenate([tm, ts])), "macenko": torch.from_numpy(mac).float(),
         "macenko_he": torch.from_numpy(he), "macenko_max_c": torch.from_numpy(max_c)}
    st.save(os.path.join(out, "stain.safetensors"), t)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1], sys.argv[2])
