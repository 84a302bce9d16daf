"""tlkit's ranking correlations against SciPy: the stored references
(tests/data/correlation/refs.json) and scipy.stats called now."""

import csv
import json
import math

import numpy as np
import pytest
import scipy.stats

import tlkit
from conftest import DATA, rel_err

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
    with open(DATA / "correlation" / "tllib_cifar10_truth.csv") as f:
        acc = {r["model"]: float(r["accuracy"]) for r in csv.DictReader(f)}
    scores = {}
    with open(DATA / "correlation" / "tllib_cifar10_scores.csv") as f:
        for r in csv.DictReader(f):
            scores.setdefault(r["metric"], {})[r["model"]] = float(r["score"])
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
