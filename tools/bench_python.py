#!/usr/bin/python3
"""Benchmark tlkit's Python module against the NumPy LogME implementations.

    PYTHONPATH=build-py/python /usr/bin/python3 tools/bench_python.py \\
        [--n 20000] [--d 2048] [--c 100] [--repeat 1] [--seed 0] [--json FILE]

Data: tools/bench_logme_numpy.py's make_inputs (float32 N x D features, C-order, standard
normal plus a per-class mean; int64 labels uniform over C classes). Best of --repeat rounds,
each round timing every method once (interleaved, so that a change in the machine's load
affects all of them alike):

  tlkit exact      tlkit.logme(F, y)                    (the array is read in place, no copy)
  tlkit thuml      tlkit.logme(F, y, mode="thuml")
  tlkit stream     tlkit.LogmeAccumulator over 1000-row chunks, then result()
  numpy eigh_fast  tools/logme_numpy.py logme_eigh_fast (one eigh, all classes at once)
  numpy thuml      tools/logme_numpy.py logme_thuml     (the reference algorithm of thuml/LogME)

Prints the ratios numpy / tlkit (how many times faster tlkit is), the agreement of the thuml
scores, the load average and the BLAS in use (threadpoolctl). Ratios are what to compare:
seconds vary by tens of percent between runs on shared machines.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_logme_numpy  # noqa: E402
import logme_numpy  # noqa: E402
import tlkit  # noqa: E402


def stream(f, y, chunk=1000):
    acc = tlkit.LogmeAccumulator()
    for b in range(0, f.shape[0], chunk):
        acc.update(f[b:b + chunk], y[b:b + chunk])
    return acc.result()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--c", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-numpy-thuml", action="store_true",
                    help="skip the slow reference algorithm")
    ap.add_argument("--json", help="also write the results to this file")
    a = ap.parse_args()

    t0 = time.perf_counter()
    f, y = bench_logme_numpy.make_inputs(a.n, a.d, a.c, a.seed)
    gen = time.perf_counter() - t0
    info = tlkit._debug_view_info(f)
    assert not info["copied"], info

    runs = {
        "tlkit exact": lambda: tlkit.logme(f, y).score,
        "tlkit thuml": lambda: tlkit.logme(f, y, mode="thuml").score,
        "tlkit stream": lambda: stream(f, y).score,
        "numpy eigh_fast": lambda: logme_numpy.logme_eigh_fast(f, y)["score"],
    }
    if not a.skip_numpy_thuml:
        runs["numpy thuml"] = lambda: logme_numpy.logme_thuml(f, y)["score"]
    # One untimed call each of the two fast methods first: thread pools, page faults of the
    # first large allocations.
    runs["tlkit exact"]()
    runs["numpy eigh_fast"]()
    seconds = {name: float("inf") for name in runs}
    scores = {}
    for r in range(a.repeat):
        for name, fn in runs.items():
            t, scores[name] = bench_logme_numpy.best_of(fn, 1)
            seconds[name] = min(seconds[name], t)
            print("round %d  %-16s %8.3f s   score %.15g" % (r + 1, name, t, scores[name]),
                  flush=True)
    print()
    for name in runs:
        print("best     %-16s %8.3f s" % (name, seconds[name]))

    base = seconds["tlkit exact"]
    ratios = {"numpy eigh_fast / tlkit exact": seconds["numpy eigh_fast"] / base,
              "numpy eigh_fast / tlkit thuml": seconds["numpy eigh_fast"] / seconds["tlkit thuml"]}
    if "numpy thuml" in seconds:
        ratios["numpy thuml / tlkit exact"] = seconds["numpy thuml"] / base
        ratios["numpy thuml / tlkit thuml"] = seconds["numpy thuml"] / seconds["tlkit thuml"]
    ratios["tlkit stream / tlkit exact"] = seconds["tlkit stream"] / base
    thuml_ref = scores.get("numpy thuml", scores["numpy eigh_fast"])
    agreement = abs(scores["tlkit thuml"] - thuml_ref) / abs(thuml_ref)

    print("\nshape %dx%d, C=%d, float32 C-order features (passed without a copy)" %
          (a.n, a.d, a.c))
    for k, v in ratios.items():
        print("%-32s %6.2f x" % (k, v))
    print("tlkit thuml vs NumPy thuml score: relative difference %.2e" % agreement)
    print("load average (1, 5, 15 min): %.2f %.2f %.2f on %d CPUs" % (os.getloadavg() +
                                                                    (os.cpu_count(),)))
    blas = bench_logme_numpy.blas_info()
    for pool in blas.get("threadpoolctl") or []:
        print("%s %s %s (%s), %s threads: %s" % (pool.get("user_api"), pool.get("internal_api"),
                                                  pool.get("version"), pool.get("architecture"),
                                                  pool.get("num_threads"), pool.get("filepath")))
    result = {"load_average": os.getloadavg(), "n": a.n, "d": a.d, "c": a.c, "repeat": a.repeat, "seed": a.seed,
              "seconds": seconds, "scores": scores, "ratios": ratios,
              "thuml_relative_difference": agreement, "input_generation_seconds": gen,
              "tlkit": tlkit.__version__, "numpy": np.__version__,
              "python": platform.python_version(), "cpu_count": os.cpu_count(), "blas": blas}
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
