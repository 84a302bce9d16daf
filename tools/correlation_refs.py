#!/usr/bin/python3
"""Writes tests/data/correlation/refs.json: SciPy's rank correlations on fixed vectors.

The C++ tests (tests/core/test_correlation.cpp, tests/cli/test_cli_evaluate.cpp) hold tlkit's
weighted_tau, weighted_tau_one_sided, kendall_tau_b, spearman_rho, pearson_r and average_ranks to
these values. Every vector is generated here from a fixed seed and stored in the JSON, so the
tests do not depend on NumPy's random streams. Regenerate with

    /usr/bin/python3 tools/correlation_refs.py

(Debian's python3 with python3-numpy and python3-scipy; the SciPy version is recorded in the
file). Undefined coefficients (a constant input) are stored as null.
"""

import csv
import json
import math
import os
import sys

import numpy as np
import scipy
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "data", "correlation")


def num(v):
    v = float(v)
    return None if math.isnan(v) else v


def quiet(fn, *args, **kwargs):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def refs_for(name, x, y):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    return {
        "name": name,
        "x": x.tolist(),
        "y": y.tolist(),
        # rank=True (the default): mean of the x-ranked and y-ranked one-sided values.
        "weighted_tau": num(stats.weightedtau(x, y).statistic),
        # rank=None: importance by decreasing lexicographic (x, y) only.
        "weighted_tau_x_rank": num(stats.weightedtau(x, y, rank=None).statistic),
        "weighted_tau_y_rank": num(stats.weightedtau(y, x, rank=None).statistic),
        "kendall_tau_b": num(quiet(stats.kendalltau, x, y).statistic),
        "spearman": num(quiet(stats.spearmanr, x, y).statistic),
        "pearson": num(quiet(stats.pearsonr, x, y)[0]),
        "rank_x": stats.rankdata(x, method="average").tolist(),
    }


def cases():
    rng = np.random.default_rng(20240611)
    out = []
    # Continuous (no ties), several sizes, independent and correlated.
    for n in (2, 3, 5, 10, 50, 200, 600):
        x = rng.normal(size=n)
        out.append(refs_for(f"continuous_indep_n{n}", x, rng.normal(size=n)))
        out.append(refs_for(f"continuous_corr_n{n}", x, x + 0.7 * rng.normal(size=n)))
    # Integer-valued draws from a small range: ties in x, in y, and joint ties.
    for n, k in ((6, 3), (10, 4), (30, 5), (100, 8), (300, 12), (500, 4)):
        x = rng.integers(0, k, size=n)
        y = rng.integers(0, k, size=n)
        out.append(refs_for(f"ties_both_n{n}_k{k}", x, y))
        out.append(refs_for(f"ties_both_corr_n{n}_k{k}", x, np.minimum(x + rng.integers(0, 2, n), k)))
    # Ties on one side only.
    for n in (8, 40, 150):
        out.append(refs_for(f"ties_x_only_n{n}", rng.integers(0, 5, size=n), rng.normal(size=n)))
        out.append(refs_for(f"ties_y_only_n{n}", rng.normal(size=n), rng.integers(0, 5, size=n)))
    # Many joint ties: duplicated (x, y) pairs.
    base_x = rng.integers(0, 6, size=15)
    base_y = rng.integers(0, 6, size=15)
    out.append(refs_for("joint_ties_dup", np.r_[base_x, base_x[:10]], np.r_[base_y, base_y[:10]]))
    # Ties at the very top of the ranking (where the hyperbolic weights are largest).
    out.append(refs_for("top_ties", [9, 9, 9, 5, 4, 3, 2, 1], [1, 8, 3, 5, 4, 6, 2, 7]))
    # Perfect agreement, perfect reversal, wide dynamic range, negative values.
    v = rng.normal(size=25)
    out.append(refs_for("identical", v, v))
    out.append(refs_for("reversed", v, -v))
    out.append(refs_for("wide_range", np.exp(rng.normal(scale=30, size=40)), rng.normal(size=40)))
    # scipy's docstring example.
    out.append(refs_for("scipy_doc", [12, 2, 1, 12, 2], [1, 4, 7, 1, 0]))
    # Constant inputs: undefined (null).
    out.append(refs_for("constant_x", [3.0] * 6, [1, 2, 3, 4, 5, 6]))
    out.append(refs_for("constant_y", [1, 2, 3, 4, 5, 6], [0.5] * 6))
    return out


def tllib():
    """SciPy's values on the TLlib CIFAR10 table (tests/data/correlation/tllib_cifar10_*.csv)."""
    with open(os.path.join(OUT_DIR, "tllib_cifar10_truth.csv"), newline="") as f:
        acc = {r["model"]: float(r["accuracy"]) for r in csv.DictReader(f)}
    scores = {}
    with open(os.path.join(OUT_DIR, "tllib_cifar10_scores.csv"), newline="") as f:
        for r in csv.DictReader(f):
            scores.setdefault(r["metric"], []).append((r["model"], float(r["score"])))
    out = {}
    for metric, rows in scores.items():
        s = [v for _, v in rows]
        a = [acc[m] for m, _ in rows]
        out[metric] = {
            # exactly the call of TLlib's examples/model_selection scripts
            "weighted_tau": float(stats.weightedtau(s, a).statistic),
            "kendall_tau_b": float(stats.kendalltau(s, a).statistic),
            "spearman": float(stats.spearmanr(s, a).statistic),
            "pearson": float(stats.pearsonr(s, a)[0]),
        }
    return out


def main():
    refs = {
        "generator": "tools/correlation_refs.py",
        "scipy_version": scipy.__version__,
        "numpy_version": np.__version__,
        "python_version": sys.version.split()[0],
        "cases": cases(),
        "tllib_cifar10": tllib(),
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    path = os.path.join(OUT_DIR, "refs.json")
    # One line per case: readable diffs without one line per number.
    lines = ["{"]
    for key, value in refs.items():
        if key == "cases":
            lines.append(' "cases": [')
            rows = ["  " + json.dumps(c) for c in value]
            lines.append(",\n".join(rows))
            lines.append(" ],")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value)},")
    lines[-1] = lines[-1].rstrip(",")
    lines.append("}")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path}: {len(refs['cases'])} cases, scipy {scipy.__version__}")


if __name__ == "__main__":
    main()
