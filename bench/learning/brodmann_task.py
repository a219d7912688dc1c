"""The Brodmann task of ../shared/DATA.md: axial patches of the Colin27 T1 (ch2.nii.gz, 1 mm) centred in
Brodmann areas (brodmann.nii.gz on the same grid). Train: left hemisphere; test: right hemisphere
mirrored in x, so train and test tissue are disjoint. One subject: it measures feature quality, not
generalisation across patients.
Writes OUT/{train,test}/*.png (gray, PATCH x PATCH) and OUT/{train,test}.csv (path,id,label); areas with
fewer than 200 voxels in either hemisphere are left out.
Usage: brodmann_task.py MRICRON_DIR OUT [PER_AREA=40] [PATCH=32] [SEED=0]"""
import csv
import os
import sys

import nibabel as nib
import numpy as np
from PIL import Image


def main(src, out, per_area=40, patch=32, seed=0):
    t1 = nib.load(os.path.join(src, "ch2.nii.gz"))
    lab = nib.load(os.path.join(src, "brodmann.nii.gz"))
    assert np.allclose(t1.affine, lab.affine) and t1.shape == lab.shape
    assert np.allclose(np.diag(t1.affine)[:3], 1)  # RAS, 1 mm: voxel i is x = i + affine[0, 3]
    img = np.asarray(t1.dataobj).astype(np.float32)
    lbl = np.asarray(lab.dataobj).astype(np.int32)
    x0 = int(round(-t1.affine[0, 3]))  # voxel index of x = 0 mm
    rng = np.random.default_rng(seed)
    h = patch // 2
    padded = np.pad(img, ((h, h), (h, h), (0, 0)))
    areas = []
    for a in range(1, lbl.max() + 1):
        left = np.argwhere((lbl == a) & (np.arange(lbl.shape[0])[:, None, None] < x0))
        right = np.argwhere((lbl == a) & (np.arange(lbl.shape[0])[:, None, None] > x0))
        if len(left) >= 200 and len(right) >= 200:
            areas.append((a, left, right))
    rows = {"train": [], "test": []}
    for split in rows:
        os.makedirs(os.path.join(out, split), exist_ok=True)
    for a, left, right in areas:
        for split, vox in (("train", left), ("test", right)):
            pick = vox[rng.choice(len(vox), size=min(per_area, len(vox)), replace=False)]
            for n, (i, j, k) in enumerate(pick):
                p = padded[i: i + patch, j: j + patch, k]  # rows x (R->L... as stored), cols y
                p = p.T[::-1]  # display: rows anterior->posterior from the top, columns x
                if split == "test":
                    p = p[:, ::-1]  # mirror x: the right hemisphere shown as a left one
                name = f"{split}/a{a:02d}_{n:03d}.png"
                Image.fromarray(np.clip(p, 0, 255).astype(np.uint8)).save(os.path.join(out, name))
                rows[split].append((name, f"a{a:02d}_{n:03d}", a))
    for split, r in rows.items():
        with open(os.path.join(out, split + ".csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "id", "label"])
            w.writerows(r)
    print(f"{len(areas)} areas, {len(rows['train'])} train / {len(rows['test'])} test patches of {patch} px -> {out}")


if __name__ == "__main__":
    a = sys.argv
    main(a[1], a[2], *(int(x) for x in a[3:]))
