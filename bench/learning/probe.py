"""Linear-probe and kNN accuracy of features (medfm embed HDF5 files, meta/label) or raw pixels.
Linear: standardised features, multinomial logistic regression (L-BFGS), C from a log grid (1e-3..10) by 3-fold
cross-validation on the training set only. kNN: cosine similarity, k=20, DINO's temperature-weighted
votes (T=0.07). Prints JSON {linear, knn, n_train, n_test, dim}.
Usage: probe.py TRAIN.h5 TEST.h5   or   probe.py --pixels TRAIN.csv TEST.csv"""
import csv
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def load_h5(path):
    import h5py
    f = h5py.File(path, "r")
    x = f["features"][:]
    y = np.array([int(v) for v in f["meta/label"][:].astype(str)])
    return x.astype(np.float64), y


def load_pixels(csv_path):
    from PIL import Image
    base = os.path.dirname(csv_path)
    xs, ys = [], []
    with open(csv_path) as f:
        for r in csv.DictReader(f):
            xs.append(np.asarray(Image.open(os.path.join(base, r["path"])), dtype=np.float64).ravel() / 255)
            ys.append(int(r["label"]))
    return np.stack(xs), np.array(ys)


def knn(xtr, ytr, xte, yte, k=20, T=0.07):
    a = xtr / np.linalg.norm(xtr, axis=1, keepdims=True).clip(1e-12)
    b = xte / np.linalg.norm(xte, axis=1, keepdims=True).clip(1e-12)
    sim = b @ a.T
    idx = np.argsort(-sim, axis=1)[:, :k]
    classes = np.unique(ytr)
    votes = np.zeros((len(xte), len(classes)))
    for c_i, c in enumerate(classes):
        w = np.exp(np.take_along_axis(sim, idx, 1) / T) * (ytr[idx] == c)
        votes[:, c_i] = w.sum(1)
    return float((classes[votes.argmax(1)] == yte).mean())


def main(argv):
    if argv[0] == "--pixels":
        (xtr, ytr), (xte, yte) = load_pixels(argv[1]), load_pixels(argv[2])
    else:
        (xtr, ytr), (xte, yte) = load_h5(argv[0]), load_h5(argv[1])
    clf = GridSearchCV(make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000)),
                       {"logisticregression__C": np.logspace(-3, 1, 5)}, cv=3, n_jobs=2)
    clf.fit(xtr, ytr)
    lin = float((clf.predict(xte) == yte).mean())
    print(json.dumps({"linear": lin, "knn": knn(xtr, ytr, xte, yte), "n_train": len(ytr), "n_test": len(yte),
                      "dim": int(xtr.shape[1]), "C": float(clf.best_params_["logisticregression__C"])}))


if __name__ == "__main__":
    main(sys.argv[1:])
