#!/usr/bin/python3
"""Benchmark the NumPy LogME implementations (the baseline for tlkit's C++).

    /usr/bin/python3 tools/bench_logme_numpy.py [--n 20000] [--d 2048] [--c 100]
        [--repeat 1] [--seed 0] [--save-inputs DIR] [--skip-thuml] [--out FILE]

Data: float32 features = standard normal + a per-class mean (normal, scale
--shift), int64 labels uniform over C classes.  Times, best of --repeat:

  thuml      logme_numpy.logme_thuml: the reference algorithm (upcast, SVD of
             the Gram, explicit U = F V / s, per-class loop)
  eigh_fast  logme_numpy.logme_eigh_fast: one eigh of the Gram, vectorised
  floor      what any Gram-based method must pay in NumPy:
             F64 = F.astype(float64); G = F64.T @ F64; np.linalg.eigh(G)
             (also reported split into its three parts)

Prints one JSON object (seconds per item, agreement between thuml and
eigh_fast, numpy version, BLAS in use).  --save-inputs DIR writes
DIR/features.npy and DIR/labels.npy so the C++ benchmark can reuse the data.
"""

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logme_numpy  # noqa: E402


def make_inputs(n, d, c, seed=0, shift=1.0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, c, size=n, dtype=np.int64)
    means = (rng.standard_normal((c, d), dtype=np.float32) * np.float32(shift))
    features = rng.standard_normal((n, d), dtype=np.float32)
    features += means[labels]
    return np.ascontiguousarray(features), labels


def best_of(fn, repeat):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def blas_info():
    info = {}
    try:
        import threadpoolctl
        pools = threadpoolctl.threadpool_info()
        info["threadpoolctl"] = [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "filepath",
                                   "num_threads", "threading_layer", "architecture")}
            for p in pools]
    except ImportError:
        info["threadpoolctl"] = None
    if not info.get("threadpoolctl"):
        # Fall back to numpy's build configuration (names only; on Debian the
        # runtime library is chosen by update-alternatives).
        import contextlib
        import io
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            np.show_config()
        lines = [ln.strip() for ln in buf.getvalue().splitlines()
                 if "libraries" in ln or "library_dirs" in ln]
        info["numpy_show_config"] = sorted(set(lines))
        for alt in ("libblas.so.3-x86_64-linux-gnu", "liblapack.so.3-x86_64-linux-gnu"):
            p = os.path.join("/etc/alternatives", alt)
            if os.path.exists(p):
                info.setdefault("alternatives", {})[alt] = os.path.realpath(p)
    return info


def floor_parts(features):
    t0 = time.perf_counter()
    f64 = features.astype(np.float64)
    t1 = time.perf_counter()
    g = f64.T @ f64
    t2 = time.perf_counter()
    np.linalg.eigh(g)
    t3 = time.perf_counter()
    return t3 - t0, {"astype": t1 - t0, "gram": t2 - t1, "eigh": t3 - t2}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--c", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=float, default=1.0, help="scale of the class means")
    ap.add_argument("--save-inputs", metavar="DIR")
    ap.add_argument("--skip-thuml", action="store_true", help="do not time the slow reference")
    ap.add_argument("--out", metavar="FILE", help="also write the JSON here")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    features, labels = make_inputs(args.n, args.d, args.c, args.seed, args.shift)
    gen_s = time.perf_counter() - t0
    if args.save_inputs:
        os.makedirs(args.save_inputs, exist_ok=True)
        np.save(os.path.join(args.save_inputs, "features.npy"), features)
        np.save(os.path.join(args.save_inputs, "labels.npy"), labels)

    result = {
        "n": args.n, "d": args.d, "c": int(np.unique(labels).size), "repeat": args.repeat,
        "seed": args.seed, "features_dtype": str(features.dtype),
        "seconds": {}, "scores": {},
    }

    # warm-up (imports scipy.sparse, spins up the BLAS threads)
    wf, wl = make_inputs(64, 8, 2, seed=1)
    logme_numpy.logme_eigh_fast(wf, wl)
    logme_numpy.logme_thuml(wf, wl)

    best_fast, res_fast = best_of(
        lambda: logme_numpy.logme_eigh_fast(features, labels), args.repeat)
    result["seconds"]["eigh_fast"] = best_fast
    result["scores"]["eigh_fast"] = res_fast["score"]

    floor_best, floor_split = float("inf"), None
    for _ in range(args.repeat):
        tot, parts = floor_parts(features)
        if tot < floor_best:
            floor_best, floor_split = tot, parts
    result["seconds"]["floor"] = floor_best
    result["seconds"]["floor_parts"] = floor_split

    if not args.skip_thuml:
        best_th, res_th = best_of(
            lambda: logme_numpy.logme_thuml(features, labels), args.repeat)
        result["seconds"]["thuml"] = best_th
        result["scores"]["thuml"] = res_th["score"]
        result["max_rel_diff_thuml_vs_eigh_fast"] = max(
            abs(a - b) / max(abs(a), 1e-300)
            for a, b in zip(res_th["per_target"], res_fast["per_target"]))
        result["speedup_eigh_fast_vs_thuml"] = best_th / best_fast

    result["input_generation_seconds"] = gen_s
    result["numpy"] = np.__version__
    result["python"] = platform.python_version()
    result["blas"] = blas_info()
    result["cpu_count"] = os.cpu_count()
    result["env_threads"] = {k: os.environ[k] for k in
                             ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                             if k in os.environ}
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
