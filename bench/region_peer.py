"""openslide-python peer for the slide region benchmark: N random SIZE x SIZE regions at LEVEL
(positions from a fixed seed, inside the level), each read with read_region and converted to an
RGB numpy array. Each repeat opens the slide afresh (cold OpenSlide tile cache, warm page cache);
best of N repeats; at most 2 threads (openslide-python releases the GIL inside OpenSlide).
Usage: region_peer.py SLIDE [--n 500] [--size 256] [--level 0] [--seed 0] [--repeats 3]
                            [--threads 1|2]          (Debian's /usr/bin/python3)
Prints one JSON object."""
import argparse
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import openslide


def positions(slide, n, size, level, seed):
    """Level-0 (x, y) of n regions lying inside the level."""
    w, h = slide.level_dimensions[level]
    f = slide.level_downsamples[level]
    rng = random.Random(seed)
    return [(int(rng.randrange(w - size + 1) * f), int(rng.randrange(h - size + 1) * f))
            for _ in range(n)]


def run(path, xy, size, level, threads):
    slide = openslide.OpenSlide(path)

    def one(p):
        rgb = np.asarray(slide.read_region(p, level, (size, size)).convert("RGB"))
        return int(rgb.sum(dtype=np.uint64))

    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        checksum = sum(pool.map(one, xy))
    dt = time.perf_counter() - t0
    slide.close()
    return dt, checksum


def main():
    ap = argparse.ArgumentParser(description="openslide-python region reading peer")
    ap.add_argument("slide")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--level", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2, choices=(1, 2))
    a = ap.parse_args()
    with openslide.OpenSlide(a.slide) as s:
        xy = positions(s, a.n, a.size, a.level, a.seed)
        dims = s.level_dimensions[a.level]
    run(a.slide, xy[: min(20, a.n)], a.size, a.level, a.threads)  # warm-up
    times, checksum = [], None
    for _ in range(a.repeats):
        dt, checksum = run(a.slide, xy, a.size, a.level, a.threads)
        times.append(dt)
    best = min(times)
    print(json.dumps({
        "impl": f"openslide-python {openslide.__version__} (OpenSlide {openslide.__library_version__})",
        "slide": os.path.abspath(a.slide), "level": a.level, "level_size": list(dims),
        "region": [a.size, a.size], "n": a.n, "seed": a.seed, "threads": a.threads,
        "repeats": a.repeats, "best_s": best, "median_s": sorted(times)[len(times) // 2],
        "regions_per_s": a.n / best, "mpix_per_s": a.n * a.size * a.size / best / 1e6,
        "checksum": checksum}))


if __name__ == "__main__":
    sys.exit(main())
