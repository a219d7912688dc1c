"""Builds the tiling test slides from real tissue (skimage's ihc.png, immunohistochemistry):
ihc.png tiled 4x4 (2048x2048 px) on a white 2560x2400 canvas at (200, 120), saved by vips as
pyramidal JPEG TIFFs that OpenSlide reads (generic-tiff):
  t025.tif    0.25 um/px
  t02631.tif  0.2631 um/px: the same tissue resized by 0.25/0.2631 (same physical size)
  t05.tif     0.5 um/px: resized by 0.5
  pen.tif     0.25 um/px with thick marker strokes (blue, green, red, black) over tissue and glass;
              pen_strokes.json lists them (level-0 pixels) for the tests
  nompp.tif   0.25 um/px content but no resolution (vips' default 1 px/mm, which medfm rejects)
  wide.tif    t025's content placed at x = 35,840 on a 40,960 px wide level 0 (past OpenCV's
              32,767 px limit; 35,840 = 80 tiles of 448 px and a multiple of 1,024, so tiles,
              pyramid levels and JPEG blocks line up with t025's shifted by 35,840)
Usage: make_test_slides.py IHC_PNG OUT_DIR
"""
import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw

W, H, X0, Y0, N = 2560, 2400, 200, 120, 4


def vips(*args):
    subprocess.run(["vips", *map(str, args)], check=True)


def save_slide(src, out, mpp=None):
    opts = ["--tile", "--tile-width", "256", "--tile-height", "256", "--pyramid", "--compression", "jpeg", "--Q", "85"]
    if mpp:
        res = 1000.0 / mpp  # px per mm
        opts += ["--xres", f"{res:.6f}", "--yres", f"{res:.6f}"]
    vips("tiffsave", src, out, *opts)


def main(ihc, out):
    os.makedirs(out)
    tile = np.asarray(Image.open(ihc).convert("RGB"))
    canvas = np.full((H, W, 3), 255, np.uint8)
    canvas[Y0:Y0 + 512 * N, X0:X0 + 512 * N] = np.tile(tile, (N, N, 1))
    base = os.path.join(out, "base.png")
    Image.fromarray(canvas).save(base)
    save_slide(base, os.path.join(out, "t025.tif"), 0.25)
    save_slide(base, os.path.join(out, "nompp.tif"))
    for name, mpp in (("t02631.tif", 0.2631), ("t05.tif", 0.5)):
        scaled = os.path.join(out, name + ".v")
        vips("resize", base, scaled, 0.25 / mpp, "--kernel", "lanczos3")
        save_slide(scaled, os.path.join(out, name), mpp)
        os.remove(scaled)
    wide_x = 35840
    vips("embed", base, os.path.join(out, "wide.tif") + "[tile,tile-width=256,tile-height=256,pyramid,compression=jpeg,"
         "Q=85,xres=4000,yres=4000]", wide_x, 0, wide_x + W + 2560, H, "--extend", "white")
    # Marker strokes, 80 px (20 um) wide: each crosses glass and tissue.
    strokes = [("blue", (30, 60, 200), (40, 300, 2500, 600)), ("green", (40, 160, 60), (60, 2300, 2500, 1900)),
               ("red", (200, 30, 40), (2400, 100, 2450, 2350)), ("black", (20, 20, 20), (100, 1200, 2520, 1150))]
    im = Image.fromarray(canvas)
    d = ImageDraw.Draw(im)
    for _, rgb, (x0, y0, x1, y1) in strokes:
        d.line([(x0, y0), (x1, y1)], fill=rgb, width=80)
    pen = os.path.join(out, "pen.png")
    im.save(pen)
    save_slide(pen, os.path.join(out, "pen.tif"), 0.25)
    with open(os.path.join(out, "pen_strokes.json"), "w") as f:
        json.dump({"tissue_box": [X0, Y0, X0 + 512 * N, Y0 + 512 * N], "width": 80,
                   "strokes": [{"colour": c, "rgb": rgb, "line": line} for c, rgb, line in strokes]}, f)
    os.remove(base)
    os.remove(pen)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
