#!/usr/bin/env python3
"""Writes a large labelled feature set for the scale-out measurements of docs/scaling.md.

Usage: tools/make_scaling_features.py OUT_DIR [--n 200000] [--d 2048] [--classes 100] [--seed 0]

OUT_DIR/features.npy: N x D float32, class-dependent Gaussian features (class c's mean is a
random unit-scale vector, plus standard normal noise); OUT_DIR/labels.npy: N int64 labels, every
class present. Written in row chunks through a memory map, so memory stays small; keep the output
out of the repository (it is 1.6 GB at the defaults).
"""
import argparse
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.out_dir, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    labels = np.arange(a.n, dtype=np.int64) % a.classes
    rng.shuffle(labels)
    means = rng.standard_normal((a.classes, a.d)).astype(np.float32) * 0.5
    f = np.lib.format.open_memmap(os.path.join(a.out_dir, "features.npy"), mode="w+",
                                  dtype=np.float32, shape=(a.n, a.d))
    chunk = 8192
    for b in range(0, a.n, chunk):
        e = min(a.n, b + chunk)
        f[b:e] = means[labels[b:e]] + rng.standard_normal((e - b, a.d), dtype=np.float32)
    f.flush()
    del f
    np.save(os.path.join(a.out_dir, "labels.npy"), labels)
    print(f"wrote {a.out_dir}/features.npy ({a.n} x {a.d} float32) and labels.npy ({a.classes} classes)")


if __name__ == "__main__":
    main()
