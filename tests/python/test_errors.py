"""Bad input raises ValueError carrying the core's message: the same text the CLI prints after
'tlkit: error: ' and the C++ API throws, for the same data written to .npy files."""

import numpy as np
import pytest

import tlkit
from conftest import run_error


def _message(fn):
    with pytest.raises(ValueError) as e:
        fn()
    return str(e.value)


@pytest.fixture()
def data(tmp_path):
    """Features, labels, targets and probabilities (N = 60) and a writer to .npy."""
    rng = np.random.default_rng(7)
    d = {"f": rng.standard_normal((60, 5)), "y": rng.integers(0, 3, 60),
         "t": rng.standard_normal((60, 2))}
    p = rng.random((60, 4))
    d["p"] = p / p.sum(axis=1, keepdims=True)

    def save(name, array):
        path = tmp_path / ("%s.npy" % name)
        np.save(path, array)
        return str(path)
    d["save"] = save
    return d


def test_non_finite_features(data, cli, cpp_reference):
    f = data["f"].copy()
    f[7, 2] = np.nan
    fp, yp = data["save"]("f", f), data["save"]("y", data["y"])
    msg = _message(lambda: tlkit.logme(f, data["y"]))
    assert msg == "features: non-finite value nan at row 7, column 2"
    assert msg == _message(lambda: tlkit.score(f, data["y"], metrics=["logme", "hscore"]))
    assert msg == run_error([cli, "score", "--features", fp, "--labels", yp])
    assert msg == run_error([cpp_reference, "logme", "--features", fp, "--labels", yp])
    f32 = f.astype(np.float32)
    f32[7, 2] = np.inf
    assert _message(lambda: tlkit.logme(f32, data["y"])) == \
        run_error([cli, "score", "--features", data["save"]("f32", f32), "--labels", yp]) == \
        "features: non-finite value inf at row 7, column 2"


def test_non_finite_in_a_later_chunk_names_the_global_row(data, cli):
    f = data["f"].copy()
    f[45, 1] = -np.inf
    acc = tlkit.LogmeAccumulator()
    acc.update(f[:40], data["y"][:40])
    msg = _message(lambda: acc.update(f[40:], data["y"][40:]))
    assert msg == "features: non-finite value -inf at row 45, column 1"
    assert msg == run_error([cli, "score", "--features", data["save"]("f", f), "--labels",
                             data["save"]("y", data["y"]), "--chunk-rows", "40"])


def test_one_class(data, cli, cpp_reference):
    y = np.full(60, 3)
    fp, yp = data["save"]("f", data["f"]), data["save"]("y", y)
    msg = _message(lambda: tlkit.score(data["f"], y))
    assert msg == "labels: transferability metrics need at least 2 classes, found only label 3"
    assert msg == run_error([cli, "score", "--features", fp, "--labels", yp])
    assert _message(lambda: tlkit.logme(data["f"], y)) == \
        run_error([cpp_reference, "logme", "--features", fp, "--labels", yp])


def test_too_few_samples_and_row_mismatch(data, cpp_reference):
    fp = data["save"]("f", data["f"])
    y59 = data["y"][:59]
    msg = _message(lambda: tlkit.logme(data["f"], y59))
    assert msg == "features have 60 rows but labels has 59 entries"
    assert msg == run_error([cpp_reference, "logme", "--features", fp, "--labels",
                             data["save"]("y59", y59)])
    assert _message(lambda: tlkit.score(data["f"], y59)) == run_error(
        [cpp_reference, "score", "--metrics", "logme", "--features", fp, "--labels",
         data["save"]("y59", y59)])
    one = _message(lambda: tlkit.score(data["f"][:1], data["y"][:1]))
    assert one == "labels: need at least 2 samples, got N = 1"


def test_bad_probabilities(data, cli):
    prob_metric = next(m["name"] for m in tlkit.metrics() if "probs" in m["inputs"])
    fp, yp = data["save"]("f", data["f"]), data["save"]("y", data["y"])
    neg = data["p"].copy()
    neg[3, 1] = -0.25
    unnormalised = data["p"] * 1.5
    for bad in (neg, unnormalised):
        msg = _message(lambda: tlkit.score(labels=data["y"], probs=bad, metrics=[prob_metric]))
        assert msg.startswith("probs: ")
        assert msg == run_error([cli, "score", "--labels", yp, "--probs", data["save"]("p", bad),
                                 "--metric", prob_metric])
        assert msg == _message(lambda: getattr(tlkit, prob_metric)(bad, data["y"]))
    del fp


def test_regression_targets(data, cli):
    t = data["t"].copy()
    t[11, 1] = np.nan
    fp, tp = data["save"]("f", data["f"]), data["save"]("t", t)
    msg = _message(lambda: tlkit.logme(data["f"], t, regression=True))
    assert msg == "targets: non-finite value nan at row 11, column 1"
    assert msg == run_error([cli, "score", "--features", fp, "--labels", tp, "--regression"])
    zero = data["t"].copy()
    zero[:, 0] = 0
    msg = _message(lambda: tlkit.logme(data["f"], zero, regression=True))
    assert msg == run_error([cli, "score", "--features", fp, "--labels",
                             data["save"]("z", zero), "--regression"])


def test_unknown_metric_and_bad_parameter_values(data, cli):
    fp, yp = data["save"]("f", data["f"]), data["save"]("y", data["y"])
    msg = _message(lambda: tlkit.score(data["f"], data["y"], metrics=["logme", "nope"]))
    assert msg.startswith("--metric: unknown metric 'nope' (known: ")
    assert msg == run_error([cli, "score", "--features", fp, "--labels", yp, "--metric",
                             "logme,nope"])
    for m in tlkit.metrics():
        for prm in m["params"]:
            bad = "bogus"
            msg = _message(lambda: tlkit.score(data["f"], data["y"], metrics=[m["name"]],
                                               **{prm["keyword"]: bad}))
            flag = "--%s-%s" % (m["name"], prm["name"].replace("_", "-"))
            assert msg == run_error([cli, "score", "--features", fp, "--labels", yp, "--metric",
                                     m["name"], flag, bad])


def test_missing_inputs(data, cpp_reference):
    feature_metric = next(m["name"] for m in tlkit.metrics() if "features" in m["inputs"])
    pp, yp = data["save"]("p", data["p"]), data["save"]("y", data["y"])
    msg = _message(lambda: tlkit.score(labels=data["y"], probs=data["p"],
                                       metrics=[feature_metric]))
    assert msg == run_error([cpp_reference, "score", "--metrics", feature_metric, "--labels", yp,
                             "--probs", pp])
    assert "needs features" in msg
    assert "none of these metrics can run" in _message(
        lambda: tlkit.score(labels=data["y"], metrics="all"))


def test_logme_mode(data):
    assert _message(lambda: tlkit.logme(data["f"], data["y"], mode="fast")) == \
        "logme mode: unknown value 'fast' (expected exact, thuml or icml)"
    acc = tlkit.LogmeAccumulator()
    acc.update(data["f"], data["y"])
    assert "unknown value 'fast'" in _message(lambda: acc.result(mode="fast"))


@pytest.mark.parametrize("fn", ["weighted_tau", "kendall_tau", "spearman", "pearson"])
def test_correlation_errors(fn):
    f = getattr(tlkit, fn)
    assert "need at least 2 paired values, got 1" in _message(lambda: f([1.0], [2.0]))
    assert "x has 3 values but y has 2" in _message(lambda: f([1.0, 2, 3], [2.0, 1]))
    assert "is NaN" in _message(lambda: f([1.0, np.nan, 3], [2.0, 1, 0]))
    assert "1-D sequence of numbers" in _message(lambda: f(np.ones((2, 2)), np.ones(4)))
