"""tlkit: exact, fast transferability metrics for NumPy arrays.

    import tlkit
    r = tlkit.logme(features, labels)            # LogmeResult: r.score, r.per_target, ...
    s = tlkit.score(features, labels, metrics=["logme", "hscore"], logme_mode="thuml")
    s["hscore"], s.details["hscore"], s.logme    # dict of scores + the full report
    tlkit.hscore(features, labels)               # one function per registered metric
    tlkit.leep(probs, labels)

The computation is tlkit's C++ core (the extension module tlkit._tlkit), the same code as the
`tlkit` command line. float32 and float64 arrays in C or Fortran order (or any slice of them) are
read in place, without a copy; the GIL is released while the core runs. See docs/python.md.
"""

import inspect as _inspect

from . import _tlkit
from ._tlkit import (  # noqa: F401  (re-exported)
    LogmeAccumulator,
    LogmeResult,
    MetricValue,
    ScoreReport,
    __version__,
    _debug_view_info,
    average_ranks,
    evaluate,
    kendall_tau,
    logme,
    pearson,
    set_blas_threads,
    spearman,
    top1_relative_accuracy,
    weighted_tau,
    weighted_tau_one_sided,
)


class ScoreResult(dict):
    """The result of :func:`score`: a dict ``{metric: score}`` in the requested order, plus

    - ``details``: ``{metric: {component: value, ..., "seconds": s, "converged": bool,
      "notes": [...]}}``
    - ``logme``: the full :class:`LogmeResult` when logme was computed, else ``None``
    - ``n``, ``d``, ``labels`` (the distinct labels, ascending), ``shared_seconds``
    - ``report``: the underlying :class:`ScoreReport`.
    """

    def __init__(self, report):
        super().__init__((m.name, m.score) for m in report.metrics)
        self.report = report
        self.details = {
            m.name: dict(m.details, seconds=m.seconds, converged=m.converged, notes=list(m.notes))
            for m in report.metrics
        }
        self.logme = report.logme
        self.n = report.n
        self.d = report.d
        self.labels = report.labels
        self.shared_seconds = report.shared_seconds


def score(features=None, labels=None, probs=None, metrics=("logme",), seed=0, threads=0,
          regression=False, **params):
    """Scores one model's features with registered metrics, sharing work between them.

    features: N x D float32/float64 array (optional if only probability metrics are asked);
    labels: N integer or bool labels (required; the distinct values are the classes);
    probs: N x Cs source-class probabilities (leep, nce); metrics: names, a comma-separated
    string, or "all" (every metric whose inputs are given); seed: for random steps;
    threads: worker threads (0: all cores).

    regression=True (as ``tlkit score --regression``): labels holds real-valued targets, shape
    (N,) or (N, K), one evidence per column; only metrics that support regression run (LogME).

    Metric parameters are keyword arguments ``<metric>_<param>`` (``logme_mode="thuml"``,
    ``transrate_eps=1e-3``, ...; see :func:`metrics`). Unknown keywords raise TypeError, invalid
    values and inputs ValueError.

    Returns a :class:`ScoreResult` (a dict ``{metric: score}`` with the details as attributes).
    """
    return ScoreResult(_tlkit.score(features, labels, probs, metrics, seed, threads, regression,
                                    **params))


def metrics():
    """The metric registry: a list of dicts ``name, title, paper, higher_is_better, inputs
    (subset of features/labels/probs), supports_regression, streaming, params`` where each param
    is ``name, keyword (<metric>_<param>), default (text), help, choices, type
    (choice/number)``."""
    return _tlkit.metrics()


def _make_metric_function(info):
    """A function ``name(<inputs>, labels, *, <params>, seed=0, threads=0) -> float`` for one
    registry entry, routed through :func:`score`."""
    name = info["name"]
    data = [i for i in info["inputs"] if i != "labels"] + ["labels"]
    kinds = _inspect.Parameter
    parameters = [kinds(i, kinds.POSITIONAL_OR_KEYWORD) for i in data]
    parameters += [kinds(p["name"], kinds.KEYWORD_ONLY, default=None) for p in info["params"]]
    parameters += [kinds("seed", kinds.KEYWORD_ONLY, default=0),
                   kinds("threads", kinds.KEYWORD_ONLY, default=0)]
    signature = _inspect.Signature(parameters)
    keywords = {p["name"]: p["keyword"] for p in info["params"]}

    def metric_function(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        params = {keywords[k]: values.pop(k) for k in keywords}
        return score(metrics=[name], **values, **params)[name]

    lines = ["%s (%s is better)." % (info["title"], "higher" if info["higher_is_better"]
                                     else "lower"), "", info["paper"], ""]
    lines.append("Equivalent to tlkit.score(%s, metrics=[%r], ...)[%r]." %
                 (", ".join("%s=%s" % (i, i) for i in data), name, name))
    if info["params"]:
        lines += ["", "Parameters (None: the default):"]
        for p in info["params"]:
            choices = " (%s)" % ", ".join(p["choices"]) if p["choices"] else ""
            lines.append("  %s: %s; default %s%s" % (p["name"], p["help"], p["default"], choices))
    metric_function.__name__ = metric_function.__qualname__ = name
    metric_function.__signature__ = signature
    metric_function.__doc__ = "\n".join(lines)
    metric_function.__module__ = __name__
    return metric_function


def _install_metric_functions(namespace):
    """One convenience function per registered metric; a name the package already defines
    (``logme``: the full LogME with per-target results) is left as it is."""
    names = []
    for info in _tlkit.metrics():
        if info["name"] not in namespace:
            namespace[info["name"]] = _make_metric_function(info)
            names.append(info["name"])
    return names


_METRIC_FUNCTIONS = _install_metric_functions(globals())


# ---- the names of the reference implementations (docs/python.md, "Coming from ...") ----------

def _posterior_means(features, targets, alpha, beta):
    """LogME's posterior means m_k = beta_k (alpha_k I + beta_k F^T F)^-1 F^T y_k, one row per
    target column of `targets` (N x K), from the thin SVD F = U S V^T:
    m_k = V diag(s / (s^2 + t_k)) U^T y_k with t_k = alpha_k / beta_k. beta = inf (the noise-free
    boundary) gives the minimum-norm least-squares solution, alpha = inf gives 0."""
    import numpy as np

    f = np.asarray(features, dtype=np.float64)
    u, s, vt = np.linalg.svd(f, full_matrices=False)
    uty = u.T @ targets
    kept = s > (s.max() if s.size else 0.0) * max(f.shape) * np.finfo(np.float64).eps
    ms = np.zeros((targets.shape[1], f.shape[1]))
    for k in range(targets.shape[1]):
        a, b = float(alpha[k]), float(beta[k])
        if np.isinf(a):
            continue
        t = 0.0 if np.isinf(b) else a / b
        coef = np.zeros_like(s)
        coef[kept] = s[kept] / (s[kept] ** 2 + t)
        ms[k] = vt.T @ (coef * uty[:, k])
    return ms


def _targets(labels_or_targets, regression, classes):
    import numpy as np

    if regression:
        y = np.asarray(labels_or_targets, dtype=np.float64)
        return y.reshape(-1, 1) if y.ndim == 1 else y
    y = np.asarray(labels_or_targets).reshape(-1)
    return (y[:, None] == np.asarray(classes)[None, :]).astype(np.float64)


class LogME:
    """thuml/LogME's ``LogME`` class on tlkit's LogME::

        m = tlkit.LogME(regression=False)   # thuml: from LogME import LogME; LogME(regression=False)
        score = m.fit(features, labels)     # the LogME score (mean evidence per sample)
        pred = m.predict(features)          # classification: labels; regression: N x K values

    mode: ``"exact"`` (tlkit's default, the true maximum evidence), ``"thuml"`` (thuml's
    ``LogME.fit``, its default ``_fit_fixed_point``, term by term) or ``"icml"``; see
    docs/logme.md. After fit: ``result`` (the :class:`LogmeResult`), ``alphas``, ``betas`` and
    ``ms`` (K x D, the posterior mean weights at the fitted alpha, beta), ``classes`` (the
    distinct labels, ascending; predict returns one of them, which is thuml's class index when
    the labels are 0..C-1).
    """

    def __init__(self, regression=False, mode="exact", threads=0):
        self.regression = regression
        self.mode = mode
        self.threads = threads
        self.fitted = False

    def fit(self, f, y):
        """Fits on features f (N x D) and labels y (N,), or real targets (N,) / (N, K) with
        regression=True; returns the LogME score."""
        import numpy as np

        r = logme(f, y, regression=self.regression, mode=self.mode, threads=self.threads)
        self.result = r
        self.alphas = np.asarray(r.alpha)
        self.betas = np.asarray(r.beta)
        self.classes = np.asarray(r.labels)
        self.ms = _posterior_means(f, _targets(y, self.regression, self.classes), self.alphas,
                                   self.betas)
        self.fitted = True
        return r.score

    def predict(self, f):
        """f @ ms.T: the N x K values for regression, the label of the largest for
        classification."""
        import numpy as np

        if not self.fitted:
            raise RuntimeError("not fitted, please call fit first")
        logits = np.asarray(f, dtype=np.float64) @ self.ms.T
        if self.regression:
            return logits
        return self.classes[np.argmax(logits, axis=-1)]


def log_maximum_evidence(features, targets, regression=False, return_weights=False,
                         mode="exact", threads=0):
    """TLlib's ``tllib.ranking.log_maximum_evidence``: the LogME score of features for targets
    (labels, or real targets with regression=True); return_weights=True also returns the K x D
    posterior mean weights. mode="icml" is TLlib's own algorithm; the default is tlkit's exact
    maximum (docs/logme.md)."""
    r = logme(features, targets, regression=regression, mode=mode, threads=threads)
    if not return_weights:
        return r.score
    return r.score, _posterior_means(features, _targets(targets, regression, r.labels), r.alpha,
                                     r.beta)


def h_score(features, labels):
    """TLlib's ``tllib.ranking.h_score``: :func:`hscore`."""
    return hscore(features, labels)  # noqa: F821  (installed from the registry above)


def log_expected_empirical_prediction(predictions, labels):
    """TLlib's ``tllib.ranking.log_expected_empirical_prediction`` (thuml/LogME's ``LEEP``):
    :func:`leep` on the N x Cs source-class probabilities."""
    return leep(predictions, labels)  # noqa: F821


def negative_conditional_entropy(source_labels, target_labels):
    """TLlib's ``tllib.ranking.negative_conditional_entropy`` (thuml/LogME's ``NCE``): NCE from
    hard source labels (N integers, e.g. the argmax of the source model's predictions); :func:`nce`
    on their one-hot encoding."""
    import numpy as np

    z = np.asarray(source_labels).reshape(-1)
    _, index = np.unique(z, return_inverse=True)
    onehot = np.zeros((z.size, int(index.max()) + 1 if z.size else 0))
    onehot[np.arange(z.size), index] = 1.0
    return nce(onehot, target_labels)  # noqa: F821


LEEP = log_expected_empirical_prediction
NCE = negative_conditional_entropy

__all__ = [
    "LEEP", "LogME", "LogmeAccumulator", "LogmeResult", "MetricValue", "NCE", "ScoreReport",
    "ScoreResult", "__version__", "h_score", "log_expected_empirical_prediction",
    "log_maximum_evidence", "negative_conditional_entropy",
    "average_ranks", "evaluate", "kendall_tau", "logme", "metrics", "pearson", "score",
    "set_blas_threads", "spearman", "top1_relative_accuracy", "weighted_tau", "weighted_tau_one_sided",
] + _METRIC_FUNCTIONS
