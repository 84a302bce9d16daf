#!/usr/bin/python3
"""Generate the LogME test fixtures under tests/data/logme/.

Usage (from the repository root; needs Debian's python3 with numpy + scipy):

    /usr/bin/python3 tools/make_logme_refs.py [--out tests/data/logme]

For each case it writes
    <case>_features.npy   float64 C-order (tall_f32: float32)
    <case>_labels.npy     int64            (classification cases)
    <case>_targets.npy    float64          (regression cases)
and one refs.json:
    {case: {"n", "d", "regression", "num_targets", "feature_dtype",
            ["classes"], "thuml": R, "icml": R, "exact": R}}
    R = {"score", "per_target", "alpha", "beta"}   (null where infinite)
with the values of tools/logme_numpy.py's logme_thuml / logme_icml /
logme_exact computed from the stored arrays (float32 features upcast to
float64).  Everything is seeded, so re-running reproduces the files.
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import logme_numpy  # noqa: E402

MODES = {
    "thuml": logme_numpy.logme_thuml,
    "icml": logme_numpy.logme_icml,
    "exact": logme_numpy.logme_exact,
}


def _balanced_labels(rng, n, classes):
    """Labels in which every class of `classes` occurs, shuffled."""
    classes = np.asarray(classes, dtype=np.int64)
    return classes[rng.permutation(np.arange(n) % classes.shape[0])].astype(np.int64)


def _class_features(rng, labels, d, shift=1.5):
    classes, inv = np.unique(labels, return_inverse=True)
    means = rng.normal(size=(classes.shape[0], d)) * shift
    return rng.normal(size=(labels.shape[0], d)) + means[inv]


def build_cases():
    cases = {}

    rng = np.random.default_rng(20240601)
    lab = _balanced_labels(rng, 200, range(5))
    cases["tall"] = dict(features=_class_features(rng, lab, 16), labels=lab)

    rng = np.random.default_rng(20240602)
    lab = _balanced_labels(rng, 200, range(5))
    f = _class_features(rng, lab, 16).astype(np.float32)
    cases["tall_f32"] = dict(features=f, labels=lab)

    rng = np.random.default_rng(20240603)
    lab = _balanced_labels(rng, 30, range(3))
    cases["wide"] = dict(features=_class_features(rng, lab, 64), labels=lab)

    rng = np.random.default_rng(20240604)
    lab = _balanced_labels(rng, 120, range(4))
    a = _class_features(rng, lab, 8)
    b = rng.normal(size=(8, 20)) / math.sqrt(8.0)
    cases["rankdef_tall"] = dict(features=a @ b, labels=lab, rank=8)

    rng = np.random.default_rng(20240605)
    lab = _balanced_labels(rng, 20, range(3))
    a = _class_features(rng, lab, 10)
    b = rng.normal(size=(10, 40)) / math.sqrt(10.0)
    cases["rankdef_wide"] = dict(features=a @ b, labels=lab, rank=10)

    rng = np.random.default_rng(20240606)
    lab = _balanced_labels(rng, 90, [3, 7, 42])
    cases["noncontig"] = dict(features=_class_features(rng, lab, 6), labels=lab)

    rng = np.random.default_rng(20240607)
    lab = _balanced_labels(rng, 50, range(2))
    cases["binary"] = dict(features=_class_features(rng, lab, 5, shift=1.0), labels=lab)

    rng = np.random.default_rng(20240608)
    f = rng.normal(size=(150, 10))
    w = rng.normal(size=(10, 3))
    cases["regression"] = dict(features=f, targets=f @ w + 0.5 * rng.normal(size=(150, 3)))

    rng = np.random.default_rng(20240609)
    f = rng.normal(size=(40, 3))
    w = rng.normal(size=3)
    cases["regression_1d"] = dict(features=f, targets=f @ w + 0.3 * rng.normal(size=40))
    return cases


def _jsonable(res):
    def num(x):
        x = float(x)
        return x if math.isfinite(x) else None
    return {"score": num(res["score"]),
            "per_target": [num(v) for v in res["per_target"]],
            "alpha": [num(v) for v in res["alpha"]],
            "beta": [num(v) for v in res["beta"]]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "logme"))
    args = ap.parse_args(argv)
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)

    refs = {}
    for name, case in build_cases().items():
        f = np.ascontiguousarray(case["features"])
        regression = "targets" in case
        np.save(os.path.join(out, name + "_features.npy"), f)
        if regression:
            y = np.ascontiguousarray(case["targets"], dtype=np.float64)
            np.save(os.path.join(out, name + "_targets.npy"), y)
        else:
            y = np.ascontiguousarray(case["labels"], dtype=np.int64)
            np.save(os.path.join(out, name + "_labels.npy"), y)
        entry = {"n": int(f.shape[0]), "d": int(f.shape[1]), "regression": regression,
                 "feature_dtype": str(f.dtype),
                 "num_targets": int(1 if (regression and y.ndim == 1) else
                                    (y.shape[1] if regression else np.unique(y).size))}
        if not regression:
            entry["classes"] = [int(c) for c in np.unique(y)]
        if "rank" in case:
            entry["rank"] = int(case["rank"])
        for mode, fn in MODES.items():
            entry[mode] = _jsonable(fn(f, y, regression=regression))
        refs[name] = entry
        print("%-14s n=%-4d d=%-3d thuml=% .12f icml=% .12f exact=% .12f" % (
            name, entry["n"], entry["d"], entry["thuml"]["score"],
            entry["icml"]["score"], entry["exact"]["score"]))

    with open(os.path.join(out, "refs.json"), "w") as fh:
        json.dump(refs, fh, indent=1)
        fh.write("\n")
    print("wrote %s" % out)


if __name__ == "__main__":
    main()
