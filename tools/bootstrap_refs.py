#!/usr/bin/python3
"""Reference values for tlkit's bootstrap statistics (tests/core/test_bootstrap.cpp), computed
independently with NumPy and SciPy from fixed inputs:

* numpy.percentile(values, q) with its default method ('linear');
* the summary of a given replicate-score matrix (what summarise_bootstrap() computes): per model
  the mean and the equal-tailed percentile interval of its replicate scores and P(ranked first)
  (models tied for the top share the replicate equally); per metric the weighted tau and
  Kendall tau-b of the original scores against the accuracies, their mean and percentile interval
  over the replicates, and P(the top-scored model is a best model by accuracy).

Usage: /usr/bin/python3 tools/bootstrap_refs.py > tests/data/bootstrap/refs.json
(numpy 1.24, scipy 1.10 on Debian 12 wrote the committed file).
"""
import json

import numpy as np
import scipy
from scipy import stats


def summary(original, reps, acc, confidence, higher_is_better):
    reps = np.asarray(reps, dtype=float)  # K x M
    acc = np.asarray(acc, dtype=float)
    sign = 1.0 if higher_is_better else -1.0
    lo_q, hi_q = 50 * (1 - confidence), 50 * (1 + confidence)
    best = acc == acc.max()
    first = np.zeros(reps.shape[1])
    hit = 0.0
    wt, kt = [], []
    for row in reps:
        x = sign * row
        tops = np.flatnonzero(x == x.max())
        first[tops] += 1.0 / len(tops)
        hit += best[tops].sum() / len(tops)
        wt.append(stats.weightedtau(x, acc)[0])
        kt.append(stats.kendalltau(x, acc)[0])
    k = reps.shape[0]
    x0 = sign * np.asarray(original, dtype=float)
    return {
        "models": [{
            "mean": float(reps[:, i].mean()),
            "sd": float(reps[:, i].std(ddof=1)),
            "lo": float(np.percentile(reps[:, i], lo_q)),
            "hi": float(np.percentile(reps[:, i], hi_q)),
            "p_first": float(first[i] / k),
        } for i in range(reps.shape[1])],
        "weighted_tau": float(stats.weightedtau(x0, acc)[0]),
        "weighted_tau_mean": float(np.mean(wt)),
        "weighted_tau_lo": float(np.percentile(wt, lo_q)),
        "weighted_tau_hi": float(np.percentile(wt, hi_q)),
        "kendall_tau": float(stats.kendalltau(x0, acc)[0]),
        "kendall_tau_mean": float(np.mean(kt)),
        "kendall_tau_lo": float(np.percentile(kt, lo_q)),
        "kendall_tau_hi": float(np.percentile(kt, hi_q)),
        "p_top1_best": float(hit / k),
    }


def main():
    rng = np.random.default_rng(20261126)
    percentile = []
    for values in ([3.0], [2.0, 1.0], [5.0, 1.0, 4.0, 4.0, 2.0], list(rng.normal(size=37)),
                   list(rng.integers(0, 5, size=20).astype(float))):
        for q in (0.0, 2.5, 5.0, 25.0, 50.0, 97.5, 99.0, 100.0):
            percentile.append({"values": [float(v) for v in values], "q": q,
                               "expected": float(np.percentile(values, q))})

    # 4 models x 9 replicates with a tie for the top in replicate 3 and a tied accuracy.
    original = [0.50, 0.40, 0.30, 0.10]
    reps = np.array([
        [0.52, 0.41, 0.29, 0.12],
        [0.48, 0.49, 0.31, 0.09],
        [0.55, 0.38, 0.33, 0.11],
        [0.45, 0.45, 0.28, 0.10],
        [0.51, 0.36, 0.40, 0.13],
        [0.47, 0.42, 0.27, 0.08],
        [0.30, 0.44, 0.35, 0.14],
        [0.53, 0.39, 0.30, 0.10],
        [0.50, 0.43, 0.26, 0.31],
    ])
    acc = [90.0, 85.0, 85.0, 60.0]
    cases = []
    for conf in (0.95, 0.8):
        for hib in (True, False):
            cases.append({"original": original, "replicates": reps.tolist(), "accuracy": acc,
                          "confidence": conf, "higher_is_better": hib,
                          "expected": summary(original, reps, acc, conf, hib)})
    print(json.dumps({"numpy": np.__version__, "scipy": scipy.__version__,
                      "percentile": percentile, "summary": cases}, indent=1))


if __name__ == "__main__":
    main()
