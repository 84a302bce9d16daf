#!/usr/bin/python3
"""How N-LEEP's k-means initialisation moves its value: mean over seeds of three variants.

Usage: /usr/bin/python3 tools/nleep_init_study.py --seeds 10 FEATURES.npy LABELS.npy [...]
(pairs of feature and label files; numpy, scipy, python3-sklearn)

For each feature set: sklearn PCA(0.8, svd_solver="full"), K = 5 C, then from each seed s
  plain   k-means++ that draws each centre with probability proportional to D^2 (the textbook
          algorithm, as tlkit's kmeans_plusplus draws it), Lloyd to the assignment's fixed point;
  greedy  sklearn.cluster.kmeans_plusplus (2 + ln K candidates per centre, the one that lowers
          the inertia most), Lloyd to the fixed point (sklearn KMeans, tol=0);
  sklearn GaussianMixture(K, random_state=s) as it is: greedy k-means++, KMeans's default tol
          (1e-4 x the mean variance) and its relocation of empty clusters;
and the same EM (sklearn GaussianMixture, full covariances, reg_covar 1e-6, tol 1e-3) from the
first two assignments. Prints the mean, the standard deviation and the mean k-means inertia of
each variant, and the relative differences of the means to the sklearn column.
"""

import argparse
import warnings

import numpy as np


def leep(post, y):
    n, c = post.shape[0], int(y.max()) + 1
    joint = np.stack([post[y == j].sum(axis=0) / n for j in range(c)], axis=1)
    cond = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-300)
    return float(np.mean(np.log((post @ cond)[np.arange(n), y])))


def plain_rows(x, k, rng):
    n = x.shape[0]
    rows = [int(rng.integers(n))]
    d2 = np.sum((x - x[rows[0]]) ** 2, axis=1)
    for _ in range(1, k):
        r = int(rng.choice(n, p=d2 / d2.sum())) if d2.sum() > 0 else int(rng.integers(n))
        rows.append(r)
        d2 = np.minimum(d2, np.sum((x - x[r]) ** 2, axis=1))
    return np.array(rows)


def em_from_labels(x, labels, k):
    from sklearn.mixture import GaussianMixture
    n, d = x.shape
    resp = np.eye(k)[labels]
    nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = resp.T @ x / nk[:, None]
    covs = np.stack([((resp[:, j] * (x - means[j]).T) @ (x - means[j])) / nk[j]
                     + 1e-6 * np.eye(d) for j in range(k)])
    prec = np.linalg.inv(covs)
    prec = 0.5 * (prec + np.transpose(prec, (0, 2, 1)))  # symmetric to rounding
    g = GaussianMixture(k, covariance_type="full", reg_covar=1e-6, tol=1e-3, max_iter=100,
                        weights_init=nk / n, means_init=means, precisions_init=prec).fit(x)
    return g.predict_proba(x)


def study(f, labels, seeds):
    from sklearn.cluster import KMeans, kmeans_plusplus
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture
    _, y = np.unique(labels, return_inverse=True)
    k = 5 * (int(y.max()) + 1)
    x = PCA(n_components=0.8, svd_solver="full").fit_transform(np.asarray(f, dtype=np.float64))
    out = {"plain": [], "greedy": [], "sklearn": []}
    inertia = {"plain": [], "greedy": [], "sklearn": []}
    for s in range(seeds):
        for name in ("plain", "greedy"):
            rows = (plain_rows(x, k, np.random.default_rng(s)) if name == "plain"
                    else kmeans_plusplus(x, k, random_state=s)[1])
            km = KMeans(k, init=x[rows], n_init=1, tol=0.0, max_iter=300).fit(x)
            inertia[name].append(km.inertia_)
            out[name].append(leep(em_from_labels(x, km.labels_, k), y))
        g = GaussianMixture(k, covariance_type="full", random_state=s).fit(x)
        inertia["sklearn"].append(KMeans(k, n_init=1, random_state=s).fit(x).inertia_)
        out["sklearn"].append(leep(g.predict_proba(x), y))
    return x.shape[1], k, out, inertia


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    print("%-44s %4s %3s  %-18s %-18s %-18s %8s %8s" % (
        "features", "dims", "K", "plain", "greedy", "sklearn", "plain/sk", "greedy/sk"))
    for fpath, lpath in zip(args.files[::2], args.files[1::2]):
        dims, k, out, inertia = study(np.load(fpath), np.load(lpath), args.seeds)
        m = {n: np.mean(v) for n, v in out.items()}
        cell = {n: "%.4f+-%.4f" % (m[n], np.std(out[n])) for n in out}
        print("%-44s %4d %3d  %-18s %-18s %-18s %+7.2f%% %+7.2f%%" % (
            fpath[-44:], dims, k, cell["plain"], cell["greedy"], cell["sklearn"],
            100 * (m["plain"] - m["sklearn"]) / abs(m["sklearn"]),
            100 * (m["greedy"] - m["sklearn"]) / abs(m["sklearn"])))
        print("%-44s inertia  plain %.4g  greedy %.4g  sklearn %.4g" % (
            "", np.mean(inertia["plain"]), np.mean(inertia["greedy"]),
            np.mean(inertia["sklearn"])), flush=True)


if __name__ == "__main__":
    main()
