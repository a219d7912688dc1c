"""MIL benchmark peer and data. `make OUT N_BAGS TILES DIM` writes OUT/bags/*.h5 (features float32
[TILES, DIM], Gaussian with a class shift on a tenth of the tiles of positive bags) and
OUT/labels.csv (slide, label, split: the last 10 bags test). `train OUT EPOCHS` trains the same
gated-attention head as `medfm mil --method abmil` (hidden 256, attention 128, dropout 0.25, AdamW
lr 2e-4 wd 1e-5, one bag per step, bags read from their files every epoch by a DataLoader with one
prefetching worker, as CLAM does) in PyTorch eager on 2 threads, then scores the test bags; prints
JSON with the wall time and epochs/s.
Usage: mil_peer.py make OUT N_BAGS TILES DIM | train OUT EPOCHS"""
import csv
import json
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make(out, n_bags, tiles, dim):
    os.makedirs(f"{out}/bags", exist_ok=True)
    rng = np.random.default_rng(0)
    shift = rng.normal(0, 1, dim).astype(np.float32) * 0.5
    rows = []
    for b in range(n_bags):
        y = b % 2
        x = rng.normal(0, 1, (tiles, dim)).astype(np.float32)
        if y:
            x[: tiles // 10] += shift
        with h5py.File(f"{out}/bags/b{b:04d}.h5", "w") as f:
            f["features"] = x
        rows.append([f"b{b:04d}", y, "test" if b >= n_bags - 10 else "train"])
    with open(f"{out}/labels.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["slide", "label", "split"])
        w.writerows(rows)


class AbMil(nn.Module):
    def __init__(self, dim, hidden=256, att=128, classes=2, dropout=0.25):
        super().__init__()
        self.fc, self.drop = nn.Linear(dim, hidden), nn.Dropout(dropout)
        self.attention_a, self.attention_b, self.attention_c = nn.Linear(hidden, att), nn.Linear(hidden, att), nn.Linear(att, 1)
        self.classifier = nn.Linear(hidden, classes)

    def forward(self, x):
        h = self.drop(F.relu(self.fc(x)))
        w = torch.softmax(self.attention_c(torch.tanh(self.attention_a(h)) * torch.sigmoid(self.attention_b(h))).squeeze(1), 0)
        return self.classifier(w @ h), w


class Bags(torch.utils.data.Dataset):
    def __init__(self, rows, root):
        self.rows, self.root = rows, root

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        with h5py.File(f"{self.root}/{self.rows[i][0]}.h5") as f:
            return torch.from_numpy(f["features"][:]), int(self.rows[i][1])


def train(out, epochs):
    torch.set_num_threads(2)
    torch.manual_seed(0)
    rows = list(csv.reader(open(f"{out}/labels.csv")))[1:]
    tr = [r for r in rows if r[2] != "test"]
    te = [r for r in rows if r[2] == "test"]
    t0 = time.perf_counter()
    dim = h5py.File(f"{out}/bags/{rows[0][0]}.h5")["features"].shape[1]
    m = AbMil(dim)
    opt = torch.optim.AdamW(m.parameters(), lr=2e-4, weight_decay=1e-5)
    loader = torch.utils.data.DataLoader(Bags(tr, f"{out}/bags"), batch_size=None, shuffle=True, num_workers=1)
    for _ in range(epochs):
        m.train()
        for x, y in loader:
            logits, _ = m(x)
            loss = F.cross_entropy(logits[None], torch.tensor([y]))
            opt.zero_grad()
            loss.backward()
            opt.step()
    m.eval()
    correct = 0
    with torch.no_grad():
        for x, y in Bags(te, f"{out}/bags"):
            correct += int(m(x)[0].argmax()) == y
    s = time.perf_counter() - t0
    print(json.dumps({"tool": "pytorch", "seconds": s, "epochs_per_s": epochs / s, "test_accuracy": correct / len(te)}))


if __name__ == "__main__":
    a = sys.argv
    if a[1] == "make":
        make(a[2], *(int(v) for v in a[3:6]))
    else:
        train(a[2], int(a[3]))
