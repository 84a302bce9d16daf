#!/usr/bin/env python3
"""Expected ring-allreduce time of tlkit's reduced statistics (docs/scaling.md).

Usage: tools/allreduce_model.py [--d 2048] [--classes 100]

A ring allreduce of S bytes over P processes sends 2 (P - 1) / P * S bytes per process in
2 (P - 1) steps: T = 2 (P - 1) / P * S / B + 2 (P - 1) * alpha, B the link bandwidth and alpha
the per-message latency. Printed for the statistics `tlkit score` reduces (the packed upper
triangle of F^T F and the class sums: D (D + 1) / 2 + D C doubles; SFDA adds a full D x D
weighted Gram and 2 D x C sums), at P = 8..256 on 10 Gb/s (alpha 20 us, TCP) and 100 Gb/s
(alpha 2 us, RDMA) links.
"""
import argparse


def ring_seconds(size_bytes, p, gbit_per_s, alpha):
    bandwidth = gbit_per_s * 1e9 / 8
    return 2 * (p - 1) / p * size_bytes / bandwidth + 2 * (p - 1) * alpha


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--classes", type=int, default=100)
    a = ap.parse_args()
    d, c = a.d, a.classes
    sets = {
        "one-pass statistics": 8 * (d * (d + 1) // 2 + d * c),
        "plus sfda's second pass": 8 * (d * (d + 1) // 2 + d * c + d * d + 2 * d * c),
    }
    links = [(10, 20e-6), (100, 2e-6)]
    print(f"D = {d}, C = {c}")
    for name, size in sets.items():
        print(f"\n{name}: {size / 1e6:.1f} MB per model")
        print("P      " + "  ".join(f"{g:>4} Gb/s (ms)" for g, _ in links))
        for p in (8, 16, 32, 64, 128, 256):
            row = "  ".join(f"{1e3 * ring_seconds(size, p, g, al):>14.1f}" for g, al in links)
            print(f"{p:<6} {row}")


if __name__ == "__main__":
    main()
