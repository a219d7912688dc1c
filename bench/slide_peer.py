"""Python peer for the whole-slide benchmark, written the way CLAM / TRIDENT users write it on
Debian's stack (openslide-python 1.2, OpenCV 4.6, Pillow, torch 1.13, torchvision 0.14, h5py).

  slide_peer.py tile SLIDE OUT.h5 TILE_LEVEL0
      CLAM's segmentation and patching: the level nearest a 64x downsample read whole, HSV
      saturation median-blurred (7), threshold 8, closing (4x4), contours with holes (RETR_CCOMP)
      filtered by area; then each contour's bounding box gridded at TILE_LEVEL0 and every
      candidate tested with cv2.pointPolygonTest (CLAM's four-point "easy" test, holes excluded)
      in a multiprocessing pool; coords saved to OUT.h5.
  slide_peer.py embed SLIDE COORDS.h5 WEIGHTS.safetensors CONFIG_JSON OUT.h5 [LIMIT] [fp32|bf16]
      A torch Dataset whose __getitem__ calls read_region per tile at level 0 (the nearest level
      at or finer than the target), PIL resize to 224, torchvision ToTensor + Normalize; a
      DataLoader with 2 workers, batch 32; the ViT in eager PyTorch (scripts/golden/vit_ref.py,
      timm's semantics, the same safetensors weights as medfm) under inference_mode; features
      saved to OUT.h5. bf16: the forward under torch.cpu.amp.autocast(dtype=torch.bfloat16).
Prints one JSON line: tiles, seconds, tiles_per_s, peak RSS (this process and its children).
"""
import json
import multiprocessing as mp
import os
import resource
import sys
import time

import cv2
import h5py
import numpy as np
import openslide
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "scripts", "golden"))
import vit_ref  # noqa: E402
from vit_peer import load  # noqa: E402


def peak_rss_mb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return own / 1024, kids / 1024


# ---- CLAM-style tissue + grid ----
def in_contour_easy(cont, pt, half):  # CLAM's isInContourV3_Easy: any of 4 points near the centre
    cx, cy = pt[0] + half, pt[1] + half
    shift = half // 2
    for p in ((cx - shift, cy - shift), (cx + shift, cy + shift), (cx + shift, cy - shift), (cx - shift, cy + shift)):
        if cv2.pointPolygonTest(cont, (float(p[0]), float(p[1])), False) >= 0:
            return True
    return False


def candidate(args):
    coord, cont, holes, patch = args
    if not in_contour_easy(cont, coord, patch // 2):
        return None
    for h in holes:
        if cv2.pointPolygonTest(h, (float(coord[0] + patch / 2), float(coord[1] + patch / 2)), False) > 0:
            return None
    return coord


def tile(slide_path, out, tile_level0):
    t0 = time.perf_counter()
    wsi = openslide.OpenSlide(slide_path)
    level = wsi.get_best_level_for_downsample(64)
    ds = wsi.level_downsamples[level]
    img = np.array(wsi.read_region((0, 0), level, wsi.level_dimensions[level]).convert("RGB"))
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    med = cv2.medianBlur(hsv[:, :, 1], 7)
    _, mask = cv2.threshold(med, 8, 255, cv2.THRESH_BINARY)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((4, 4), np.uint8))
    contours, hier = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    hier = hier[0] if hier is not None else []
    patch = int(round(tile_level0))
    min_area = 16 * (patch / ds) ** 2  # CLAM's a_t (16 reference patches)
    work = []
    for i, c in enumerate(contours):
        if hier[i][3] != -1 or cv2.contourArea(c) < min_area:
            continue
        holes = [(contours[j] * ds).astype(np.int32) for j in range(len(contours)) if hier[j][3] == i
                 and cv2.contourArea(contours[j]) > 1]
        cont = (c * ds).astype(np.int32)
        x, y, w, h = cv2.boundingRect(cont)
        xs, ys = np.meshgrid(np.arange(x, x + w, patch), np.arange(y, y + h, patch), indexing="xy")
        for coord in np.stack([xs.ravel(), ys.ravel()], 1):
            work.append((coord, cont, holes, patch))
    with mp.Pool(os.cpu_count()) as pool:
        coords = [c for c in pool.map(candidate, work, chunksize=256) if c is not None]
    coords = np.array(coords, dtype=np.int64).reshape(-1, 2)
    with h5py.File(out, "w") as f:
        f["coords"] = coords
    return {"tiles": len(coords), "candidates": len(work), "seconds": time.perf_counter() - t0}


# ---- embedding ----
class Tiles(torch.utils.data.Dataset):
    def __init__(self, slide_path, coords, size_level0):
        self.path, self.coords, self.size = slide_path, coords, size_level0
        self.wsi = None
        import torchvision.transforms as T
        self.tf = T.Compose([T.ToTensor(), T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])

    def __len__(self):
        return len(self.coords)

    def __getitem__(self, i):
        if self.wsi is None:  # one handle per worker process
            self.wsi = openslide.OpenSlide(self.path)
        x, y = self.coords[i]
        img = self.wsi.read_region((int(x), int(y)), 0, (self.size, self.size)).convert("RGB").resize((224, 224))
        return self.tf(img)


def embed(slide_path, coords_h5, weights, cfg_json, out, limit=None, precision="fp32"):
    torch.set_num_threads(os.cpu_count())
    cfg = json.loads(cfg_json)
    params = load(weights)
    with h5py.File(coords_h5, "r") as f:
        coords = f["coords"][:]
        size = int(f["coords"].attrs["patch_size_level0"])
    if limit:
        coords = coords[:limit]
    t0 = time.perf_counter()
    loader = torch.utils.data.DataLoader(Tiles(slide_path, coords, size), batch_size=32, num_workers=2)
    feats = []
    with torch.inference_mode(), torch.cpu.amp.autocast(enabled=precision == "bf16", dtype=torch.bfloat16):
        for batch in loader:
            feats.append(vit_ref.pool(cfg, vit_ref.forward_tokens(cfg, params, batch)[0]).float())
    feats = torch.cat(feats).numpy()
    with h5py.File(out, "w") as f:
        f["features"] = feats
        f["coords"] = coords
    dt = time.perf_counter() - t0
    own, kids = peak_rss_mb()
    return {"precision": precision, "tiles": len(coords), "seconds": dt, "tiles_per_s": len(coords) / dt, "threads": torch.get_num_threads(),
            "peak_rss_mb": own, "peak_rss_children_mb": kids}


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "tile":
        print(json.dumps(tile(sys.argv[2], sys.argv[3], float(sys.argv[4]))))
    elif len(sys.argv) >= 7 and sys.argv[1] == "embed":
        print(json.dumps(embed(*sys.argv[2:7], int(sys.argv[7]) if len(sys.argv) > 7 else None,
                               sys.argv[8] if len(sys.argv) > 8 else "fp32")))
    else:
        sys.exit(__doc__)
