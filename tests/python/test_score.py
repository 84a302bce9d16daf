"""tlkit.score, the registry-driven keyword arguments and convenience functions, tlkit.metrics:
the NumPy references (tests/data/metrics/refs.json), the C++ API and the CLI."""

import math

import numpy as np
import pytest

import tlkit
from conftest import (DATA, LOGME_REFS, METRIC_REFS, logme_case, metric_case, rel_err, run_error,
                      run_json)

REGISTRY = {m["name"]: m for m in tlkit.metrics()}
CASES = sorted(METRIC_REFS)

# refs.json key -> (metric, keyword arguments of tlkit.score); other keys are metric names. Keys
# of metrics that are not registered (yet) are skipped, as are the initialisation-dependent nleep
# values.
REF_KEYS = {
    "hscore:google": ("hscore", {"hscore_variant": "google"}),
    "transrate:tllib": ("transrate", {"transrate_weighting": "tllib"}),
    "gbc:diagonal": ("gbc", {"gbc_gaussian": "diagonal"}),
    "gbc:spherical_google": ("gbc", {"gbc_log_term": "once"}),
    "gbc:pca64": ("gbc", {"gbc_pca_dims": 64}),
    "logistic:seed1": ("logistic", {"seed": 1}),
    "etran:lda": ("etran_lda", {}),
    "etran:energy": ("etran_energy", {}),
    "ncti:seli": ("ncti_seli", {}),
    "ncti:ncc": ("ncti_ncc", {}),
    "ncti:vc": ("ncti_vc", {}),
}
RANDOM = {"nleep"}
# tests/data/metrics/README.md: closed forms 1e-9 relative; counts (knn, logistic) 1e-12.
COUNT_METRICS = {"knn", "logistic"}


def _ref_items(case):
    values = METRIC_REFS[case]["values"]
    for key, value in sorted(values.items()):
        metric, kwargs = REF_KEYS.get(key, (key, {}))
        if metric in REGISTRY and metric not in RANDOM and value is not None:
            yield key, metric, kwargs, value


def _inputs(case, metric):
    f, y, p = metric_case(case)
    inputs = REGISTRY[metric]["inputs"]
    if "probs" in inputs and p is None:
        return None
    return {"features": f if "features" in inputs else None, "labels": y,
            "probs": p if "probs" in inputs else None}


@pytest.mark.parametrize("case", CASES)
def test_matches_numpy_references(case):
    checked = 0
    for key, metric, kwargs, value in _ref_items(case):
        inputs = _inputs(case, metric)
        if inputs is None:
            continue
        got = tlkit.score(metrics=[metric], **inputs, **kwargs)[metric]
        tol = 1e-12 if metric in COUNT_METRICS else 1e-9
        assert rel_err(got, value) <= tol, (case, key, got, value)
        checked += 1
    assert checked >= 8


def _all_metrics(case):
    f, y, p = metric_case(case)
    return [m for m in REGISTRY if p is not None or "probs" not in REGISTRY[m]["inputs"]]


def _file_args(case, with_probs):
    base = DATA / "metrics"
    args = ["--features", base / ("%s_features.npy" % case),
            "--labels", base / ("%s_labels.npy" % case)]
    if with_probs:
        args += ["--probs", base / ("%s_probs.npy" % case)]
    return args


@pytest.mark.parametrize("case", CASES)
def test_python_equals_cpp_api_and_cli(case, cpp_reference, cli):
    """Every registered metric at its defaults, plus one non-default value of every parameter,
    on the same files: Python, the C++ API and the CLI agree to 1e-12."""
    f, y, p = metric_case(case)
    names = _all_metrics(case)
    s = tlkit.score(f, y, p, metrics=names, seed=3)
    c = run_json([cpp_reference, "score", "--metrics", ",".join(names), "--seed", 3] +
                 _file_args(case, p is not None))["metrics"]
    j = run_json([cli, "score", "--format", "json", "--metric", ",".join(names), "--seed", 3] +
                 _file_args(case, p is not None))["metrics"]
    assert list(s) == names
    for m in names:
        _same(s[m], c[m], m)
        _same(s[m], j[m]["score"], m)
    # Non-default parameters, set through keyword arguments, --param and --<metric>-<param>.
    for m in names:
        for prm in REGISTRY[m]["params"]:
            value = _other_value(prm)
            ref_argv = [cpp_reference, "score", "--metrics", m, "--seed", 3, "--param",
                        "%s.%s=%s" % (m, prm["name"], value)] + _file_args(case, p is not None)
            cli_argv = [cli, "score", "--format", "json", "--metric", m, "--seed", 3,
                        "--%s-%s" % (m, prm["name"].replace("_", "-")), value] + \
                _file_args(case, p is not None)
            try:
                got = tlkit.score(f, y, p, metrics=[m], seed=3, **{prm["keyword"]: value})[m]
            except ValueError as e:  # then all three refuse it, with the same message
                assert str(e) == run_error(ref_argv) == run_error(cli_argv)
                continue
            _same(got, run_json(ref_argv)["metrics"][m], (m, prm["name"]))
            _same(got, run_json(cli_argv)["metrics"][m]["score"], (m, prm["name"]))


def _same(got, printed, what):
    """A Python score against one printed as JSON (where null stands for NaN or infinity)."""
    if printed is None:
        assert not math.isfinite(got), what
    else:
        assert rel_err(got, printed) <= 1e-12, what


def _other_value(prm):
    """A valid value other than the default: another choice, or half the default (1 for 0)."""
    if prm["choices"]:
        return next(ch for ch in prm["choices"] if ch != prm["default"])
    d = float(prm["default"])
    if d == 0:
        return "1"
    return str(max(int(d) // 2, 1)) if d == int(d) else repr(d / 2)


def test_logme_through_score_equals_logme():
    f, y, _ = metric_case("tall")
    for mode in ("exact", "thuml", "icml"):
        s = tlkit.score(f, y, metrics=["logme"], logme_mode=mode)
        r = tlkit.logme(f, y, mode=mode)
        assert rel_err(s["logme"], r.score) <= 1e-12
        assert s.logme.mode == mode and rel_err(s.logme.per_target, r.per_target) <= 1e-12


def test_result_object():
    f, y, p = metric_case("tall")
    names = [m for m in REGISTRY if m != "logme"][:3] + ["logme"]
    s = tlkit.score(features=f, labels=y, probs=p, metrics=names)
    assert isinstance(s, dict) and list(s) == names
    assert all(isinstance(v, float) for v in s.values())
    assert set(s.details) == set(names)
    for m in names:
        assert {"seconds", "converged", "notes"} <= set(s.details[m])
    assert s.n == f.shape[0] and s.d == f.shape[1] and list(s.labels) == sorted(set(y))
    assert isinstance(s.logme, tlkit.LogmeResult)
    assert isinstance(s.report, tlkit.ScoreReport) and s.report.metrics[0].name == names[0]
    assert tlkit.score(f, y, p, metrics=[names[0]]).logme is None
    # A comma-separated string and "all" work as on the command line.
    assert list(tlkit.score(f, y, p, metrics=",".join(names))) == names
    everything = tlkit.score(f, y, p, metrics="all")
    assert list(everything) == list(REGISTRY)
    no_probs = tlkit.score(f, y, metrics="all")
    assert list(no_probs) == [m for m in REGISTRY if "probs" not in REGISTRY[m]["inputs"]]


def test_probability_metrics_without_features():
    f, y, p = metric_case("tall")
    prob_only = [m for m in REGISTRY if "features" not in REGISTRY[m]["inputs"]]
    assert prob_only, "no probability-only metric registered"
    s = tlkit.score(labels=y, probs=p, metrics=prob_only)
    assert s.d == 0
    assert list(tlkit.score(labels=y, probs=p, metrics="all")) == prob_only


# ---- keyword arguments from the registry -------------------------------------------------------

def test_every_registry_parameter_is_a_keyword():
    f, y, p = metric_case("tall")
    for m, info in REGISTRY.items():
        base = tlkit.score(f, y, p, metrics=[m])[m]
        for prm in info["params"]:
            assert prm["keyword"] == "%s_%s" % (m, prm["name"])
            default = prm["default"] if prm["type"] == "choice" else float(prm["default"])
            same = tlkit.score(f, y, p, metrics=[m], **{prm["keyword"]: default})[m]
            assert same == base or (math.isnan(same) and math.isnan(base)), prm["keyword"]
            assert tlkit.score(f, y, p, metrics=[m], **{prm["keyword"]: None})[m] == same


def test_numeric_keyword_values_are_exact():
    if "transrate" not in REGISTRY:
        pytest.skip("transrate is not registered")
    f, y, _ = metric_case("tall")
    a = tlkit.score(f, y, metrics=["transrate"], transrate_eps=1e-3)["transrate"]
    b = tlkit.score(f, y, metrics=["transrate"], transrate_eps="0.001")["transrate"]
    c = tlkit.score(f, y, metrics=["transrate"], transrate_eps=np.float32(1e-3).item())
    assert a == b and a != c["transrate"]  # float32(1e-3) is a different number
    assert a == tlkit.transrate(f, y, eps=1e-3)


def test_unknown_keywords_raise_type_error_naming_them():
    f, y, _ = metric_case("tall")
    with pytest.raises(TypeError) as e:
        tlkit.score(f, y, logme_bogus=1, colour="red")
    msg = str(e.value)
    assert "'logme_bogus'" in msg and "'colour'" in msg
    for m in REGISTRY.values():  # the message lists the valid keywords, from the registry
        for prm in m["params"]:
            assert prm["keyword"] in msg
    with pytest.raises(TypeError, match="expected a number or a string, got bool"):
        tlkit.score(f, y, logme_mode=True)
    with pytest.raises(TypeError, match="missing required argument 'labels'"):
        tlkit.score(f)


def test_invalid_keyword_values_raise_value_error():
    f, y, _ = metric_case("tall")
    for m, info in REGISTRY.items():
        for prm in info["params"]:
            bad = "not-a-choice" if prm["type"] == "choice" else "abc"
            with pytest.raises(ValueError, match="unknown value|expected a number"):
                tlkit.score(f, y, metrics=[m], **{prm["keyword"]: bad})


# ---- convenience functions ---------------------------------------------------------------------

def test_one_function_per_registered_metric():
    f, y, p = metric_case("tall")
    for m, info in REGISTRY.items():
        fn = getattr(tlkit, m)
        assert callable(fn) and m in tlkit.__all__
        if m == "logme":  # the full LogME, defined explicitly; its score is the same
            assert fn(f, y).score == tlkit.score(f, y, metrics=["logme"])["logme"]
            continue
        args = [{"features": f, "probs": p}[i] for i in info["inputs"] if i != "labels"] + [y]
        assert fn(*args) == tlkit.score(f, y, p, metrics=[m])[m]
        for prm in info["params"]:  # unprefixed parameter names
            value = _other_value(prm)
            assert fn(*args, **{prm["name"]: value}) == \
                tlkit.score(f, y, p, metrics=[m], **{prm["keyword"]: value})[m]
        with pytest.raises(TypeError):
            fn(*args, not_a_parameter=1)
        assert info["title"] in fn.__doc__


def test_metrics_metadata():
    info = tlkit.metrics()
    assert [m["name"] for m in info] == list(REGISTRY)
    for m in info:
        assert set(m) >= {"name", "title", "paper", "higher_is_better", "inputs", "params",
                          "supports_regression", "streaming"}
        assert "labels" in m["inputs"] and set(m["inputs"]) <= {"features", "labels", "probs"}
        for prm in m["params"]:
            assert set(prm) >= {"name", "keyword", "default", "help", "choices", "type"}
            assert prm["type"] == ("choice" if prm["choices"] else "number")
            if prm["choices"]:
                assert prm["default"] in prm["choices"]


@pytest.mark.parametrize("case", ["regression", "regression_1d"])
def test_regression_targets_go_to_logme(case, cli):
    """score(regression=True) is tlkit score --regression: LogME with one evidence per target
    column, against the NumPy reference (tools/logme_numpy.py, tests/data/logme/refs.json), the
    logme function and the CLI."""
    f, t, regression = logme_case(case)
    assert regression
    for mode in ("exact", "thuml", "icml"):
        s = tlkit.score(f, t, regression=True, logme_mode=mode)
        assert list(s) == ["logme"]
        assert rel_err(s["logme"], LOGME_REFS[case][mode]["score"]) <= 1e-8, (case, mode)
        direct = tlkit.logme(f, t, regression=True, mode=mode)
        assert s["logme"] == direct.score
        assert s.logme.regression and list(s.logme.per_target) == list(direct.per_target)
        assert s.details["logme"]["rank"] == direct.rank
        assert s.n == f.shape[0] and s.d == f.shape[1]
        j = run_json([cli, "score", "--format", "json", "--regression", "--logme-mode", mode,
                      "--features", DATA / "logme" / ("%s_features.npy" % case),
                      "--labels", DATA / "logme" / ("%s_targets.npy" % case)])
        assert j["task"] == "regression"
        assert rel_err(s["logme"], j["metrics"]["logme"]["score"]) <= 1e-12, (case, mode)


def test_regression_refuses_classification_metrics_and_probs():
    f, t, _ = logme_case("regression")
    with pytest.raises(ValueError, match="hscore does not support regression"):
        tlkit.score(f, t, metrics=["logme", "hscore"], regression=True)
    with pytest.raises(ValueError, match="probs are for classification"):
        tlkit.score(f, t, probs=np.full((f.shape[0], 2), 0.5), regression=True)
    f1, t1, _ = logme_case("regression_1d")
    with pytest.raises(ValueError, match="regression=True"):
        tlkit.score(f1, t1)  # real-valued targets without regression=True: the error says how
