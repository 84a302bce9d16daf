#!/usr/bin/python3
"""Generate tests/data/nleep/refs.json: N-LEEP from a fixed k-means initialisation, by scikit-learn.

Usage (from the repository root; Debian's python3 with numpy, scipy and python3-sklearn):

    /usr/bin/python3 tools/make_nleep_refs.py [--out tests/data/nleep]

N-LEEP depends on its random initialisation, so two implementations only agree when they start
from the same k-means centres.  For each feature set of tests/data/metrics/ (made by
tools/make_metric_refs.py) and each initialisation, this script:

  1. reduces the features with sklearn PCA(n_components=0.8, svd_solver="full");
  2. picks K = 5 C (or 1 C, 2 C) initial centres with sklearn.cluster.kmeans_plusplus (random_state r) and
     records their ROW INDICES (the test gives tlkit the same rows; rows, unlike coordinates, do
     not depend on the sign of each principal direction);
  3. runs sklearn KMeans(init=those centres, n_init=1, algorithm="lloyd", tol=0) to the
     assignment's fixed point (tlkit's stopping rule);
  4. fits sklearn GaussianMixture(K, covariance_type="full", reg_covar=1e-6, tol=1e-3,
     max_iter=100) started from the parameters of the one-hot k-means responsibilities (weights
     (n_k + 10 eps)/N, means, covariances + 1e-6 I: what init_params="kmeans" computes), given
     as weights_init / means_init / precisions_init;
  5. computes LEEP (with and without the log) of GaussianMixture.predict_proba in plain NumPy.

Nothing here calls tlkit or tools/metrics_numpy.py's mixture code; as a cross-check the script
also runs metrics_numpy.gmm_posteriors from the same k-means labels and asserts agreement.

It also records sklearn's greedy k-means++ seeding ("seeding"): sklearn.cluster.kmeans_plusplus
run with a numpy RandomState whose randint() returns a fixed first row and whose uniform() returns
a fixed stream of numbers, so that a test can feed tlkit's seeding the same draws and compare
the rows chosen.

refs.json: {"schema_version": 1, "cases": [{"case", "random_state", "components_per_class",
  "n", "classes",
  "components", "pca_dims", "centre_rows", "kmeans_labels", "kmeans_iterations",
  "em_iterations", "converged", "mean_log_likelihood", "em_margin", "nleep", "nleep_nolog"}],
  "seeding": [{"case", "components", "pca_dims", "first_row", "uniforms", "rows"}]}
em_margin is the smallest | |change of the mean log-likelihood| - tol | over the EM steps: how
far the stopping decision is from flipping.
"""

import argparse
import json
import os
import sys
import warnings

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# (case, sklearn kmeans_plusplus random_state, components per class)
CASES = [("tall", 0, 5), ("tall", 1, 5), ("tall", 2, 5), ("tall", 0, 1), ("tall", 1, 2),
         ("binary", 0, 5), ("binary", 1, 2), ("singleton", 0, 5), ("noncontig", 0, 5),
         ("noncontig", 1, 5), ("noncontig", 0, 1)]


# (case, numpy default_rng seed of the first row and the uniform stream) for the seeding records
SEEDING = [("tall", 1), ("tall", 2), ("binary", 3), ("noncontig", 4), ("singleton", 5)]


def leep(post, y):
    """LEEP of source probabilities `post` (N x Z) for class indices y (0..C-1), NumPy."""
    n = post.shape[0]
    c = int(y.max()) + 1
    joint = np.zeros((post.shape[1], c))
    for j in range(c):
        joint[:, j] = post[y == j].sum(axis=0) / n
    cond = joint / joint.sum(axis=1, keepdims=True)  # P(y | z)
    eep = post @ cond
    p = eep[np.arange(n), y]
    return float(np.mean(np.log(p))), float(np.mean(p))


def one_case(features, labels, random_state, per_class):
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    f = np.asarray(features, dtype=np.float64)
    classes, y = np.unique(labels, return_inverse=True)
    n = f.shape[0]
    k = per_class * classes.size
    x = PCA(n_components=0.8, svd_solver="full").fit_transform(f)
    _, rows = kmeans_plusplus(x, k, random_state=random_state)
    km = KMeans(k, init=x[rows], n_init=1, algorithm="lloyd", tol=0.0, max_iter=300).fit(x)
    km_labels = km.labels_.astype(np.int64)
    if np.bincount(km_labels, minlength=k).min() == 0:
        raise AssertionError("an empty k-means cluster (sklearn relocates it; tlkit keeps it)")
    if km.n_iter_ >= 300:
        raise AssertionError("k-means did not reach a fixed point")

    resp = np.eye(k)[km_labels]
    nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = resp.T @ x / nk[:, None]
    covs = np.empty((k, x.shape[1], x.shape[1]))
    for j in range(k):
        diff = x - means[j]
        covs[j] = (resp[:, j] * diff.T) @ diff / nk[j] + 1e-6 * np.eye(x.shape[1])

    # Record every EM step's mean log-likelihood (sklearn's lower bound) to get the margin of the
    # stopping rule: rerun with max_iter = 1, 2, ... warm-started is not exact, so fit once per
    # length from the same start instead (cheap at these sizes).
    def fit(max_iter):
        return GaussianMixture(k, covariance_type="full", reg_covar=1e-6, tol=1e-3,
                               max_iter=max_iter, weights_init=nk / n, means_init=means,
                               precisions_init=np.linalg.inv(covs)).fit(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = fit(100)
        bounds = [fit(i).lower_bound_ for i in range(1, g.n_iter_ + 1)]
    changes = np.abs(np.diff([-np.inf] + bounds))[1:]
    margin = float(np.min(np.abs(changes - 1e-3))) if changes.size else float("inf")
    post = g.predict_proba(x)
    val, nolog = leep(post, y)

    # cross-check: the NumPy EM of tools/metrics_numpy.py from the same k-means labels
    import metrics_numpy as mn
    post2, info2 = mn.gmm_posteriors(x, k, init_labels=km_labels)
    if info2["iterations"] != g.n_iter_ or abs(leep(post2, y)[0] - val) > 1e-9 * abs(val):
        raise AssertionError("metrics_numpy.gmm_posteriors disagrees with GaussianMixture")

    return {"n": n, "classes": [int(c) for c in classes], "components": k,
            "pca_dims": int(x.shape[1]), "centre_rows": [int(r) for r in rows],
            "kmeans_labels": [int(v) for v in km_labels], "kmeans_iterations": int(km.n_iter_),
            "em_iterations": int(g.n_iter_), "converged": bool(g.converged_),
            "mean_log_likelihood": float(g.lower_bound_), "em_margin": margin,
            "nleep": val, "nleep_nolog": nolog}


class _Draws(np.random.RandomState):
    """A RandomState whose randint() gives `first` and whose uniform() reads `stream` in order:
    the only draws sklearn's _kmeans_plusplus makes (sklearn 1.2)."""

    def __init__(self, first, stream):
        super().__init__(0)
        self.first, self.stream, self.used = first, list(stream), 0

    def randint(self, *args, **kwargs):
        return self.first

    def uniform(self, low=0.0, high=1.0, size=None):
        out = np.array(self.stream[self.used:self.used + size])
        if out.size != size:
            raise AssertionError("uniform stream exhausted")
        self.used += size
        return out


def seeding_case(features, labels, seed):
    from sklearn.cluster import kmeans_plusplus
    from sklearn.decomposition import PCA
    f = np.asarray(features, dtype=np.float64)
    k = 5 * np.unique(labels).size
    x = PCA(n_components=0.8, svd_solver="full").fit_transform(f)
    rng = np.random.default_rng(seed)
    first = int(rng.integers(x.shape[0]))
    trials = 2 + int(np.log(k))
    stream = rng.random((k - 1) * trials).tolist()
    draws = _Draws(first, stream)
    _, rows = kmeans_plusplus(x, k, random_state=draws)
    if draws.used != len(stream) or rows[0] != first:
        raise AssertionError("sklearn used %d of %d draws" % (draws.used, len(stream)))
    return {"components": k, "pca_dims": int(x.shape[1]), "first_row": first,
            "uniforms": stream, "rows": [int(r) for r in rows]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "nleep"))
    ap.add_argument("--metrics-dir", default=os.path.join(HERE, "..", "tests", "data", "metrics"))
    args = ap.parse_args(argv)
    out = {"schema_version": 1, "cases": []}
    for case, rs, per_class in CASES:
        base = os.path.join(args.metrics_dir, case)
        f = np.load(base + "_features.npy")
        y = np.load(base + "_labels.npy")
        r = one_case(f, y, rs, per_class)
        print("%-10s rs=%d k=%d dims=%d kmeans_it=%d em_it=%d margin=%.2e nleep=%.12g"
              % (case, rs, r["components"], r["pca_dims"], r["kmeans_iterations"],
                 r["em_iterations"], r["em_margin"], r["nleep"]))
        out["cases"].append(dict({"case": case, "random_state": rs,
                                  "components_per_class": per_class}, **r))
    out["seeding"] = []
    for case, seed in SEEDING:
        base = os.path.join(args.metrics_dir, case)
        r = seeding_case(np.load(base + "_features.npy"), np.load(base + "_labels.npy"), seed)
        print("seeding %-10s k=%d first=%d rows=%s..." % (case, r["components"], r["first_row"],
                                                         r["rows"][:6]))
        out["seeding"].append(dict({"case": case}, **r))
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "refs.json"), "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print("wrote %s" % os.path.normpath(os.path.join(args.out, "refs.json")))


if __name__ == "__main__":
    main()
