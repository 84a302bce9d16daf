"""The names of the reference implementations (thuml/LogME, TLlib's tllib.ranking) in tlkit:
each alias against the main function it stands for, LogME.fit against the independent NumPy
references (tests/data/logme/refs.json, tools/logme_numpy.py) and LogME.predict against the
posterior mean solved directly from its definition with NumPy."""

import numpy as np
import pytest

import tlkit
from conftest import LOGME_REFS, METRIC_REFS, logme_case, metric_case, rel_err


def _posterior_means_numpy(f, y_columns, alpha, beta):
    """m_k = beta (alpha I + beta F^T F)^-1 F^T y_k by a dense solve (N > D, full rank)."""
    f = np.asarray(f, dtype=np.float64)
    g = f.T @ f
    return np.stack([np.linalg.solve(a * np.eye(f.shape[1]) + b * g, b * (f.T @ y_columns[:, k]))
                     for k, (a, b) in enumerate(zip(alpha, beta))])


@pytest.mark.parametrize("mode", ["exact", "thuml", "icml"])
@pytest.mark.parametrize("case", ["tall", "regression", "regression_1d"])
def test_logme_class_fit_matches_the_numpy_reference(case, mode):
    f, y, regression = logme_case(case)
    m = tlkit.LogME(regression=regression, mode=mode)
    got = m.fit(f, y)
    assert got == tlkit.logme(f, y, regression=regression, mode=mode).score
    ref = LOGME_REFS[case][mode]
    assert rel_err(got, ref["score"]) <= 1e-8, (case, mode, got, ref["score"])
    assert rel_err(m.alphas, ref["alpha"]) <= 1e-6
    assert rel_err(m.betas, ref["beta"]) <= 1e-6


def test_logme_class_predict_classification_matches_a_direct_solve():
    f, y, _ = logme_case("tall")
    m = tlkit.LogME()
    m.fit(f, y)
    classes = np.unique(y)
    assert list(m.classes) == list(classes)
    onehot = (y[:, None] == classes[None, :]).astype(np.float64)
    ms = _posterior_means_numpy(f, onehot, m.alphas, m.betas)
    assert rel_err(m.ms, ms) <= 1e-8
    expected = classes[np.argmax(f @ ms.T, axis=1)]
    assert np.array_equal(m.predict(f), expected)
    # The fit means something: most training rows get their own label back.
    assert np.mean(m.predict(f) == y) > 1.0 / len(classes)


@pytest.mark.parametrize("case", ["regression", "regression_1d"])
def test_logme_class_predict_regression_matches_a_direct_solve(case):
    f, t, _ = logme_case(case)
    m = tlkit.LogME(regression=True)
    m.fit(f, t)
    columns = t.reshape(-1, 1) if t.ndim == 1 else t
    ms = _posterior_means_numpy(f, columns, m.alphas, m.betas)
    pred = m.predict(f)
    assert pred.shape == columns.shape
    assert rel_err(pred, f @ ms.T) <= 1e-8


def test_logme_class_predict_before_fit_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        tlkit.LogME().predict(np.zeros((3, 2)))


@pytest.mark.parametrize("case", ["tall", "regression"])
def test_log_maximum_evidence_is_logme(case):
    f, y, regression = logme_case(case)
    for mode in ("exact", "icml"):
        want = tlkit.logme(f, y, regression=regression, mode=mode).score
        assert tlkit.log_maximum_evidence(f, y, regression=regression, mode=mode) == want
    score, weights = tlkit.log_maximum_evidence(f, y, regression=regression, return_weights=True)
    m = tlkit.LogME(regression=regression)
    assert score == m.fit(f, y)
    assert np.array_equal(weights, m.ms)


@pytest.mark.parametrize("case", sorted(c for c in METRIC_REFS if metric_case(c)[2] is not None))
def test_tllib_aliases_are_the_metrics(case):
    f, y, p = metric_case(case)
    assert tlkit.h_score(f, y) == tlkit.hscore(f, y)
    assert tlkit.log_expected_empirical_prediction(p, y) == tlkit.leep(p, y)
    assert tlkit.LEEP(p, y) == tlkit.leep(p, y)
    # NCE from hard source labels (TLlib's and thuml's input) equals tlkit's nce on the
    # probabilities whose argmax they are, and the independent NumPy reference.
    z = np.argmax(p, axis=1)
    got = tlkit.negative_conditional_entropy(z, y)
    assert got == tlkit.NCE(z, y)
    assert rel_err(got, tlkit.nce(p, y)) <= 1e-12
    assert rel_err(got, METRIC_REFS[case]["values"]["nce"]) <= 1e-9


def test_nce_alias_takes_any_source_label_values():
    y = np.array([0, 0, 1, 1, 1, 0])
    z = np.array([7, 7, 3, 3, 7, 3])
    assert tlkit.negative_conditional_entropy(z, y) == tlkit.negative_conditional_entropy(
        np.array([1, 1, 0, 0, 1, 0]), y)
