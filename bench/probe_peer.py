"""Probe benchmark peer and data: `make OUT N_TRAIN N_TEST DIM CLASSES` writes OUT/{train,test}.h5 in
medfm embed's layout (features, ids, meta/label) with Gaussian class clusters (float32); `linear` and
`knn` run scikit-learn's equivalent of `medfm probe` on those files and print one JSON line with the
wall time (reading the files included) and the test accuracy.
  linear: StandardScaler + LogisticRegression(lbfgs, L2, max_iter 1000) for each C of a log grid,
          chosen by balanced accuracy on a stratified fifth of the training rows, refit on all rows.
  knn:    KNeighborsClassifier(k=20, cosine, brute) with DINO's vote weights exp(similarity / 0.07).
Usage: probe_peer.py make OUT N_TRAIN N_TEST DIM CLASSES | linear|knn TRAIN.h5 TEST.h5 [C_STEPS=5]"""
import json
import sys
import time

import h5py
import numpy as np


def make(out, n_train, n_test, dim, classes):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 1, (classes, dim)).astype(np.float32) * 0.08
    for name, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, classes, n)
        x = (rng.normal(0, 1, (n, dim)).astype(np.float32) + centres[y])
        with h5py.File(f"{out}/{name}.h5", "w") as f:
            f.create_dataset("features", data=x, chunks=(min(n, 1024), dim))
            f.create_dataset("ids", data=np.array([f"{name}{i}" for i in range(n)], dtype=object), dtype=h5py.string_dtype())
            f.create_dataset("meta/label", data=np.array([str(v) for v in y], dtype=object), dtype=h5py.string_dtype())


def load(path):
    with h5py.File(path) as f:
        return f["features"][:], np.array([int(v) for v in f["meta/label"][:].astype(str)])


def linear(train, test, c_steps):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import StandardScaler
    t0 = time.perf_counter()
    (xtr, ytr), (xte, yte) = load(train), load(test)
    fit_idx, val_idx = next(StratifiedKFold(5, shuffle=True, random_state=0).split(xtr, ytr))
    sc = StandardScaler().fit(xtr[fit_idx])
    a, b = sc.transform(xtr[fit_idx]), sc.transform(xtr[val_idx])
    best, best_c = -1, None
    for c in np.logspace(-4, 4, c_steps):
        m = LogisticRegression(C=c, max_iter=1000).fit(a, ytr[fit_idx])
        v = balanced_accuracy_score(ytr[val_idx], m.predict(b))
        if v > best:
            best, best_c = v, c
    sc = StandardScaler().fit(xtr)
    m = LogisticRegression(C=best_c, max_iter=1000).fit(sc.transform(xtr), ytr)
    acc = float((m.predict(sc.transform(xte)) == yte).mean())
    return {"seconds": time.perf_counter() - t0, "accuracy": acc, "c": float(best_c)}


def knn(train, test):
    from sklearn.neighbors import KNeighborsClassifier
    t0 = time.perf_counter()
    (xtr, ytr), (xte, yte) = load(train), load(test)
    m = KNeighborsClassifier(n_neighbors=20, metric="cosine", algorithm="brute",
                             weights=lambda d: np.exp((1 - d) / 0.07)).fit(xtr, ytr)
    acc = float((m.predict(xte) == yte).mean())
    return {"seconds": time.perf_counter() - t0, "accuracy": acc}


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "make":
        make(a[2], *(int(v) for v in a[3:7]))
    elif a[1] == "linear":
        print(json.dumps({"tool": "scikit-learn", "method": "linear", **linear(a[2], a[3], int(a[4]) if len(a) > 4 else 5)}))
    else:
        print(json.dumps({"tool": "scikit-learn", "method": "knn", **knn(a[2], a[3])}))
