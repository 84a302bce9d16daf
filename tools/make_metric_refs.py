#!/usr/bin/python3
"""Generate the transferability-metric fixtures under tests/data/metrics/.

Usage (from the repository root; Debian's python3 with numpy + scipy;
--check also needs python3-sklearn):

    /usr/bin/python3 tools/make_metric_refs.py [--out tests/data/metrics] [--check]

For each case it writes
    <case>_features.npy   N x D, C order, float64 (f32: float32)
    <case>_labels.npy     int64, shape (N,)
    <case>_probs.npy      float64 N x Cs source probabilities (cases with probs)
and refs.json:
    {"schema_version": 1,
     "cases": {case: {"n", "d", "classes", "feature_dtype", "probs_shape",
                      "values": {key: float or null}}}}
Keys are "<metric>" (tlkit's default behaviour) or "<metric>:<variant>"; the
table in tests/data/metrics/README.md says which function of
tools/metrics_numpy.py gives each key.  null = undefined or not reproducible
for that case (the README says why).  Everything is seeded.

It also writes a zoo: zoo_<model>_features.npy, features of four "models" for
the labels of tall_labels.npy, and zoo.json with each model's NCTI and ETran
components and the zoo-level scores (metrics_numpy.ncti_combine, etran_combine):
    {"schema_version": 1, "labels": "tall_labels.npy",
     "models": {model: {"n", "d", "components": {key: float}}},
     "ncti": {model: float}, "etran": {model: float}}
"""

import argparse
import json
import math
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metrics_numpy as mn  # noqa: E402

NLEEP_SEEDS = range(20)


def _balanced(rng, n, classes):
    classes = np.asarray(classes, dtype=np.int64)
    return classes[rng.permutation(np.arange(n) % classes.size)]


def _class_features(rng, labels, d, shift):
    classes, inv = np.unique(labels, return_inverse=True)
    means = rng.normal(size=(classes.size, d)) * shift
    scales = rng.uniform(0.6, 1.6, size=(classes.size, 1))
    return rng.normal(size=(labels.size, d)) * scales[inv] + means[inv]


def _probs(rng, f, cs, temperature):
    w = rng.normal(size=(f.shape[1], cs)) / math.sqrt(f.shape[1])
    b = rng.normal(size=cs) * 0.5
    return mn._softmax_rows(temperature * (f @ w + b))


def build_cases():
    cases = {}
    rng = np.random.default_rng(20250301)
    lab = np.repeat(np.arange(5), [80, 70, 60, 50, 40])[rng.permutation(300)]
    f = _class_features(rng, lab, 20, 1.0)
    cases["tall"] = dict(features=f, labels=lab, probs=_probs(rng, f, 8, 1.5))
    cases["f32"] = dict(features=f.astype(np.float32), labels=lab)

    rng = np.random.default_rng(20250302)
    lab = _balanced(rng, 40, range(4))
    f = _class_features(rng, lab, 64, 0.5)
    cases["wide"] = dict(features=f, labels=lab, probs=_probs(rng, f, 5, 1.0))

    rng = np.random.default_rng(20250303)
    lab = _balanced(rng, 60, range(2))
    f = _class_features(rng, lab, 6, 0.8)
    cases["binary"] = dict(features=f, labels=lab, probs=_probs(rng, f, 3, 1.0))

    rng = np.random.default_rng(20250304)
    lab = np.concatenate([_balanced(rng, 49, [0, 1]), [2]])
    lab = lab[rng.permutation(50)]
    f = _class_features(rng, lab, 5, 1.2)
    cases["singleton"] = dict(features=f, labels=lab, probs=_probs(rng, f, 4, 1.0))

    rng = np.random.default_rng(20250305)
    lab = _balanced(rng, 90, [2, 9, 40])
    f = _class_features(rng, lab, 8, 1.0)
    cases["noncontig"] = dict(features=f, labels=lab, probs=_probs(rng, f, 6, 1.0))

    # N < D with 24 columns at unit scale and 40 at 1e-3: the centred scatter has 24 large and
    # 15 small (~1e-6 relative) non-zero eigenvalues, which a pseudo-inverse must keep.
    rng = np.random.default_rng(20250306)
    lab = _balanced(rng, 40, range(4))
    f = _class_features(rng, lab, 64, 0.5)
    f[:, 24:] *= 1e-3
    cases["smallvar"] = dict(features=f, labels=lab, probs=_probs(rng, f, 5, 1.0))
    return cases


# Zoo models: features for the `tall` labels with (class-mean scale, D, noise seed), chosen so that
# every NCTI and ETran component differs between models by more than rounding.
ZOO_MODELS = [("weak", 0.25, 16, 20250311), ("medium", 0.45, 24, 20250312),
              ("strong", 0.85, 20, 20250313), ("wide", 0.65, 48, 20250314)]


def build_zoo(labels):
    zoo = {}
    for name, shift, d, seed in ZOO_MODELS:
        rng = np.random.default_rng(seed)
        zoo[name] = _class_features(rng, labels, d, shift)
    return zoo


def compute_zoo(zoo, labels):
    names = list(zoo)
    comps = {m: mn.ncti_components(zoo[m], labels) for m in names}
    et = {m: mn.etran_components(zoo[m], labels) for m in names}
    ncti = mn.ncti_combine([comps[m] for m in names])
    etran = mn.etran_combine([et[m] for m in names])
    out = {"schema_version": 1, "labels": "tall_labels.npy", "models": {}, "ncti": {},
           "etran": {}}
    for i, m in enumerate(names):
        out["models"][m] = {"n": int(zoo[m].shape[0]), "d": int(zoo[m].shape[1]), "components": {
            "ncti_seli": comps[m]["seli"], "ncti_ncc": comps[m]["ncc"], "ncti_vc": comps[m]["vc"],
            "etran_lda": et[m]["lda"], "etran_energy": et[m]["energy"]}}
        out["ncti"][m] = ncti[i]
        out["etran"][m] = etran[i]
    return out


def _num(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def compute_values(case):
    f = np.asarray(case["features"]).astype(np.float64)
    y = case["labels"]
    v = {}
    if "probs" in case:
        v["leep"] = mn.leep(case["probs"], y)
        v["nce"] = mn.nce(case["probs"], y)
    v["hscore"] = mn.hscore(f, y)
    v["hscore:google"] = mn.hscore_google(f, y)
    v["hscore_shrink"] = mn.hscore_shrink(f, y)
    v["transrate"] = mn.transrate(f, y)
    v["transrate:tllib"] = mn.transrate(f, y, weighting="tllib")
    v["gbc"] = mn.gbc(f, y)
    v["gbc:diagonal"] = mn.gbc(f, y, gaussian="diagonal")
    v["gbc:spherical_google"] = mn.gbc(f, y, gaussian="spherical_google")
    v["gbc:pca64"] = mn.gbc(f, y, pca_dims=64)
    v["sfda"] = mn.sfda(f, y)
    v["parc"] = mn.parc(f, y)
    v["knn"] = mn.knn_loo(f, y)
    v["logistic"] = mn.logistic_split(f, y, 0)
    v["logistic:seed1"] = mn.logistic_split(f, y, 1)
    vals = [mn.nleep(f, y, seed=s) for s in NLEEP_SEEDS]
    v["nleep"] = vals[0]
    v["nleep:seed_min"] = min(vals)
    v["nleep:seed_max"] = max(vals)
    v["nleep:nolog"] = mn.nleep(f, y, seed=0, log=False)
    nc = mn.ncti_components(f, y)
    for k in ("seli", "ncc", "vc"):
        v["ncti:" + k] = None if nc is None else nc[k]
    et = mn.etran_components(f, y)
    v["etran:lda"] = et["lda"]
    v["etran:energy"] = et["energy"]
    return {k: _num(x) for k, x in v.items()}


# ---------------------------------------------------------------------------
# --check: independent cross-checks (sklearn / scipy / alternative formulas)
# ---------------------------------------------------------------------------
def run_checks(cases):
    """Print the largest relative difference of each cross-check; raise if a
    check exceeds its tolerance.  Needs python3-sklearn (a tools-only
    dependency)."""
    import warnings
    import scipy.linalg
    import scipy.stats
    from sklearn.covariance import LedoitWolf
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.linear_model import LogisticRegression
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import NearestNeighbors
    warnings.filterwarnings("ignore")
    worst = {}

    def rec(name, a, b, tol):
        a = np.asarray(a, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        scale = 1.0 if name.endswith("(abs)") else np.maximum(np.abs(b), 1e-300)
        err = float(np.max(np.abs(a - b) / scale)) if a.size else 0.0
        prev = worst.get(name, (0.0, tol))[0]
        worst[name] = (max(prev, err), tol)

    for name, case in cases.items():
        f = np.asarray(case["features"]).astype(np.float64)
        y0 = np.asarray(case["labels"])
        classes, y = np.unique(y0, return_inverse=True)
        c = classes.size
        n, d = f.shape
        cnt = np.bincount(y)

        # Ledoit-Wolf against sklearn
        sig, a = mn.ledoit_wolf(f)
        lw = LedoitWolf(assume_centered=False).fit(f)
        rec("ledoit_wolf covariance vs sklearn (abs)", np.max(np.abs(sig - lw.covariance_)), 0.0, 1e-12)
        rec("ledoit_wolf shrinkage vs sklearn (abs)", abs(a - lw.shrinkage_), 0.0, 1e-12)

        # H-score: closed form via class means
        mu = f.mean(axis=0)
        means = mn._class_means(f, y, c)
        sf = np.cov(f, rowvar=False)
        if np.linalg.matrix_rank(sf) == d:
            dm = means - mu
            alt = np.sum(cnt * np.einsum("cd,cd->c", dm, np.linalg.solve(sf, dm.T).T)) / (n - 1)
            rec("hscore vs class-mean formula", mn.hscore(f, y0), alt, 1e-10)
        else:
            rec("hscore == C-1 when rank(centred F) = N-1", mn.hscore(f, y0), c - 1, 1e-10)

        # TransRate: Sylvester / eigenvalue form
        z = f - mu

        def rate(a_, eps=1e-4):
            m = a_.shape[0]
            k = a_ @ a_.T if m < a_.shape[1] else a_.T @ a_
            return 0.5 * np.sum(np.log1p(np.maximum(np.linalg.eigvalsh(k), 0) / (m * eps)))
        rc = np.array([rate(z[y == k]) for k in range(c)])
        rec("transrate vs eigenvalue form", mn.transrate(f, y0), rate(z) - np.sum(rc * cnt / n), 1e-10)
        rec("transrate:tllib vs eigenvalue form", mn.transrate(f, y0, weighting="tllib"),
            rate(z) - rc.mean(), 1e-10)

        # GBC: the general Bhattacharyya formula with full matrices
        def gbc_full(ff, kind):
            st = []
            for k in range(c):
                xk = ff[y == k]
                v = np.maximum(xk.var(axis=0), 1e-4)
                st.append((xk.mean(axis=0), np.diag(v) if kind == "diagonal"
                           else v.mean() * np.eye(ff.shape[1])))
            tot = 0.0
            for i in range(c):
                for j in range(c):
                    if i != j:
                        s_ = 0.5 * (st[i][1] + st[j][1])
                        dd = st[i][0] - st[j][0]
                        db = dd @ np.linalg.solve(s_, dd) / 8 + 0.5 * (
                            np.linalg.slogdet(s_)[1] - 0.5 * np.linalg.slogdet(st[i][1])[1]
                            - 0.5 * np.linalg.slogdet(st[j][1])[1])
                        tot += np.exp(-db)
            return -tot
        rec("gbc (spherical) vs full-matrix formula", mn.gbc(f, y0), gbc_full(f, "spherical"), 1e-10)
        rec("gbc:diagonal vs full-matrix formula", mn.gbc(f, y0, gaussian="diagonal"),
            gbc_full(f, "diagonal"), 1e-10)
        k64 = min(64, n - 1, d)
        fp = PCA(n_components=k64, svd_solver="full").fit_transform(f)
        rec("gbc:pca64 vs sklearn PCA + full formula", mn.gbc(f, y0, pca_dims=64),
            gbc_full(fp, "spherical"), 1e-9)

        # PCA scores (with sign convention) against sklearn PCA (u-based svd_flip)
        k32 = min(32, n - 1, d)
        rec("pca_scores vs sklearn PCA(full) (abs)",
            np.max(np.abs(mn.pca_scores(f, k32)[0]
                          - PCA(n_components=k32, svd_solver="full").fit_transform(f))), 0.0, 1e-9)

        # PARC against scipy.stats.spearmanr on the same (exact) RDMs
        zz = PCA(n_components=k32, svd_solver="full").fit_transform(f)
        zz = (zz - zz.mean(axis=0)) / zz.std(axis=0)
        iu = np.triu_indices(n, 1)
        r1 = (1 - np.corrcoef(zz))[iu]
        r2 = np.where(y[:, None] == y[None, :], 0.0, 1.0 + 1.0 / (c - 1))[iu]
        rec("parc vs scipy spearmanr", mn.parc(f, y0), 100 * scipy.stats.spearmanr(r1, r2)[0], 1e-10)

        # SFDA: the eigh-based coefficients equal means @ inv(shrunk S_w)
        _, info = mn.sfda_details(f, y0)
        lam = info["shrinkage"]
        pri = cnt / n
        sw = sum(pri[k] * np.cov(f[y == k].T, bias=True).reshape(d, d) for k in range(c))
        sws = (1 - lam) * sw + lam * np.trace(sw) / d * np.eye(d)
        logits = f @ np.linalg.solve(sws, means.T) - 0.5 * np.einsum(
            "cd,cd->c", means, np.linalg.solve(sws, means.T).T) + np.log(pri)
        p_alt = mn._softmax_rows(logits)
        p_eig, _ = mn._sfda_fit(f, y, c, lam)
        rec("sfda first-pass probs: eigh vs solve (abs)", np.max(np.abs(p_eig - p_alt)), 0.0, 1e-8)

        # ETran: np.linalg.eigh on the non-symmetric inv(S_w') S_b gives an
        # orthonormal V, so coef = M V V^T = M
        st = np.cov(f.T, bias=True).reshape(d, d)
        st = (1 - lam) * st + lam * np.trace(st) / d * np.eye(d)
        _, vv = np.linalg.eigh(np.linalg.inv(sws) @ (st - sws))
        rec("etran: M V V^T == M (abs)", np.max(np.abs(means @ vv @ vv.T - means)), 0.0, 1e-10)

        # NCTI components against sklearn PCA + LinearDiscriminantAnalysis
        pca = PCA(n_components=k64, svd_solver="full")
        xp = pca.fit_transform(f)
        t = max(np.exp(-pca.explained_variance_[:32].sum()), 1e-10)
        lda = (LinearDiscriminantAnalysis(solver="svd") if t == 1e-10 else
               LinearDiscriminantAnalysis(solver="eigen", shrinkage=float(t)))
        low = lda.fit_transform(xp, y)
        low = low - low.mean(axis=0)
        pr = lda.predict_proba(xp)
        comp = mn.ncti_components(f, y0)
        rec("ncti:seli vs sklearn LDA", comp["seli"], np.linalg.norm(low, ord="nuc"), 1e-9)
        rec("ncti:ncc vs sklearn LDA", comp["ncc"], np.mean(pr[np.arange(n), y]), 1e-9)
        rec("ncti:vc vs sklearn LDA", comp["vc"], np.log(sum(
            np.linalg.norm(pr[y == k], ord="nuc") for k in range(c))), 1e-9)

        # kNN against sklearn NearestNeighbors (2 neighbours, self excluded)
        nb = NearestNeighbors(n_neighbors=2).fit(f).kneighbors(f, return_distance=False)
        other = np.where(nb[:, 0] == np.arange(n), nb[:, 1], nb[:, 0])
        rec("knn vs sklearn NearestNeighbors", mn.knn_loo(f, y0), 100 * np.mean(y[other] == y),
            1e-15)

        # logistic: the same split fitted by sklearn (same objective)
        for seed in (0, 1):
            tr = mn._logistic_split_indices(y, c, seed)
            lr = LogisticRegression(C=1.0, multi_class="multinomial", solver="lbfgs", tol=1e-12,
                                    max_iter=100000).fit(f[tr], y[tr])
            rec("logistic vs sklearn LogisticRegression", mn.logistic_split(f, y0, seed),
                100 * np.mean(lr.predict(f[~tr]) == y[~tr]), 1e-15)

        # NLEEP: PCA-0.8 dimension and EM against sklearn from the same start
        val, info = mn.nleep_details(f, y0, seed=0)
        rec("nleep PCA(0.8) dims vs sklearn", info["pca_dims"],
            PCA(n_components=0.8, svd_solver="full").fit(f).n_components_, 0.0)
        x = info["x"]
        kk = 5 * c
        w0, m0, c0 = mn._gmm_m_step(x, np.eye(kk)[info["init_labels"]], 1e-6)
        g = GaussianMixture(kk, covariance_type="full", weights_init=w0, means_init=m0,
                            precisions_init=np.linalg.inv(c0), tol=1e-3, max_iter=100,
                            reg_covar=1e-6).fit(x)
        rec("nleep vs sklearn GaussianMixture (same initialisation)", val,
            mn.leep(g.predict_proba(x), y0), 1e-9)
        hy = -np.sum(cnt / n * np.log(cnt / n))
        if not (-hy - 1e-12 <= val <= 0):
            raise AssertionError("nleep outside [-H(Y), 0] for %s" % name)
        rec("leep with a single source class == -H(Y)",
            mn.leep(np.ones((n, 1)), y0), -hy, 1e-12)

        if "probs" in case:
            p = case["probs"]
            # LEEP with one-hot probabilities equals NCE
            oh = np.eye(p.shape[1])[np.argmax(p, axis=1)]
            rec("leep(one-hot argmax) == nce", mn.leep(oh, y0), mn.nce(p, y0), 1e-12)
            lv = mn.leep(p, y0)
            if not (-hy - 1e-12 <= mn.nce(p, y0) <= 0 and -hy - 1e-12 <= lv <= 0):
                raise AssertionError("leep/nce outside [-H(Y), 0] for %s" % name)

    bad = []
    for k, (err, tol) in worst.items():
        ok = err <= tol
        print("%-4s %-58s max err %.2e (tol %.0e)" % ("ok" if ok else "FAIL", k, err, tol))
        if not ok:
            bad.append(k)
    if bad:
        raise AssertionError("cross-checks failed: %s" % ", ".join(bad))
    print("all cross-checks passed")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "metrics"))
    ap.add_argument("--check", action="store_true",
                    help="also run the cross-checks against scipy/sklearn (needs python3-sklearn)")
    args = ap.parse_args(argv)
    out = os.path.normpath(args.out)
    os.makedirs(out, exist_ok=True)

    refs = {"schema_version": 1, "cases": {}}
    for name, case in build_cases().items():
        f = np.ascontiguousarray(case["features"])
        y = np.ascontiguousarray(case["labels"], dtype=np.int64)
        np.save(os.path.join(out, name + "_features.npy"), f)
        np.save(os.path.join(out, name + "_labels.npy"), y)
        entry = {"n": int(f.shape[0]), "d": int(f.shape[1]),
                 "classes": [int(c) for c in np.unique(y)],
                 "class_counts": [int(c) for c in np.unique(y, return_counts=True)[1]],
                 "feature_dtype": str(f.dtype), "probs_shape": None}
        if "probs" in case:
            p = np.ascontiguousarray(case["probs"], dtype=np.float64)
            np.save(os.path.join(out, name + "_probs.npy"), p)
            entry["probs_shape"] = list(p.shape)
        entry["values"] = compute_values(dict(case, features=f, labels=y))
        refs["cases"][name] = entry
        print("%-10s n=%-3d d=%-3d %s" % (name, entry["n"], entry["d"], " ".join(
            "%s=%.6g" % (k, x) for k, x in entry["values"].items() if x is not None)))

    with open(os.path.join(out, "refs.json"), "w") as fh:
        json.dump(refs, fh, indent=1)
        fh.write("\n")

    tall_labels = np.load(os.path.join(out, "tall_labels.npy"))
    zoo = build_zoo(tall_labels)
    for m, f in zoo.items():
        np.save(os.path.join(out, "zoo_%s_features.npy" % m), np.ascontiguousarray(f))
    zoo_refs = compute_zoo(zoo, tall_labels)
    with open(os.path.join(out, "zoo.json"), "w") as fh:
        json.dump(zoo_refs, fh, indent=1)
        fh.write("\n")
    print("zoo: ncti %s" % " ".join("%s=%.6g" % kv for kv in zoo_refs["ncti"].items()))
    print("wrote %s" % out)
    if args.check:
        run_checks(build_cases())


if __name__ == "__main__":
    main()
