#!/usr/bin/python3
"""NumPy reference implementations of transferability metrics (not LogME).

Written from the papers' definitions; the public reference code was read
only to learn what it computes (no code taken from it).  Every function works
in float64 (float32 input is upcast first) and is the reference against which
tlkit's C++ metrics are tested (tools/make_metric_refs.py writes the fixtures
in tests/data/metrics/).  docs/metrics/<name>.md describes each metric.

Conventions shared by every function
------------------------------------
* features: N x D array; labels: N integers of any values.  The classes are
  the DISTINCT labels present, in ascending order (np.unique); class index c
  in the formulas below is the position in that list.  Nothing is created for
  label values that do not occur (the reference repositories mostly use
  range(max(label) + 1) instead; the docs say where that matters).
* probs: N x Cs source-model probabilities (rows sum to 1), for LEEP and NCE.
* Each metric returns a Python float.  Functions named *_details return
  (float, dict of components).
* "pinv(A, rcond)" is the Moore-Penrose pseudo-inverse that zeroes singular
  values s <= rcond * max(s) (np.linalg.pinv semantics).

Functions (key in tests/data/metrics/refs.json in brackets):
  leep(probs, labels)                          [leep]
  nce(probs, labels)                           [nce]
  hscore(features, labels, rcond=1e-15)        [hscore]
  hscore_google(features, labels, rcond=1e-5)  [hscore:google]
  hscore_shrink(features, labels)              [hscore_shrink]
  ledoit_wolf(features)                        (helper, checked against sklearn)
  transrate(features, labels, eps, weighting)  [transrate], [transrate:tllib]
  gbc(features, labels, gaussian, pca_dims)    [gbc], [gbc:diagonal], [gbc:spherical_google], [gbc:pca64]
  sfda(features, labels)                       [sfda]
  parc(features, labels, pca_dims=32)          [parc]
  knn_loo(features, labels)                    [knn]
  logistic_split(features, labels, seed=0)     [logistic], [logistic:seed1]
  nleep(features, labels, seed, ...)           [nleep], [nleep:seed_min], [nleep:seed_max], [nleep:nolog]
  ncti_components(features, labels)            [ncti:seli], [ncti:ncc], [ncti:vc]
  etran_components(features, labels)           [etran:lda], [etran:energy]
  ncti_combine(components_per_model), etran_combine(...)   (zoo-level min-max)
"""

import math

import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.special

__all__ = [
    "leep", "nce", "nce_from_source_labels",
    "hscore", "hscore_google", "hscore_shrink", "ledoit_wolf",
    "transrate", "transrate_details", "coding_rate",
    "gbc", "sfda", "sfda_details", "parc", "knn_loo", "logistic_split",
    "logistic_split_details", "nleep", "nleep_details", "gmm_posteriors", "pca_scores",
    "ncti_components", "ncti_combine", "etran_components", "etran_combine",
    "minmax",
]


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _features(features):
    f = np.asarray(features)
    if f.ndim != 2:
        raise ValueError("features must be N x D, got shape %r" % (f.shape,))
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain a non-finite value")
    return f.astype(np.float64)


def _labels(labels, n):
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError("labels must have shape (%d,), got %r" % (n, y.shape))
    classes, idx = np.unique(y, return_inverse=True)
    return classes, idx.astype(np.int64), np.bincount(idx, minlength=classes.size)


def _prep(features, labels):
    f = _features(features)
    classes, y, counts = _labels(labels, f.shape[0])
    return f, y, classes.size, counts


def _class_means(f, y, c):
    means = np.zeros((c, f.shape[1]))
    np.add.at(means, y, f)
    return means / np.bincount(y, minlength=c)[:, None]


def _pinv_sym(a, rcond):
    """pinv of a symmetric matrix with np.linalg.pinv's cutoff (s <= rcond * max s)."""
    return np.linalg.pinv(a, rcond=rcond, hermitian=False)


def pca_scores(features, k):
    """Exact PCA: the first k principal-component scores of the centred data.

    Fc = F - mean(F) = U S V^T (thin SVD, singular values descending); scores
    = U[:, :k] * S[:k].  Callers cap k at min(N - 1, D), the rank of centred
    data (components beyond it are rounding noise).  Sign convention: each
    score column is flipped so that
    its entry of largest absolute value is positive (the first such entry on
    ties), which is sklearn's svd_flip(u_based_decision=True) convention used
    by sklearn.decomposition.PCA up to version 1.4.  Returns (scores, S, Vt).
    """
    f = _features(features)
    fc = f - f.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(fc, full_matrices=False)
    pos = np.argmax(np.abs(u), axis=0)
    signs = np.sign(u[pos, np.arange(u.shape[1])])
    signs[signs == 0] = 1.0
    u = u * signs
    vt = vt * signs[:, None]
    return u[:, :k] * s[:k], s, vt


def minmax(values):
    """(v - min) / (max - min) over a zoo of models (NaN when all are equal)."""
    v = np.asarray(values, dtype=np.float64)
    return (v - v.min()) / (v.max() - v.min())


def _softmax_rows(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# LEEP, NCE
# ---------------------------------------------------------------------------
def leep(probs, labels):
    """LEEP, Nguyen, Hassner, Seeger, Archambeau: "LEEP: A New Measure to Evaluate
    Transferability of Learned Representations", ICML 2020.

        joint(y, z) = (1/N) sum_{i: y_i = y} theta_i(z)        (C x Cs)
        P(y | z)    = joint(y, z) / sum_y' joint(y', z)
        LEEP        = (1/N) sum_i ln( sum_z theta_i(z) P(y_i | z) )

    theta = probs (N x Cs, rows summing to 1).  Higher is better; LEEP <= 0,
    and LEEP >= -H(Y|Z)_soft >= -H(Y) (Jensen; H(Y) = label entropy).
    A source class with zero total mass has P(.|z) = 0 here (google-research
    leep.py: divide_no_nan); thuml/LogME LEEP.py and TLlib
    tllib/ranking/leep.py would produce NaN.  No epsilon inside the log: an
    expected prediction of exactly 0 gives -inf (google-research substitutes
    -ln C_t for it).  Matches TLlib log_expected_empirical_prediction to
    rounding on any input where that is finite.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError("probs must be N x Cs")
    _, y, _ = _labels(labels, p.shape[0])
    with np.errstate(divide="ignore"):
        return float(np.mean(np.log(_expected_empirical_prediction(p, y))))


def _expected_empirical_prediction(p, y):
    """sum_z theta_i(z) P(y_i | z) for each i (y = class indices 0..C-1)."""
    n = p.shape[0]
    joint = np.zeros((int(y.max()) + 1, p.shape[1]))
    np.add.at(joint, y, p)
    joint /= n
    pz = joint.sum(axis=0)
    cond = np.divide(joint, pz[None, :], out=np.zeros_like(joint), where=pz > 0)
    return np.einsum("iz,iz->i", p, cond[y])


def nce_from_source_labels(source_labels, labels):
    """NCE from hard source labels z_i (any integers): see nce()."""
    z_classes, z = np.unique(np.asarray(source_labels), return_inverse=True)
    _, y, _ = _labels(labels, z.shape[0])
    n = y.shape[0]
    joint = np.zeros((int(y.max()) + 1, z_classes.size))
    np.add.at(joint, (y, z), 1.0)
    joint /= n
    pz = joint.sum(axis=0)
    nz = joint > 0
    ratio = np.where(nz, joint / np.where(pz > 0, pz, 1.0)[None, :], 1.0)
    return float(np.sum(np.where(nz, joint * np.log(ratio), 0.0)))


def nce(probs, labels):
    """NCE, Tran, Nguyen, Hassner: "Transferability and Hardness of Supervised
    Classification Tasks", ICCV 2019.

        z_i = argmax_z probs[i, z]          (lowest index on ties)
        P(y, z) = #{i: y_i = y, z_i = z} / N
        NCE = -H(Y | Z) = sum_{y,z} P(y, z) ln( P(y, z) / P(z) ),  0 ln 0 = 0

    NCE <= 0, higher is better, -H(Y) <= NCE.  TLlib
    tllib/ranking/nce.py (= thuml/LogME NCE.py) adds 1e-20 inside the log, a
    difference below float64 rounding for P(y|z) >= 1/N.  dbolya/parc
    methods.py NegativeCrossEntropy adds eps = 1e-5 to the joint and the
    marginal, which changes the value (not reproduced).
    """
    p = np.asarray(probs)
    return nce_from_source_labels(np.argmax(p, axis=1), labels)


# ---------------------------------------------------------------------------
# H-score and shrinkage H-score
# ---------------------------------------------------------------------------
def _hscore_parts(f, y, c):
    means = _class_means(f, y, c)
    g = means[y]
    covf = np.cov(f, rowvar=False)
    covg = np.cov(g, rowvar=False)
    return np.atleast_2d(covf), np.atleast_2d(covg)


def hscore(features, labels, rcond=1e-15):
    """H-score, Bao et al.: "An
    Information-Theoretic Approach to Transferability in Task Transfer
    Learning", ICIP 2019.

        g_i = mean of the features of y_i's class          (N x D)
        H = tr( pinv(cov f, rcond) cov g ),   cov = np.cov (1/(N-1); the
                                              normalisation cancels)

    Equivalently H = sum_c n_c (mu_c - mu)^T pinv(S_f) (mu_c - mu) / (N - 1).
    Higher is better; 0 <= H <= C - 1 in exact arithmetic, with H = C - 1
    whenever the centred features have rank N - 1 (e.g. D >= N - 1): H-score
    cannot rank models on wide features.  rcond = 1e-15 (relative to the
    largest singular value) as TLlib tllib/ranking/hscore.py h_score and the
    authors' code quoted in google-research hscore.py's docstring; with
    rank-deficient cov f that cut keeps rounding-level singular values, so the
    value is then not reproducible (refs store null for such cases).
    """
    f, y, c, _ = _prep(features, labels)
    covf, covg = _hscore_parts(f, y, c)
    return float(np.trace(_pinv_sym(covf, rcond) @ covg))


def hscore_google(features, labels, rcond=1e-5):
    """H-score as google-research stable_transfer/transferability/hscore.py
    get_hscore computes it:  trace(pinv(cov f, rcond=1e-5) * cov g)  with an
    ELEMENT-WISE product, i.e.  sum_d pinv(cov f)_dd (cov g)_dd.

    This equals tr(pinv(cov f) cov g) only when one of the two matrices is
    diagonal, so it differs from the paper (and from the authors' code quoted
    in that file's own docstring, which uses np.dot) on essentially all real
    data; it is not invariant to rotations of the feature space.  rcond 1e-5
    (vs 1e-15) additionally truncates directions with small variance.
    """
    f, y, c, _ = _prep(features, labels)
    covf, covg = _hscore_parts(f, y, c)
    return float(np.sum(np.diag(_pinv_sym(covf, rcond)) * np.diag(covg)))


def ledoit_wolf(features):
    """Ledoit-Wolf shrunk covariance of the rows of X (centred internally).

    With Xc = X - mean, n samples, p features, S = Xc^T Xc / n, mu = tr S / p:
        delta = ||S - mu I||_F^2 / p
        beta  = ( sum_i ||x_i||^4 ... ) computed as
                (sum_{k,l} sum_i x_ik^2 x_il^2 / n  -  ||S||_F^2) / (p n)
        alpha = min(beta, delta) / delta   (0 when beta = 0)
        Sigma = (1 - alpha) S + alpha mu I
    Returns (Sigma, alpha).  This is sklearn.covariance.LedoitWolf
    (assume_centered=False) and ledoit_wolf_shrinkage; p = 1 gives alpha = 0.
    """
    x = _features(features)
    n, p = x.shape
    xc = x - x.mean(axis=0, keepdims=True)
    s = xc.T @ xc / n
    mu = np.trace(s) / p
    if p == 1:
        return s, 0.0
    x2 = xc * xc
    delta_ = np.sum(s * s)
    beta_ = np.sum(x2.T @ x2)
    beta = (beta_ / n - delta_) / (p * n)
    delta = (delta_ - 2.0 * mu * np.trace(s) + p * mu * mu) / p
    beta = min(beta, delta)
    alpha = 0.0 if beta == 0 else beta / delta
    sigma = (1.0 - alpha) * s
    sigma[np.diag_indices(p)] += alpha * mu
    return sigma, float(alpha)


def hscore_shrink(features, labels):
    """Shrinkage-based H-score, Ibrahim, Ponomareva, Mazumder: "Newer is not
    always better: Rethinking transferability metrics, their peculiarities,
    stability and performance", ECML-PKDD 2022 (openreview iz_Wwmfquno).

        Sigma_a, a = LedoitWolf(centred features)   (1/N normalisation)
        H_a = tr( pinv(Sigma_a, 1e-15) (1 - a) cov g ),  cov g = np.cov (1/(N-1))

    Exactly TLlib tllib/ranking/hscore.py regularized_h_score.  Note the mixed
    normalisation (1/N inside Ledoit-Wolf, 1/(N-1) for cov g): when a = 0 the
    value is N/(N-1) times hscore().  Higher is better.
    """
    f, y, c, _ = _prep(features, labels)
    f = f - f.mean(axis=0, keepdims=True)
    sigma, alpha = ledoit_wolf(f)
    _, covg = _hscore_parts(f, y, c)
    return float(np.trace(_pinv_sym(sigma, 1e-15) @ ((1.0 - alpha) * covg)))


# ---------------------------------------------------------------------------
# TransRate
# ---------------------------------------------------------------------------
def coding_rate(z, eps=1e-4):
    """R(Z, eps) = 1/2 logdet(I_D + Z^T Z / (n eps)) for the n x D matrix Z."""
    n, d = z.shape
    if n == 0:
        raise ValueError("coding rate of an empty matrix")
    sign, logdet = np.linalg.slogdet(np.eye(d) + (z.T @ z) / (n * eps))
    if sign <= 0:
        raise FloatingPointError("non-positive determinant in coding_rate")
    return 0.5 * float(logdet)


def transrate_details(features, labels, eps=1e-4, weighting="paper"):
    """TransRate, Huang, Huang, Rong, Yang, Wei: "Frustratingly Easy
    Transferability Estimation", ICML 2022.

        Z    = F - mean(F)              (global centring only; the class
                                         blocks are NOT re-centred)
        R(Z) = 1/2 logdet(I_D + Z^T Z / (N eps))
        R_c  = 1/2 logdet(I_D + Z_c^T Z_c / (n_c eps)),  Z_c = rows of class c
        weighting='paper':  TrR = R(Z) - sum_c (n_c / N) R_c
        weighting='tllib':  TrR = R(Z) - (1/C) sum_c R_c

    With the 'paper' weights TrR >= 0 (Z^T Z/N = sum_c (n_c/N) Z_c^T Z_c/n_c and
    logdet is concave).
    'paper' is the class-conditional rate R(Z, eps | Y) of the coding-rate
    literature the paper builds on, and what the authors' code computes
    (Long-Kai/TransRate extract_result_utils.py process_transrate_logs
    returns sum(rzc * nc / n) / 2).  'tllib' is TLlib
    tllib/ranking/transrate.py (RZ - RZY / K, also the "10 lines of code"
    snippet most copies carry), averaging over the classes present (TLlib
    itself loops over range(max label + 1) and raises ZeroDivisionError for a
    label value with no samples).  The two agree on balanced classes.  The
    authors' own pipeline differs further (rows L2-normalised, eigenvalue form
    divided by rank(Z), per-dataset eps); not reproduced.  Higher is better.
    Returns (score, {"rz", "rzy", "per_class", "counts"}).
    """
    f, y, c, counts = _prep(features, labels)
    if weighting not in ("paper", "tllib"):
        raise ValueError("weighting must be 'paper' or 'tllib'")
    z = f - f.mean(axis=0, keepdims=True)
    rz = coding_rate(z, eps)
    per_class = np.array([coding_rate(z[y == k], eps) for k in range(c)])
    if weighting == "paper":
        rzy = float(np.sum(per_class * counts / f.shape[0]))
    else:
        rzy = float(np.mean(per_class))
    return rz - rzy, {"rz": rz, "rzy": rzy, "per_class": per_class.tolist(),
                      "counts": counts.tolist()}


def transrate(features, labels, eps=1e-4, weighting="paper"):
    """TransRate; see transrate_details()."""
    return transrate_details(features, labels, eps, weighting)[0]


# ---------------------------------------------------------------------------
# GBC
# ---------------------------------------------------------------------------
def gbc(features, labels, gaussian="spherical", pca_dims=None, variance_floor=1e-4):
    """GBC, Pandy, Agostinelli, Uijlings, Ferrari, Mensink: "Transferability
    Estimation using Bhattacharyya Class Separability", CVPR 2022.

    Per class c: mean mu_c and POPULATION variance v_c (1/n_c) of each
    dimension, floored: v_c = max(v_c, variance_floor) (google-research
    gbc.py: tf.maximum(variance, 1e-4)).  Bhattacharyya distance between
    Gaussians N(mu_i, S_i), N(mu_j, S_j), S = (S_i + S_j)/2:
        D_B = 1/8 (mu_i - mu_j)^T S^-1 (mu_i - mu_j)
              + 1/2 ln( det S / sqrt(det S_i det S_j) )
    gaussian='diagonal':  S_c = diag(v_c):
        D_B = 1/8 sum_d (dmu_d)^2 / s_d + 1/2 sum_d [ln s_d - (ln v_id + ln v_jd)/2]
    gaussian='spherical': S_c = sigma_c I, sigma_c = mean_d v_c (after the floor):
        D_B = 1/8 sum_d (dmu_d)^2 / s + D/2 [ln s - (ln sigma_i + ln sigma_j)/2]
    gaussian='spherical_google': as 'spherical' but the log term is NOT
        multiplied by D (google-research stable_transfer/transferability/gbc.py
        compute_bhattacharyya_distance reduce_sums the log of a scalar);
        this is the reference's default gaussian_type.
    GBC = - sum_{i != j} exp(-D_B(i, j))  (ordered pairs: twice the unordered sum).
    Higher (closer to 0) is better; -C(C-1) <= GBC <= 0.

    pca_dims: None = the features as given (tlkit's core); an integer k =
    exact PCA to min(k, N - 1, D) dimensions first (pca_scores).  The reference's
    experiment config (config_transferability_source_selection.py:
    gbc.pca_reduction = 64) applies sklearn PCA(64, svd_solver='full') and
    casts the result to float32; GBC is invariant to the PCA sign convention.
    """
    f, y, c, _ = _prep(features, labels)
    if pca_dims is not None:
        f = pca_scores(f, min(int(pca_dims), f.shape[0] - 1, f.shape[1]))[0]
    d = f.shape[1]
    means = _class_means(f, y, c)
    var = np.stack([np.mean((f[y == k] - means[k]) ** 2, axis=0) for k in range(c)])
    var = np.maximum(var, variance_floor)
    total = 0.0
    for i in range(c):
        for j in range(c):
            if i == j:
                continue
            dmu2 = (means[i] - means[j]) ** 2
            if gaussian == "diagonal":
                s = 0.5 * (var[i] + var[j])
                db = np.sum(dmu2 / s) / 8.0 + 0.5 * np.sum(
                    np.log(s) - 0.5 * np.log(var[i]) - 0.5 * np.log(var[j]))
            elif gaussian in ("spherical", "spherical_google"):
                si, sj = var[i].mean(), var[j].mean()
                s = 0.5 * (si + sj)
                logterm = math.log(s) - 0.5 * math.log(si) - 0.5 * math.log(sj)
                mult = d if gaussian == "spherical" else 1.0
                db = np.sum(dmu2) / s / 8.0 + 0.5 * mult * logterm
            else:
                raise ValueError("gaussian must be spherical, diagonal or spherical_google")
            total += math.exp(-db)
    return float(-total)


# ---------------------------------------------------------------------------
# SFDA
# ---------------------------------------------------------------------------
def _power_lambda_max(a, iterations=3):
    """TencentARC/SFDA utils.py iterative_A: x = row sums of A; 3 times
    {y = Ax/|Ax|; x = Ay/|Ay|}; return x^T A y."""
    x = a.sum(axis=1)
    for _ in range(iterations):
        t = a @ x
        yv = t / np.linalg.norm(t)
        t = a @ yv
        x = t / np.linalg.norm(t)
    return float(x @ a @ yv)


def _sfda_fit(x, y, c, shrinkage):
    """One regularised-FDA fit; returns (probabilities N x C, shrinkage)."""
    n, d = x.shape
    priors = np.bincount(y, minlength=c) / float(n)
    means = _class_means(x, y, c)
    sw = np.zeros((d, d))
    for k in range(c):
        xk = x[y == k]
        xk = xk - xk.mean(axis=0, keepdims=True)
        sw += priors[k] * (xk.T @ xk) / xk.shape[0]          # np.cov(bias=1)
    if shrinkage is None:
        shrinkage = max(math.exp(-5.0 * _power_lambda_max(sw, 3)), 1e-10)
    xc = x - x.mean(axis=0, keepdims=True)
    st = xc.T @ xc / n
    st = (1.0 - shrinkage) * st + shrinkage * (np.trace(st) / d) * np.eye(d)
    sw_s = (1.0 - shrinkage) * sw + shrinkage * (np.trace(sw) / d) * np.eye(d)
    sb = st - sw_s
    evals, evecs = scipy.linalg.eigh(sb, sw_s)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = (means @ evecs) @ evecs.T                       # = means @ inv(sw_s)
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return _softmax_rows(x @ coef.T + intercept), shrinkage


def sfda_details(features, labels):
    """SFDA, Shao, Zhao, Ge, Zhang, Yang, Wang, Shan, Luo: "Not All Models Are
    Equal: Predicting Model Transferability in a Self-challenging Fisher
    Space", ECCV 2022 -- exactly TencentARC/SFDA metrics.py SFDA_Score:

    1. Fit: priors pi_c = n_c/N, means mu_c, S_w = sum_c pi_c cov_c
       (np.cov bias=1, i.e. 1/n_c), lambda = max(exp(-5 l), 1e-10) with l the
       3-step power estimate of lambda_max(S_w) (utils.py iterative_A),
       shrink(S) = (1 - lambda) S + lambda tr(S)/D I;  S_t = shrink(cov_bias1(X)),
       S_b = S_t - shrink(S_w);  V = eigh(S_b, shrink(S_w)) (all D generalised
       eigenvectors, V^T shrink(S_w) V = I), coef = M V V^T, b_c =
       -1/2 mu_c . coef_c + ln pi_c;  p(c|x) = softmax(x . coef_c + b_c).
       Since all D eigenvectors are kept, V V^T = shrink(S_w)^-1: the
       projection and S_b have no effect on the probabilities (this is LDA
       with a shrunk within-class covariance), unlike the paper's projection
       onto the leading Fisher directions.
    2. ConfMix: q = softmax(p) row-wise (a softmax of probabilities, as the
       code does "to soften"), mu_-c = mean of the OTHER class means (computed
       before mixing); for x of class c: x <- q_c(x) x + (1 - q_c(x)) mu_-c.
    3. Refit on the mixed X with the SAME lambda; SFDA = (1/N) sum_i p(y_i|x_i)
       (the log is dropped: "the log function is ignored in case of
       instability").
    Differences: this copy does not modify the caller's X (the reference
    overwrites it in place), and it uses the distinct labels as classes (the
    reference indexes by label value and needs labels 0..C-1).
    Higher is better, in (0, 1].  Returns (score, {"shrinkage", ...}).
    """
    f, y, c, _ = _prep(features, labels)
    n = f.shape[0]
    p1, lam = _sfda_fit(f, y, c, None)
    q = _softmax_rows(p1)
    means = _class_means(f, y, c)
    others = (means.sum(axis=0, keepdims=True) - means) / (c - 1)
    qy = q[np.arange(n), y][:, None]
    x2 = qy * f + (1.0 - qy) * others[y]
    p2, _ = _sfda_fit(x2, y, c, lam)
    score = float(np.mean(p2[np.arange(n), y]))
    return score, {"shrinkage": lam, "first_pass": float(np.mean(p1[np.arange(n), y]))}


def sfda(features, labels):
    """SFDA; see sfda_details()."""
    return sfda_details(features, labels)[0]


# ---------------------------------------------------------------------------
# PARC
# ---------------------------------------------------------------------------
def _rankdata(v):
    """Ranks 1..M with ties averaged (scipy.stats.rankdata 'average')."""
    order = np.argsort(v, kind="mergesort")
    sv = v[order]
    ranks = np.empty(v.shape[0])
    m = v.shape[0]
    starts = np.flatnonzero(np.concatenate(([True], sv[1:] != sv[:-1])))
    ends = np.concatenate((starts[1:], [m]))
    avg = (starts + ends + 1) / 2.0          # mean of 1-based positions
    run_rank = np.repeat(avg, ends - starts)
    ranks[order] = run_rank
    return ranks


def _pearson(a, b):
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / math.sqrt((a @ a) * (b @ b)))


def parc(features, labels, pca_dims=32):
    """PARC, Bolya, Mittapalli, Hoffman: "Scalable Diverse Model Selection
    for Accessible Transfer Learning", NeurIPS 2021.

        F' = exact PCA scores, k = min(pca_dims, N - 1, D) (pca_scores, sign
             convention documented there); pca_dims=None: no PCA
        Z  = StandardScaler(F') (columns mean 0, std 1 with 1/N)
        RDM_f = 1 - corrcoef(rows of Z)      (N x N, correlation across dims)
        RDM_y = 1 - corrcoef(rows of onehot(y)) = 0 (same class) or
                1 + 1/(C-1) (different classes), computed exactly
        PARC = 100 * Spearman(upper triangle of RDM_f, upper triangle of RDM_y)
    (Spearman = Pearson of average ranks.)  Higher is better.

    The references compute RDM_y as 1 - np.corrcoef(onehot), which gives 0
    or 1.1e-16 for same-class pairs depending on rounding; those two values
    then get different Spearman ranks, splitting the tie group: on the `tall`
    fixture merely permuting the rows moves that computation from 27.3040
    to 27.3028.  tlkit (and this function) uses the exact values.

    dbolya/parc methods.py PARC / feature_reduce (and TencentARC/SFDA
    metrics.py PARC_Score) use sklearn PCA(svd_solver='randomized',
    random_state=1919, iterated_power=1): an approximation of these scores,
    and a ValueError when D < pca_dims (the reference caps k by N only).
    Because corrcoef centres each ROW across the k components, PARC depends
    on the sign of each component, so the sign convention is part of the
    definition.  Needs k >= 2 and at least two classes.
    """
    f, y, c, _ = _prep(features, labels)
    n, d = f.shape
    if pca_dims is not None:
        k = min(int(pca_dims), n - 1, d)
        f = pca_scores(f, k)[0]
    z = (f - f.mean(axis=0)) / f.std(axis=0)
    rdm_f = 1.0 - np.corrcoef(z)
    # 1 - corrcoef of one-hot rows, exactly: 0 for a pair of the same class,
    # 1 + 1/(C-1) otherwise (see the docstring)
    rdm_y = np.where(y[:, None] == y[None, :], 0.0, 1.0 + 1.0 / (c - 1))
    iu = np.triu_indices(n, 1)
    return 100.0 * _pearson(_rankdata(rdm_f[iu]), _rankdata(rdm_y[iu]))


# ---------------------------------------------------------------------------
# kNN and logistic proxies
# ---------------------------------------------------------------------------
def knn_loo(features, labels):
    """Leave-one-out 1-nearest-neighbour accuracy, in percent [0, 100].

    For each i, the nearest j != i by Euclidean distance ||x_i - x_j|| (computed
    from differences, not the Gram expansion), ties broken by the lowest j;
    the score is 100 x the fraction of i with y_j = y_i (percent, as
    dbolya/parc methods.py kNN reports it; that code, k=1, l2, no PCA in
    demo.py, drops the first index of an argsort of each row, which is not
    always i itself when rows are duplicated).  Higher is better.
    """
    f, y, _, _ = _prep(features, labels)
    n = f.shape[0]
    correct = 0
    for i in range(n):
        d2 = np.sum((f - f[i]) ** 2, axis=1)
        d2[i] = np.inf
        j = int(np.argmin(d2))
        correct += int(y[j] == y[i])
    return 100.0 * correct / n


def _logistic_split_indices(y, c, seed):
    parity = int(seed) % 2
    train = np.zeros(y.shape[0], dtype=bool)
    for k in range(c):
        idx = np.flatnonzero(y == k)
        train[idx[parity::2]] = True
    if parity == 1:
        # a class with one sample has no odd position: keep it in training
        for k in range(c):
            idx = np.flatnonzero(y == k)
            if idx.size == 1:
                train[idx] = True
    return train


def logistic_split_details(features, labels, seed=0, c_reg=1.0):
    """Held-out accuracy of multinomial logistic regression (a proxy metric).

    Split (deterministic): for each class, take its samples in row order;
    positions 0, 2, 4, ... train and 1, 3, 5, ... test when seed is even, the
    other way round when seed is odd (seeds 0 and 1 are the two folds of a
    class-stratified 2-fold split; a class with one sample always trains).
    Model: softmax over all C classes (also for C = 2), weights W (D x C) and
    unpenalised intercepts b, minimising
        0.5 ||W||_F^2 + c_reg * sum_{i in train} -ln softmax(x_i W + b)_{y_i}
    (sklearn LogisticRegression(C=1, multi_class='multinomial') objective),
    on the raw features (no scaling), solved to convergence with scipy L-BFGS
    (gtol 1e-10).  Score: percentage (0-100) of test samples whose argmax
    class (lowest index on ties) is the true class.  Higher is better.
    dbolya/parc methods.py SplitLogistic trains on the FIRST half of the rows
    in file order (split_data) with max_iter=20, tol=0.1 (not converged).
    Returns (score, {"n_train", "n_test", "min_margin", "converged"});
    min_margin = smallest top-1 minus top-2 logit gap over the test set.
    """
    f, y, c, _ = _prep(features, labels)
    train = _logistic_split_indices(y, c, seed)
    xtr, ytr = f[train], y[train]
    xte, yte = f[~train], y[~train]
    if xte.shape[0] == 0:
        raise ValueError("empty test split")
    d = f.shape[1]
    onehot = np.eye(c)[ytr]

    def fg(theta):
        w = theta[: d * c].reshape(d, c)
        b = theta[d * c:]
        logits = xtr @ w + b
        lse = scipy.special.logsumexp(logits, axis=1)
        loss = 0.5 * np.sum(w * w) + c_reg * np.sum(lse - np.sum(logits * onehot, axis=1))
        pr = np.exp(logits - lse[:, None])
        g = c_reg * (pr - onehot)
        gw = w + xtr.T @ g
        gb = g.sum(axis=0)
        return loss, np.concatenate([gw.ravel(), gb])

    res = scipy.optimize.minimize(fg, np.zeros(d * c + c), jac=True, method="L-BFGS-B",
                                  options={"maxiter": 100000, "gtol": 1e-10, "ftol": 0.0,
                                           "maxcor": 30})
    w = res.x[: d * c].reshape(d, c)
    b = res.x[d * c:]
    logits = xte @ w + b
    pred = np.argmax(logits, axis=1)
    srt = np.sort(logits, axis=1)
    margin = float(np.min(srt[:, -1] - srt[:, -2]))
    acc = 100.0 * int(np.sum(pred == yte)) / yte.shape[0]
    return acc, {"n_train": int(train.sum()), "n_test": int((~train).sum()),
                 "min_margin": margin, "converged": bool(np.max(np.abs(fg(res.x)[1])) < 1e-6),
                 "weights": w, "intercepts": b}


def logistic_split(features, labels, seed=0):
    """Held-out logistic accuracy; see logistic_split_details()."""
    return logistic_split_details(features, labels, seed)[0]


# ---------------------------------------------------------------------------
# NLEEP (PCA + GMM + LEEP)
# ---------------------------------------------------------------------------
def _kmeans(x, k, rng, max_iter=300):
    """k-means++ seeding (seeded numpy Generator) + Lloyd iterations."""
    n = x.shape[0]
    centres = np.empty((k, x.shape[1]))
    centres[0] = x[rng.integers(n)]
    d2 = np.sum((x - centres[0]) ** 2, axis=1)
    for j in range(1, k):
        tot = d2.sum()
        if tot <= 0:
            centres[j] = x[rng.integers(n)]
        else:
            centres[j] = x[rng.choice(n, p=d2 / tot)]
        d2 = np.minimum(d2, np.sum((x - centres[j]) ** 2, axis=1))
    labels = None
    for _ in range(max_iter):
        dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = np.argmin(dist, axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            m = labels == j
            if m.any():
                centres[j] = x[m].mean(axis=0)
    return labels


def _gmm_m_step(x, resp, reg_covar):
    n, d = x.shape
    nk = resp.sum(axis=0) + 10 * np.finfo(np.float64).eps
    means = (resp.T @ x) / nk[:, None]
    covs = np.empty((resp.shape[1], d, d))
    for j in range(resp.shape[1]):
        diff = x - means[j]
        covs[j] = (resp[:, j] * diff.T) @ diff / nk[j]
        covs[j][np.diag_indices(d)] += reg_covar
    return nk / n, means, covs


def _gmm_log_prob(x, weights, means, covs):
    n, d = x.shape
    out = np.empty((n, weights.shape[0]))
    for j in range(weights.shape[0]):
        chol = np.linalg.cholesky(covs[j])
        sol = scipy.linalg.solve_triangular(chol, (x - means[j]).T, lower=True)
        out[:, j] = (-0.5 * (d * math.log(2 * math.pi) + np.sum(sol * sol, axis=0))
                     - np.sum(np.log(np.diag(chol))) + math.log(weights[j]))
    return out


def gmm_posteriors(x, n_components, seed=0, reg_covar=1e-6, tol=1e-3, max_iter=100,
                   init_labels=None):
    """Full-covariance Gaussian mixture by EM, sklearn GaussianMixture semantics
    (init 'kmeans' -> one-hot responsibilities -> M-step; reg_covar added to
    each covariance diagonal; stop when the change of the mean log-likelihood
    is < tol; max_iter EM steps; a final E-step gives the posteriors).
    init_labels overrides the k-means initial assignment.
    Returns (posteriors N x K, info dict)."""
    x = np.asarray(x, dtype=np.float64)
    if init_labels is None:
        init_labels = _kmeans(x, n_components, np.random.default_rng(seed))
    resp = np.eye(n_components)[init_labels]
    weights, means, covs = _gmm_m_step(x, resp, reg_covar)
    lb = -np.inf
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        prev = lb
        lp = _gmm_log_prob(x, weights, means, covs)
        norm = scipy.special.logsumexp(lp, axis=1)
        resp = np.exp(lp - norm[:, None])
        weights, means, covs = _gmm_m_step(x, resp, reg_covar)
        lb = float(norm.mean())
        if abs(lb - prev) < tol:
            converged = True
            break
    lp = _gmm_log_prob(x, weights, means, covs)
    post = np.exp(lp - scipy.special.logsumexp(lp, axis=1)[:, None])
    return post, {"iterations": it, "converged": converged, "lower_bound": lb,
                  "init_labels": init_labels, "weights": weights, "means": means,
                  "covariances": covs}


def nleep_details(features, labels, seed=0, components_per_class=5, variance=0.8,
                  log=True, init_labels=None):
    """N-LEEP, Li et al.: "Ranking Neural Checkpoints", CVPR 2021.

    1. Exact PCA of the features keeping the smallest k whose cumulative
       explained-variance ratio EXCEEDS `variance` (sklearn
       PCA(n_components=0.8): searchsorted(cumsum, 0.8, side='right') + 1).
    2. Gaussian mixture with K = components_per_class * C components, FULL
       covariances (sklearn's default, used by both references), EM from a
       k-means initialisation (gmm_posteriors; seed drives k-means++).
    3. LEEP (leep()) with the mixture posteriors as the "source probabilities".
       log=False gives the TencentARC/SFDA metrics.py NLEEP variant, which
       returns (1/N) sum_i sum_z theta_i(z) P(y_i|z) without the log.
    References: google-research stable_transfer/transferability/nleep.py
    (GaussianMixture(5 * (max label + 1), random_state=123) on PCA-0.8
    features cast to float32, then LEEP with the log); TencentARC/SFDA
    metrics.py NLEEP (PCA(0.8), GaussianMixture(5 C) without random_state,
    no log; ratio 1 for food and pets).  Neither is reproducible across
    implementations: the value depends on the initialisation.  Invariants that
    hold for any initialisation: -H(Y) <= NLEEP <= 0; with one component
    NLEEP = -H(Y) exactly; with one-hot posteriors NLEEP = NCE of the hard
    assignment; k is fixed by the data.  Higher is better.
    """
    f, y, c, counts = _prep(features, labels)
    scores, s, _ = pca_scores(f, min(f.shape))
    ratio = np.cumsum(s ** 2) / np.sum(s ** 2)
    k = int(np.searchsorted(ratio, variance, side="right") + 1)
    k = min(k, s.shape[0])
    x = scores[:, :k]
    post, info = gmm_posteriors(x, components_per_class * c, seed=seed,
                                init_labels=init_labels)
    if log:
        value = leep(post, y)
    else:
        value = float(np.mean(_expected_empirical_prediction(post, y)))
    info.update({"pca_dims": k, "x": x})
    return value, info


def nleep(features, labels, seed=0, components_per_class=5, variance=0.8, log=True):
    """N-LEEP; see nleep_details()."""
    return nleep_details(features, labels, seed, components_per_class, variance, log)[0]


# ---------------------------------------------------------------------------
# NCTI and ETran components (zoo-level combinations below)
# ---------------------------------------------------------------------------
def _lda_eigen(x, y, c, shrinkage):
    """sklearn LinearDiscriminantAnalysis(solver='eigen', shrinkage=float):
    S_w = sum_c pi_c shrunk(cov_c) (each class covariance shrunk with the same
    fixed alpha, 1/n_c normalisation), S_t = shrunk(cov X), S_b = S_t - S_w,
    eigh(S_b, S_w) sorted descending; coef = M V V^T; intercept -1/2 mu.coef
    + ln pi.  Returns (transform N x min(C-1, D) = X V[:, :C-1], probabilities)."""
    n, d = x.shape
    priors = np.bincount(y, minlength=c) / float(n)
    means = _class_means(x, y, c)

    def shrunk(a):
        ac = a - a.mean(axis=0, keepdims=True)
        s = ac.T @ ac / a.shape[0]
        return (1.0 - shrinkage) * s + shrinkage * (np.trace(s) / d) * np.eye(d)

    sw = sum(priors[k] * shrunk(x[y == k]) for k in range(c))
    sb = shrunk(x) - sw
    evals, evecs = scipy.linalg.eigh(sb, sw)
    evecs = evecs[:, np.argsort(evals)[::-1]]
    coef = (means @ evecs) @ evecs.T
    intercept = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    dec = x @ coef.T + intercept
    if c == 2:
        # sklearn binary: decision = dec[:,1] - dec[:,0]; proba = [1 - s, s]
        p1 = scipy.special.expit(dec[:, 1] - dec[:, 0])
        prob = np.stack([1.0 - p1, p1], axis=1)
    else:
        prob = _softmax_rows(dec)
    return x @ evecs[:, : min(c - 1, d)], prob


def _lda_svd(x, y, c, tol=1e-4):
    """sklearn LinearDiscriminantAnalysis(solver='svd') (tol 1e-4):
    within-class centred data scaled by its per-dimension std and by
    sqrt(1/(N-C)); SVD, rank = #(s > tol); between-class centres weighted by
    sqrt(n_c/(C-1)) in that whitened space; SVD, rank = #(s > tol * s_0).
    Mathematically: plain LDA with the pooled covariance sum_c sum_i
    (x_i - mu_c)(x_i - mu_c)^T / (N - C), no shrinkage; the transform is the
    whitened, centred data (x - xbar, xbar = sum_c pi_c mu_c) on an orthonormal
    basis of the span of the whitened class centres.
    Returns (transform N x min(C-1, rank), probabilities)."""
    n, d = x.shape
    priors = np.bincount(y, minlength=c) / float(n)
    means = _class_means(x, y, c)
    xbar = priors @ means
    xc = x - means[y]
    std = xc.std(axis=0)
    std[std == 0] = 1.0
    _, s, vt = np.linalg.svd(math.sqrt(1.0 / (n - c)) * (xc / std), full_matrices=False)
    rank = int(np.sum(s > tol))
    scalings = (vt[:rank] / std).T / s[:rank]
    fac = 1.0 if c == 1 else 1.0 / (c - 1)
    centres = (np.sqrt(n * priors * fac) * (means - xbar).T).T @ scalings
    _, s2, vt2 = np.linalg.svd(centres, full_matrices=False)
    rank2 = int(np.sum(s2 > tol * s2[0]))
    scalings = scalings @ vt2.T[:, :rank2]
    coef = (means - xbar) @ scalings
    intercept = -0.5 * np.sum(coef ** 2, axis=1) + np.log(priors)
    coef = coef @ scalings.T
    intercept = intercept - xbar @ coef.T
    dec = x @ coef.T + intercept
    if c == 2:
        p1 = scipy.special.expit(dec[:, 1] - dec[:, 0])
        prob = np.stack([1.0 - p1, p1], axis=1)
    else:
        prob = _softmax_rows(dec)
    return ((x - xbar) @ scalings)[:, : min(c - 1, d)], prob


def ncti_components(features, labels, pca_dims=64, top=32):
    """Per-model components of NCTI, Wang et al.:
    "How Far Pre-trained Models Are from Neural Collapse on the Target Dataset
    Informs their Transferability", ICCV 2023 (BUserName/NCTI metrics.py
    NCTI_Score):
      X' = PCA(64) scores (here exact PCA, k = min(64, N - 1, D); the
           reference uses sklearn's 'auto' solver, randomized for large
           inputs, and fails when 64 > min(N, D))
      a  = max(exp(-sum of the top-32 explained variances), 1e-10)
           (explained variance = s^2/(N-1) of the PCA)
      LDA on X': sklearn solver='eigen' with shrinkage=a (_lda_eigen), or
           solver='svd' (_lda_svd: unshrunk LDA with the pooled 1/(N-C)
           covariance) when a == 1e-10, which is the usual case on real
           features (the top-32 variances sum to more than 23)
      S_seli = nuclear norm of the centred LDA projection (N x min(C-1, k))
      S_ncc  = (1/N) sum_i p(y_i | x_i)
      S_vc   = ln sum_c ||P_c||_*   (P_c: probability rows of class c)
    The zoo score is ncti_combine(): minmax(S_seli) + minmax(S_ncc) - minmax(S_vc).
    Returns {"seli", "ncc", "vc", "shrinkage", "solver"}.
    """
    f, y, c, _ = _prep(features, labels)
    n = f.shape[0]
    k = min(int(pca_dims), n - 1, f.shape[1])
    x, s, _ = pca_scores(f, k)
    ev = s[:k] ** 2 / (n - 1)
    shrink = max(math.exp(-float(np.sum(ev[:top]))), 1e-10)
    if shrink == 1e-10:
        solver = "svd"
        low, prob = _lda_svd(x, y, c)
    else:
        solver = "eigen"
        low, prob = _lda_eigen(x, y, c, shrink)
    low = low - low.mean(axis=0, keepdims=True)
    seli = float(np.sum(np.linalg.svd(low, compute_uv=False)))
    ncc = float(np.mean(prob[np.arange(n), y]))
    vc = float(math.log(sum(np.sum(np.linalg.svd(prob[y == j], compute_uv=False))
                            for j in range(c))))
    return {"seli": seli, "ncc": ncc, "vc": vc, "shrinkage": shrink, "solver": solver}


def ncti_combine(components):
    """NCTI over a zoo: list of ncti_components dicts -> list of scores
    (BUserName/NCTI evaluate_metric_group1_cpu.py l.140-170)."""
    seli = minmax([m["seli"] for m in components])
    ncc = minmax([m["ncc"] for m in components])
    vc = minmax([m["vc"] for m in components])
    return (seli + ncc - vc).tolist()


def etran_components(features, labels, energy_percent=0.5):
    """Per-model components of ETran, Gholami et al.: "ETran:
    Energy-Based Transferability Estimation", ICCV 2023, as wired in
    mgholamikn/ETran (evaluate_metric.py metric 'lda' and 'energy', tw.py
    metric 'etran'):
      S_lda: metrics.py LDA_Score.  Same S_w, lambda and S_t as SFDA's first
        pass, but the eigenvectors come from np.linalg.eigh(inv(S_w') S_b) on
        a NON-symmetric matrix: eigh reads only its lower triangle and returns
        an ORTHONORMAL basis V, so coef = M V V^T = M: the classifier is
        softmax(x . mu_c - |mu_c|^2 / 2 + ln pi_c), a nearest-class-mean rule
        in which the covariance, the shrinkage and S_b have no effect.
        S_lda = (1/N) sum_i p(y_i | x_i).  Computed here in that closed form.
      S_en: metrics.py Energy_Score(X_features, 0.5, 'bot'): e_i =
        logsumexp_d(x_id) of each FEATURE row; the mean of the
        int(0.5*10) * N // 1000 smallest e_i (the bottom 0.5 %; no sample, and
        so NaN, when N < 200).
    The zoo score is etran_combine(): 0.85 minmax(S_lda) + 0.15 minmax(S_en).
    Returns {"lda", "energy"} (energy None when the bottom set is empty).
    """
    f, y, c, _ = _prep(features, labels)
    n = f.shape[0]
    priors = np.bincount(y, minlength=c) / float(n)
    means = _class_means(f, y, c)
    logits = f @ means.T - 0.5 * np.sum(means * means, axis=1) + np.log(priors)
    prob = _softmax_rows(logits)
    lda = float(np.mean(prob[np.arange(n), y]))
    e = scipy.special.logsumexp(f, axis=1)
    m = int(energy_percent * 10) * n // 1000
    energy = float(np.mean(np.sort(e)[:m])) if m > 0 else None
    return {"lda": lda, "energy": energy}


def etran_combine(components):
    """ETran over a zoo: 0.85 minmax(S_lda) + 0.15 minmax(S_en) (tw.py)."""
    lda = minmax([m["lda"] for m in components])
    en = minmax([m["energy"] for m in components])
    return (0.85 * lda + 0.15 * en).tolist()
