"""tlkit's ranking correlations against SciPy: the stored references
(tests/data/correlation/refs.json) and scipy.stats called now."""

import csv
import json
import math

import numpy as np
import pytest
import scipy.stats

import tlkit
from conftest import DATA, rel_err, run_json

REFS = json.loads((DATA / "correlation" / "refs.json").read_text())


def _near(got, want, tol=1e-12):
    if want is None:
        return math.isnan(got)
    return abs(got - want) <= tol * max(abs(want), 1e-12) or abs(got - want) <= 1e-15


def test_stored_scipy_references():
    assert len(REFS["cases"]) >= 40
    for c in REFS["cases"]:
        x, y = c["x"], c["y"]
        assert _near(tlkit.weighted_tau(x, y), c["weighted_tau"]), c["name"]
        assert _near(tlkit.weighted_tau_one_sided(x, y), c["weighted_tau_x_rank"]), c["name"]
        assert _near(tlkit.weighted_tau_one_sided(y, x), c["weighted_tau_y_rank"]), c["name"]
        assert _near(tlkit.kendall_tau(x, y), c["kendall_tau_b"]), c["name"]
        assert _near(tlkit.spearman(x, y), c["spearman"]), c["name"]
        assert _near(tlkit.pearson(x, y), c["pearson"]), c["name"]
        assert list(tlkit.average_ranks(np.asarray(x))) == c["rank_x"]


@pytest.mark.parametrize("seed", range(5))
def test_live_scipy(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 6, 40).astype(float)  # ties
    y = x + rng.standard_normal(40)
    assert rel_err(tlkit.weighted_tau(x, y), scipy.stats.weightedtau(x, y)[0]) <= 1e-12
    assert rel_err(tlkit.kendall_tau(x, y), scipy.stats.kendalltau(x, y)[0]) <= 1e-12
    assert rel_err(tlkit.spearman(x, y), scipy.stats.spearmanr(x, y)[0]) <= 1e-12
    assert rel_err(tlkit.pearson(x, y), scipy.stats.pearsonr(x, y)[0]) <= 1e-12
    # Inputs: lists, float32 arrays, integer arrays are read as float64 values.
    xi = x.astype(np.int64)
    assert tlkit.kendall_tau(list(x), y.astype(np.float32)) == \
        tlkit.kendall_tau(x, y.astype(np.float32).astype(np.float64))
    assert tlkit.spearman(xi, y) == tlkit.spearman(x, y)


def test_tllib_cifar10_table():
    """The published TLlib CIFAR10 table: weighted tau of each metric's scores against the
    fine-tuned accuracies, as printed there (3 decimals) and as SciPy computes it."""
    scores, acc = _tllib_table()
    printed = {"HScore": 0.800, "LEEP": 0.638, "LogME": 0.785, "NCE": 0.714}
    for metric, by_model in scores.items():
        models = sorted(by_model)
        s = [by_model[m] for m in models]
        a = [acc[m] for m in models]
        tau = tlkit.weighted_tau(s, a)
        assert round(tau, 3) == printed[metric]
        assert rel_err(tau, REFS["tllib_cifar10"][metric]["weighted_tau"]) <= 1e-12
        top1 = tlkit.top1_relative_accuracy(s, a)
        assert top1 == a[int(np.argmax(s))] / max(a)


def test_top1_relative_accuracy():
    assert tlkit.top1_relative_accuracy([0.1, 0.9, 0.5], [70.0, 80.0, 90.0]) == 80.0 / 90.0
    assert tlkit.top1_relative_accuracy([1.0, 1.0, 0.0], [60.0, 80.0, 100.0]) == 70.0 / 100.0
    with pytest.raises(ValueError, match="must be positive"):
        tlkit.top1_relative_accuracy([1.0, 2.0], [0.0, -1.0])


def test_constant_input_is_nan():
    assert math.isnan(tlkit.kendall_tau([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))


def _tllib_table():
    with open(DATA / "correlation" / "tllib_cifar10_truth.csv") as f:
        acc = {r["model"]: float(r["accuracy"]) for r in csv.DictReader(f)}
    scores = {}
    with open(DATA / "correlation" / "tllib_cifar10_scores.csv") as f:
        for r in csv.DictReader(f):
            scores.setdefault(r["metric"], {})[r["model"]] = float(r["score"])
    return scores, acc


def test_evaluate_matches_scipy_and_the_published_table():
    scores, acc = _tllib_table()
    ev = tlkit.evaluate(scores, acc)
    printed = {"HScore": 0.800, "LEEP": 0.638, "LogME": 0.785, "NCE": 0.714}
    assert [m["metric"] for m in ev["metrics"]] == sorted(printed, key=lambda k: -printed[k])
    for m in ev["metrics"]:
        models = list(scores[m["metric"]])
        s = [scores[m["metric"]][k] for k in models]
        a = [acc[k] for k in models]
        assert round(m["weighted_tau"], 3) == printed[m["metric"]]
        assert rel_err(m["weighted_tau"], scipy.stats.weightedtau(s, a)[0]) <= 1e-12
        assert rel_err(m["kendall_tau"], scipy.stats.kendalltau(s, a)[0]) <= 1e-12
        assert rel_err(m["spearman"], scipy.stats.spearmanr(s, a)[0]) <= 1e-12
        assert rel_err(m["pearson"], scipy.stats.pearsonr(s, a)[0]) <= 1e-12
        assert m["top1_models"] == [models[int(np.argmax(s))]]
        assert m["n_models"] == len(models)
    assert ev["left_out"] == []


def test_evaluate_equals_the_cli(cli, tmp_path):
    scores, acc = _tllib_table()
    got = tlkit.evaluate(scores, acc)
    want = run_json([cli, "evaluate", "--scores", DATA / "correlation" / "tllib_cifar10_scores.csv",
                     "--truth", DATA / "correlation" / "tllib_cifar10_truth.csv",
                     "--format", "json"])
    assert [m["metric"] for m in got["metrics"]] == list(want["metrics"])
    for m in got["metrics"]:
        w = want["metrics"][m["metric"]]
        for key in ("n_models", "weighted_tau", "kendall_tau", "spearman", "pearson",
                    "top1_relative_accuracy", "top1_models"):
            assert m[key] == w[key], (m["metric"], key)
    assert got["notes"] == want["notes"]


def test_evaluate_leaves_out_models_without_accuracy_and_refuses_bad_input():
    ev = tlkit.evaluate({"logme": {"a": 0.4, "b": 0.1, "c": 0.3, "x": 9.0}},
                        {"a": 91.0, "b": 80.5, "c": 88.2})
    assert ev["left_out"] == ["x"]
    assert ev["metrics"][0]["n_models"] == 3
    assert ev["metrics"][0]["weighted_tau"] == 1.0
    assert ev["metrics"][0]["top1_relative_accuracy"] == 1.0
    assert any("only 3 models" in n for n in ev["notes"])
    with pytest.raises(ValueError, match="metric 'logme' has a score for only 1 model"):
        tlkit.evaluate({"logme": {"a": 0.4}}, {"a": 91.0})
    with pytest.raises(ValueError, match="the score of model 'b' is nan"):
        tlkit.evaluate({"logme": {"a": 0.4, "b": float("nan")}}, {"a": 91.0, "b": 80.0})
    # ETran is formed from its components across the models.
    comp = {"etran_lda": {"a": 1.0, "b": 0.0, "c": 0.5}, "etran_energy": {"a": 0.0, "b": 1.0,
                                                                          "c": 0.5}}
    names = [m["metric"] for m in tlkit.evaluate(comp, {"a": 3.0, "b": 1.0, "c": 2.0})["metrics"]]
    assert "etran" in names
