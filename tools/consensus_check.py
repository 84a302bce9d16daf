#!/usr/bin/python3
"""Does a consensus of metrics (the mean of per-metric ranks) beat the best single metric?

    /usr/bin/python3 tools/consensus_check.py [--kit ../shared/kit]

Reads the kit's scores of every metric (docs/ranking-quality/<dataset>/scores.csv, from
tools/validate_zoo.sh) and the GPU ground truth (<kit>/groundtruth/truth_<dataset>.csv), and
prints, per dataset, the weighted tau (scipy.stats.weightedtau) and top-1 relative accuracy of
each single metric, of the consensus over all metrics, and of the consensus over tlkit rank's
default five. Lower-is-better metrics (ncti_vc) are negated first. NumPy and SciPy only.
"""

import argparse
import csv
from pathlib import Path

import numpy as np
import scipy.stats as st

REPO = Path(__file__).resolve().parents[1]
LOWER_IS_BETTER = {"ncti_vc"}
DEFAULT_FIVE = ["logme", "leep", "nce", "hscore_shrink", "transrate"]


def read_scores(path):
    scores = {}
    for r in csv.DictReader(open(path)):
        scores.setdefault(r["metric"], {})[r["model"]] = float(r["score"])
    return scores


def read_truth(path):
    return {r["model"]: float(r["accuracy"]) for r in csv.DictReader(open(path))}


def oriented(scores, metric, models):
    s = np.array([scores[metric][m] for m in models])
    return -s if metric in LOWER_IS_BETTER else s


def agreement(s, acc):
    return st.weightedtau(s, acc)[0], acc[np.argmax(s)] / acc.max()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kit", default=str(REPO.parent / "shared" / "kit"))
    args = ap.parse_args()
    for ds in ("clothing", "cifar10"):
        scores = read_scores(REPO / "docs" / "ranking-quality" / ds / "scores.csv")
        truth = read_truth(Path(args.kit) / "groundtruth" / ("truth_%s.csv" % ds))
        single = {}
        for metric, by_model in scores.items():
            models = [m for m in by_model if m in truth]
            s = oriented(scores, metric, models)
            if len(models) >= 5 and np.all(np.isfinite(s)):
                single[metric] = agreement(s, np.array([truth[m] for m in models]))

        def consensus(metrics):
            models = sorted(set.intersection(*[set(m for m in scores[x] if m in truth)
                                               for x in metrics]))
            ranks = np.mean([st.rankdata(oriented(scores, x, models)) for x in metrics], axis=0)
            return agreement(ranks, np.array([truth[m] for m in models]))

        print("%s (%d metrics)" % (ds, len(single)))
        for metric in sorted(single, key=lambda x: -single[x][0]):
            print("  %-16s weighted tau %6.3f  top-1 %.3f" % ((metric,) + single[metric]))
        print("  %-16s weighted tau %6.3f  top-1 %.3f" % (("consensus (all)",)
                                                          + consensus(list(single))))
        print("  %-16s weighted tau %6.3f  top-1 %.3f" % (("consensus (5)",)
                                                          + consensus(DEFAULT_FIVE)))


if __name__ == "__main__":
    main()
