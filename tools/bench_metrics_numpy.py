#!/usr/bin/python3
"""Every transferability metric: tlkit (Python module) against the NumPy references, on real features.

    PYTHONPATH=build/python /usr/bin/python3 tools/bench_metrics_numpy.py FEATURES_DIR \\
        [--repeat 1] [--skip nleep,logistic] [--json FILE]

FEATURES_DIR is what `tlkit extract` writes (features.npy, labels.npy, and logits.npy: its
softmax gives LEEP's and NCE's source-class probabilities). Each metric is timed alone, as a user
would call it: `tlkit.score(F, y, probs=P, metrics=[m])` (NCTI's and ETran's components together,
as one call each), and the function of tools/metrics_numpy.py that the C++ tests are checked
against (tools/logme_numpy.py's `logme_eigh_fast`, the fastest NumPy LogME we could write, for
LogME). Best of --repeat for tlkit; the NumPy side runs once. Prints a Markdown table: seconds,
numpy / tlkit (how many times faster tlkit is) and the largest relative difference of the scores.
Both sides use the same BLAS (OpenBLAS, all cores); ratios are what to compare.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logme_numpy  # noqa: E402
import metrics_numpy as ref  # noqa: E402
import tlkit  # noqa: E402

# metric (or group) -> (tlkit metric names, NumPy callable returning {name: score}). LogME runs
# in thuml mode on both sides, so that the scores compare (docs/benchmarks.md's LogME section
# times the exact mode against the same NumPy code).
def _numpy_cases(f, y, p):
    return {
        "logme": (["logme"], lambda: {"logme": logme_numpy.logme_eigh_fast(f, y)["score"]}),
        "leep": (["leep"], lambda: {"leep": ref.leep(p, y)}),
        "nce": (["nce"], lambda: {"nce": ref.nce(p, y)}),
        "hscore": (["hscore"], lambda: {"hscore": ref.hscore(f, y)}),
        "hscore_shrink": (["hscore_shrink"], lambda: {"hscore_shrink": ref.hscore_shrink(f, y)}),
        "transrate": (["transrate"], lambda: {"transrate": ref.transrate(f, y)}),
        "gbc": (["gbc"], lambda: {"gbc": ref.gbc(f, y)}),
        "sfda": (["sfda"], lambda: {"sfda": ref.sfda(f, y)}),
        "etran": (["etran_lda", "etran_energy"], lambda: _etran(f, y)),
        "ncti": (["ncti_seli", "ncti_ncc", "ncti_vc"], lambda: _ncti(f, y)),
        "parc": (["parc"], lambda: {"parc": ref.parc(f, y)}),
        "knn": (["knn"], lambda: {"knn": ref.knn_loo(f, y)}),
        "logistic": (["logistic"], lambda: {"logistic": ref.logistic_split(f, y)}),
        "nleep": (["nleep"], lambda: {"nleep": ref.nleep(f, y)}),
    }


def _etran(f, y):
    c = ref.etran_components(f, y)
    return {"etran_lda": c["lda"], "etran_energy": c["energy"]}


def _ncti(f, y):
    c = ref.ncti_components(f, y)
    return {"ncti_seli": c["seli"], "ncti_ncc": c["ncc"], "ncti_vc": c["vc"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("features_dir")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip", default="", help="comma-separated metric groups not to run")
    ap.add_argument("--json", help="also write the rows here")
    a = ap.parse_args()
    f = np.load(os.path.join(a.features_dir, "features.npy"))
    y = np.load(os.path.join(a.features_dir, "labels.npy")).astype(np.int64)
    logits = np.load(os.path.join(a.features_dir, "logits.npy")).astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    skip = {s for s in a.skip.split(",") if s}
    print(f"N = {f.shape[0]}, D = {f.shape[1]}, C = {len(np.unique(y))}, Cs = {p.shape[1]}; "
          f"load average {os.getloadavg()[0]:.2f}", flush=True)
    print("| metric | tlkit s | NumPy s | NumPy / tlkit | max relative difference |")
    print("|---|---|---|---|---|")
    rows = []
    for group, (names, run_numpy) in _numpy_cases(f, y, p).items():
        if group in skip:
            continue
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            got = tlkit.score(f, y, probs=p, metrics=names,
                              **({"logme_mode": "thuml"} if group == "logme" else {}))
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        want = run_numpy()
        t_np = time.perf_counter() - t0
        diff = max(abs(got[m] - want[m]) / max(abs(want[m]), 1e-300) for m in names)
        rows.append({"metric": group, "tlkit_s": best, "numpy_s": t_np, "max_rel_diff": diff})
        print(f"| {group} | {best:.3f} | {t_np:.3f} | {t_np / best:.1f} | {diff:.1e} |",
              flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(rows, fh, indent=1)


if __name__ == "__main__":
    main()
