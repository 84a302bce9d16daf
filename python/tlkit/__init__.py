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
          **params):
    """Scores one model's features with registered metrics, sharing work between them.

    features: N x D float32/float64 array (optional if only probability metrics are asked);
    labels: N integer or bool labels (required; the distinct values are the classes);
    probs: N x Cs source-class probabilities (leep, nce); metrics: names, a comma-separated
    string, or "all" (every metric whose inputs are given); seed: for random steps;
    threads: worker threads (0: all cores).

    Metric parameters are keyword arguments ``<metric>_<param>`` (``logme_mode="thuml"``,
    ``transrate_eps=1e-3``, ...; see :func:`metrics`). Unknown keywords raise TypeError, invalid
    values and inputs ValueError.

    Returns a :class:`ScoreResult` (a dict ``{metric: score}`` with the details as attributes).
    """
    return ScoreResult(_tlkit.score(features, labels, probs, metrics, seed, threads, **params))


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

__all__ = [
    "LogmeAccumulator", "LogmeResult", "MetricValue", "ScoreReport", "ScoreResult", "__version__",
    "average_ranks", "kendall_tau", "logme", "metrics", "pearson", "score", "set_blas_threads",
    "spearman", "top1_relative_accuracy", "weighted_tau", "weighted_tau_one_sided",
] + _METRIC_FUNCTIONS
