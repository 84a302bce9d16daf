#!/usr/bin/python3
"""Independent check of `tlkit evaluate --bootstrap` statistics with NumPy/SciPy.

Reads the replicate scores that tlkit wrote (--bootstrap-replicates FILE), the truth CSV and the
JSON report (--format json), recomputes every bootstrap statistic from the replicate scores and
compares: per model the mean, the percentile interval (numpy.percentile, linear) and P(ranked
first) (tied top models share a replicate); per metric scipy.stats.weightedtau and
scipy.stats.kendalltau over the replicates (mean, interval) and P(top model is a best model).
Lower-is-better metrics (JSON higher_is_better = false) are ranked by their negated scores.

  tlkit evaluate --scores s.csv --truth t.csv --bootstrap 50 --features-dir DIR \
      --format json --bootstrap-replicates reps.csv > report.json
  /usr/bin/python3 tools/check_bootstrap.py reps.csv t.csv report.json

Prints the largest absolute difference and exits 1 if it exceeds 1e-9.
"""
import csv
import json
import sys
from collections import defaultdict

import numpy as np
from scipy import stats


def main(reps_path, truth_path, report_path):
    with open(truth_path, newline="") as f:
        acc = {r["model"]: float(r["accuracy"]) for r in csv.DictReader(f)}
    values = defaultdict(lambda: defaultdict(dict))  # metric -> model -> replicate -> score
    with open(reps_path, newline="") as f:
        for r in csv.DictReader(f):
            values[r["metric"]][r["model"]][int(r["replicate"])] = float(r["score"])
    boot = json.load(open(report_path))["bootstrap"]
    conf = boot["confidence"]
    lo_q, hi_q = 50 * (1 - conf), 50 * (1 + conf)
    worst = 0.0

    def check(what, got, want):
        nonlocal worst
        if got is None and (want is None or np.isnan(want)):
            return
        d = abs(got - want)
        worst = max(worst, d)
        if d > 1e-9:
            print(f"MISMATCH {what}: tlkit {got!r}, numpy/scipy {want!r}")

    for metric, m in boot["metrics"].items():
        models = list(m["models"])
        k = boot["replicates"]
        x = np.array([[values[metric][mod][r] for mod in models] for r in range(k)])
        for i, mod in enumerate(models):
            col = x[:, i][~np.isnan(x[:, i])]
            e = m["models"][mod]
            check(f"{metric}/{mod} mean", e["mean"], col.mean())
            check(f"{metric}/{mod} lower", e["interval"][0], np.percentile(col, lo_q))
            check(f"{metric}/{mod} upper", e["interval"][1], np.percentile(col, hi_q))
        sign = 1.0 if m["higher_is_better"] else -1.0
        y = np.array([acc[mod] for mod in models])
        best = y == y.max()
        valid = x[~np.isnan(x).any(axis=1)] * sign
        first = np.zeros(len(models))
        hit, wt, kt = 0.0, [], []
        for row in valid:
            tops = np.flatnonzero(row == row.max())
            first[tops] += 1 / len(tops)
            hit += best[tops].sum() / len(tops)
            w = stats.weightedtau(row, y)[0]
            t = stats.kendalltau(row, y)[0]
            if not np.isnan(w):
                wt.append(w)
            if not np.isnan(t):
                kt.append(t)
        for i, mod in enumerate(models):
            check(f"{metric}/{mod} p_first", m["models"][mod]["p_first"], first[i] / len(valid))
        check(f"{metric} p_top1_best", m["p_top1_best"], hit / len(valid))
        check(f"{metric} weighted_tau_mean", m["weighted_tau_mean"], np.mean(wt))
        check(f"{metric} weighted_tau lower", m["weighted_tau_interval"][0], np.percentile(wt, lo_q))
        check(f"{metric} weighted_tau upper", m["weighted_tau_interval"][1], np.percentile(wt, hi_q))
        check(f"{metric} kendall_tau_mean", m["kendall_tau_mean"], np.mean(kt))
        check(f"{metric} kendall_tau lower", m["kendall_tau_interval"][0], np.percentile(kt, lo_q))
        check(f"{metric} kendall_tau upper", m["kendall_tau_interval"][1], np.percentile(kt, hi_q))
    print(f"{len(boot['metrics'])} metrics, {boot['replicates']} replicates: "
          f"largest difference {worst:.3g}")
    return 0 if worst <= 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
