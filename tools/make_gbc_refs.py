#!/usr/bin/env python3
"""Reference values for GBC with PCA: tests/data/metrics/gbc_*.

    /usr/bin/python3 tools/make_gbc_refs.py     # writes tests/data/metrics/gbc_*

Independent of tlkit and of tools/metrics_numpy.py: the projection is scikit-learn's
PCA(n_components=k, svd_solver='full').fit_transform, as google-research
stable_transfer/transferability/features_targets_utils.py pca_reduction applies it before
gbc.py (kept in float64 here; the reference casts the scores to float32), and GBC follows
gbc.py's steps (per-class mean and population variance, tf.maximum(variance, 1e-4),
Bhattacharyya distance of every ordered pair of classes, -sum exp(-D_B)). Every value is also
recomputed from full covariance matrices with numpy.linalg.slogdet and solve (the textbook
Bhattacharyya distance); the script stops when the two disagree beyond 1e-11 relative.

k = min(K, N - 1, D): sklearn's PCA refuses K > min(N, D), and beyond rank N - 1 the centred data
has only rounding-level components. With K >= D the PCA keeps every dimension but still rotates
the features onto their principal axes: spherical GBC does not change (it sees only the class
mean distances and the traces of the class covariances), diagonal GBC does. The case `rot`
(D = 16) therefore has `diagonal:pca64` different from `diagonal` (no PCA); the script checks
that they differ by more than 1 % so a test that skips the rotation fails.
"""
import json
import os

import numpy as np
import sklearn
from sklearn.decomposition import PCA

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "metrics")
FLOOR = 1e-4


def pca(features, k):
    n, d = features.shape
    k = min(k, n - 1, d)
    return PCA(n_components=k, svd_solver="full").fit_transform(features)


def class_stats(f, y):
    classes = np.unique(y)
    mu = np.stack([f[y == c].mean(axis=0) for c in classes])
    var = np.stack([np.maximum(f[y == c].var(axis=0), FLOOR) for c in classes])
    return mu, var


def gbc_steps(f, y, gaussian, log_once=False):
    """gbc.py's order of work: statistics, then the distance of each ordered pair."""
    mu, var = class_stats(f, y)
    if gaussian == "spherical":
        var = np.repeat(var.mean(axis=1, keepdims=True), f.shape[1], axis=1)
    total = 0.0
    for i in range(len(mu)):
        for j in range(len(mu)):
            if i == j:
                continue
            s = 0.5 * (var[i] + var[j])
            mean_term = np.sum((mu[i] - mu[j]) ** 2 / s) / 8.0
            logs = np.log(s) - 0.5 * np.log(var[i]) - 0.5 * np.log(var[j])
            # log_once: google-research's spherical form adds the (equal) per-dimension log once.
            log_term = 0.5 * (logs[0] if log_once else np.sum(logs))
            total += np.exp(-(mean_term + log_term))
    return -total


def gbc_full(f, y, gaussian):
    """The Bhattacharyya distance of full covariance matrices (diagonal or spherical)."""
    mu, var = class_stats(f, y)
    d = f.shape[1]
    covs = [np.diag(v) if gaussian == "diagonal" else np.eye(d) * v.mean() for v in var]
    total = 0.0
    for i in range(len(mu)):
        for j in range(len(mu)):
            if i == j:
                continue
            s = 0.5 * (covs[i] + covs[j])
            dm = mu[i] - mu[j]
            db = dm @ np.linalg.solve(s, dm) / 8.0 + 0.5 * (
                np.linalg.slogdet(s)[1]
                - 0.5 * np.linalg.slogdet(covs[i])[1]
                - 0.5 * np.linalg.slogdet(covs[j])[1])
            total += np.exp(-db)
    return -total


def make_rot(rng):
    # N = 300, D = 16, 4 classes; correlated features (a random mixing with very unequal scales),
    # so the principal axes are far from the coordinate axes.
    n, d, c = 300, 16, 4
    y = np.repeat(np.arange(c), n // c)
    centres = rng.normal(scale=0.6, size=(c, d))
    z = rng.normal(size=(n, d)) * np.linspace(0.3, 2.0, d) + centres[y]
    mix = rng.normal(size=(d, d))
    f = z @ mix
    perm = rng.permutation(n)
    return f[perm], y[perm]


def make_wide(rng):
    # N = 12 < D = 30, 3 classes: the PCA keeps N - 1 = 11 dimensions.
    n, d, c = 12, 30, 3
    y = np.repeat(np.arange(c), n // c)
    f = rng.normal(size=(n, d)) + 0.8 * rng.normal(size=(c, d))[y]
    return f, y


def main():
    cases = {}
    for name, maker, seed in (("rot", make_rot, 20261203), ("wide", make_wide, 20261204)):
        rng = np.random.default_rng(seed)
        f, y = maker(rng)
        f = np.ascontiguousarray(f, dtype=np.float64)
        y = y.astype(np.int64)
        np.save(os.path.join(OUT, f"gbc_{name}_features.npy"), f)
        np.save(os.path.join(OUT, f"gbc_{name}_labels.npy"), y)
        values = {}
        # key -> (gaussian, PCA K or None, log_once)
        keys = {
            "diagonal": ("diagonal", None, False),
            "spherical": ("spherical", None, False),
            "diagonal:pca64": ("diagonal", 64, False),
            "spherical:pca64": ("spherical", 64, False),
            "spherical_once:pca64": ("spherical", 64, True),
        }
        if name == "rot":
            keys["diagonal:pca16"] = ("diagonal", 16, False)  # K == D
            keys["diagonal:pca8"] = ("diagonal", 8, False)  # K < D
            keys["spherical:pca8"] = ("spherical", 8, False)
        for key, (gaussian, k, once) in keys.items():
            g = f if k is None else pca(f, k)
            v = float(gbc_steps(g, y, gaussian, once))
            if not once:
                full = gbc_full(g, y, gaussian)
                assert abs(v - full) <= 1e-11 * abs(full), (name, key, v, full)
            values[key] = v
        if name == "rot":
            rel = abs(values["diagonal:pca64"] - values["diagonal"]) / abs(values["diagonal"])
            assert rel > 0.01, ("the rotation must matter for diagonal GBC", rel)
            assert values["diagonal:pca64"] == values["diagonal:pca16"] or abs(
                values["diagonal:pca64"] - values["diagonal:pca16"]) < 1e-12 * abs(
                    values["diagonal:pca16"])
        cases[name] = {"n": int(f.shape[0]), "d": int(f.shape[1]), "values": values}
    doc = {
        "schema_version": 1,
        "generator": "tools/make_gbc_refs.py",
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "cases": cases,
    }
    with open(os.path.join(OUT, "gbc_refs.json"), "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True)
        fh.write("\n")
    print(json.dumps(cases, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
