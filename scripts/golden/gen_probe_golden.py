"""Golden fixtures for eval/ metrics and splits and adapt/ probes, from scikit-learn 1.2 (Debian's
python3-sklearn) and numpy references:
  metrics.safetensors  predictions of several cases (binary with tied scores, 5 classes, a class
                       absent from y_true, grades) + bootstrap resamples; expected values in metadata
  probe.safetensors    real features: Brodmann-area patches of the Colin27 T1 (mricron-data), raw
                       16x16 pixels; sklearn LogisticRegression (lbfgs, L2) over a C grid with a given
                       validation split; DINO's kNN; SimpleShot on a given support set; sklearn's
                       StratifiedGroupKFold(shuffle=False) on synthetic patients
Usage: gen_probe_golden.py OUT MRICRON_DIR"""
import json
import os
import sys
import warnings

import nibabel as nib
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (accuracy_score, balanced_accuracy_score, cohen_kappa_score, f1_score, roc_auc_score)
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler

import st

warnings.filterwarnings("ignore")


def auroc_macro(y, s, n_classes):
    """sklearn's roc_auc_score: binary on column 1; else the mean one-vs-rest AUROC over the classes
    present in y (sklearn itself raises when a class is absent)."""
    if n_classes == 2:
        return roc_auc_score(y, s[:, 1]) if len(np.unique(y)) == 2 else float("nan")
    present = [c for c in range(n_classes) if 0 < (y == c).sum() < len(y)]
    if len(present) == n_classes:
        return roc_auc_score(y, s, multi_class="ovr", average="macro", labels=list(range(n_classes)))
    if not present:
        return float("nan")
    return float(np.mean([roc_auc_score(y == c, s[:, c]) for c in present]))


def metric(name, y, p, s, n_classes):
    if name == "accuracy":
        return accuracy_score(y, p)
    if name == "balanced_accuracy":
        return balanced_accuracy_score(y, p)
    if name == "f1_weighted":
        return f1_score(y, p, average="weighted", zero_division=0)
    if name == "kappa_quadratic":
        return cohen_kappa_score(y, p, weights="quadratic", labels=list(range(n_classes)))
    if name == "auroc_macro":
        return auroc_macro(y, s, n_classes)
    raise ValueError(name)


NAMES = ["accuracy", "balanced_accuracy", "f1_weighted", "kappa_quadratic", "auroc_macro"]


def metric_cases(out):
    rng = np.random.default_rng(7)
    cases = {}

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    # binary, scores rounded to one decimal: many ties
    y = rng.integers(0, 2, 150)
    p1 = np.clip(np.round(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.25, 150), 1), 0, 1)
    s = np.stack([1 - p1, p1], 1)
    cases["binary_ties"] = (y, (p1 > 0.5).astype(int), s, 2)
    # five classes, informative logits
    y = rng.integers(0, 5, 300)
    s = softmax(rng.normal(0, 1, (300, 5)) + 1.5 * np.eye(5)[y])
    cases["multi5"] = (y, s.argmax(1), s, 5)
    # a class absent from y_true (but predicted sometimes)
    y = rng.choice([0, 1, 2, 4], 120)
    s = softmax(rng.normal(0, 1, (120, 5)) + 1.0 * np.eye(5)[y])
    cases["absent_class"] = (y, s.argmax(1), s, 5)
    # grades 0..4, predictions off by a grade or two
    y = rng.integers(0, 5, 200)
    p = np.clip(y + rng.choice([-2, -1, 0, 0, 0, 1], 200), 0, 4)
    s = softmax(rng.normal(0, 1, (200, 5)) + 2.0 * np.eye(5)[p])
    cases["grades"] = (y, p, s, 5)
    tensors, meta = {}, {}
    for name, (y, p, s, c) in cases.items():
        n = len(y)
        res = rng.integers(0, n, (200, n))
        exp = {"n_classes": c}
        for m in NAMES:
            exp[m] = metric(m, y, p, s, c)
            vals = []
            for r in res:
                try:
                    v = metric(m, y[r], p[r], s[r], c)
                except ValueError:
                    v = float("nan")
                if np.isfinite(v):
                    vals.append(v)
            exp[m + "_ci"] = [float(np.percentile(vals, 2.5)), float(np.percentile(vals, 97.5)), len(vals)]
        tensors[name + ".y_true"] = torch.tensor(y, dtype=torch.int64)
        tensors[name + ".y_pred"] = torch.tensor(p, dtype=torch.int64)
        tensors[name + ".scores"] = torch.tensor(s, dtype=torch.float64)
        tensors[name + ".resamples"] = torch.tensor(res, dtype=torch.int64)
        meta[name] = json.dumps(exp)
    meta["cases"] = json.dumps(list(cases))
    st.save(os.path.join(out, "metrics.safetensors"), tensors, meta)


def brodmann_pixels(src, per_area=16, patch=16, seed=0):
    """Left-hemisphere (train) and mirrored right-hemisphere (test) patches centred in each
    Brodmann area with >= 200 voxels per side: raw pixels / 255."""
    t1 = nib.load(os.path.join(src, "ch2.nii.gz"))
    lab = nib.load(os.path.join(src, "brodmann.nii.gz"))
    img = np.asarray(t1.dataobj).astype(np.float32)
    lbl = np.asarray(lab.dataobj).astype(np.int32)
    x0 = int(round(-t1.affine[0, 3]))
    rng = np.random.default_rng(seed)
    h = patch // 2
    padded = np.pad(img, ((h, h), (h, h), (0, 0)))
    xs = {"train": [], "test": []}
    ys = {"train": [], "test": []}
    xi = np.arange(lbl.shape[0])[:, None, None]
    for a in range(1, lbl.max() + 1):
        left, right = np.argwhere((lbl == a) & (xi < x0)), np.argwhere((lbl == a) & (xi > x0))
        if len(left) < 200 or len(right) < 200:
            continue
        for split, vox in (("train", left), ("test", right)):
            for i, j, k in vox[rng.choice(len(vox), size=per_area, replace=False)]:
                p = padded[i: i + patch, j: j + patch, k]
                if split == "test":
                    p = p[::-1]
                xs[split].append(np.clip(p, 0, 255).ravel() / 255.0)
                ys[split].append(a)
    classes = sorted(set(ys["train"]))
    idx = {a: n for n, a in enumerate(classes)}
    return (np.array(xs["train"], np.float32), np.array([idx[a] for a in ys["train"]]),
            np.array(xs["test"], np.float32), np.array([idx[a] for a in ys["test"]]), len(classes))


def knn_ref(xtr, ytr, xte, n_classes, k=20, T=0.07):
    a = xtr / np.linalg.norm(xtr, axis=1, keepdims=True).clip(1e-12)
    b = xte / np.linalg.norm(xte, axis=1, keepdims=True).clip(1e-12)
    sim = b @ a.T
    idx = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    w = np.exp(np.take_along_axis(sim, idx, 1) / T)
    votes = np.zeros((len(xte), n_classes))
    for c in range(n_classes):
        votes[:, c] = (w * (ytr[idx] == c)).sum(1)
    return votes / votes.sum(1, keepdims=True)


def simpleshot_ref(xs, ys, xq, n_classes):
    mu = xs.mean(0, keepdims=True)
    s = (xs - mu) / np.linalg.norm(xs - mu, axis=1, keepdims=True).clip(1e-12)
    q = (xq - mu) / np.linalg.norm(xq - mu, axis=1, keepdims=True).clip(1e-12)
    protos = np.stack([s[ys == c].mean(0) for c in range(n_classes)])
    d = np.linalg.norm(q[:, None, :] - protos[None], axis=2)
    return d.argmin(1)


def probe_case(out, mricron):
    xtr, ytr, xte, yte, C = brodmann_pixels(mricron)
    rng = np.random.default_rng(3)
    val = np.zeros(len(ytr), bool)
    for c in range(C):  # a quarter of each class's training rows validates
        rows = np.flatnonzero(ytr == c)
        val[rng.choice(rows, size=len(rows) // 4, replace=False)] = True
    grid = np.logspace(-4, 4, 9)
    sc = StandardScaler().fit(xtr[~val])
    val_bal = []
    for c in grid:
        m = LogisticRegression(C=c, max_iter=5000, tol=1e-6).fit(sc.transform(xtr[~val]), ytr[~val])
        val_bal.append(balanced_accuracy_score(ytr[val], m.predict(sc.transform(xtr[val]))))
    best = grid[int(np.argmax(val_bal))]
    sc_all = StandardScaler().fit(xtr)
    final = LogisticRegression(C=best, max_iter=5000, tol=1e-6).fit(sc_all.transform(xtr), ytr)
    test_acc = accuracy_score(yte, final.predict(sc_all.transform(xte)))
    # One fit for a direct comparison of the solution (lbfgs stops on its own criteria near 220
    # iterations with max |gradient| ~3e-6 of the mean objective: close to, not at, the optimum).
    tight = LogisticRegression(C=0.1, max_iter=20000, tol=1e-10).fit(sc_all.transform(xtr), ytr)
    proba = tight.predict_proba(sc_all.transform(xte))
    knn = knn_ref(xtr.astype(np.float64), ytr, xte.astype(np.float64), C)
    support = np.sort(np.concatenate([np.flatnonzero(ytr == c)[:4] for c in range(C)]))
    ss_pred = simpleshot_ref(xtr[support].astype(np.float64), ytr[support], xte.astype(np.float64), C)
    # StratifiedGroupKFold on synthetic patients: 3 classes, 40 patients with 1..6 rows each.
    g_rng = np.random.default_rng(11)
    groups, gy = [], []
    for pnum in range(40):
        n = int(g_rng.integers(1, 7))
        cls = int(g_rng.integers(0, 3))
        for _ in range(n):
            groups.append(f"P{pnum:03d}")
            gy.append(cls if g_rng.random() < 0.8 else int(g_rng.integers(0, 3)))
    gy = np.array(gy)
    fold = np.zeros(len(gy), np.int64)
    for f, (_, te) in enumerate(StratifiedGroupKFold(n_splits=5, shuffle=False).split(np.zeros(len(gy)), gy, groups)):
        fold[te] = f
    meta = {"n_classes": C, "grid": json.dumps(list(grid)), "val_balanced_accuracy": json.dumps(val_bal),
            "best_c": best, "test_accuracy": test_acc, "tight_c": 0.1, "groups": json.dumps(groups),
            "tight_test_accuracy": accuracy_score(yte, tight.predict(sc_all.transform(xte)))}
    st.save(os.path.join(out, "probe.safetensors"), {
        "x_train": torch.tensor(xtr), "y_train": torch.tensor(ytr, dtype=torch.int64),
        "x_test": torch.tensor(xte), "y_test": torch.tensor(yte, dtype=torch.int64),
        "val": torch.tensor(val.astype(np.uint8)), "tight_proba": torch.tensor(proba, dtype=torch.float64),
        "tight_coef": torch.tensor(tight.coef_.T.copy(), dtype=torch.float64),
        "tight_intercept": torch.tensor(tight.intercept_, dtype=torch.float64),
        "knn_proba": torch.tensor(knn, dtype=torch.float64), "support": torch.tensor(support, dtype=torch.int64),
        "simpleshot_pred": torch.tensor(ss_pred, dtype=torch.int64),
        "group_y": torch.tensor(gy, dtype=torch.int64), "group_fold": torch.tensor(fold)}, meta)
    print(f"probe golden: {C} areas, {len(ytr)} train / {len(yte)} test, best C {best}, test acc {test_acc:.4f}")


if __name__ == "__main__":
    metric_cases(sys.argv[1])
    probe_case(sys.argv[1], sys.argv[2])
