"""tlkit.logme and tlkit.LogmeAccumulator: the NumPy references (tests/data/logme/refs.json,
tools/logme_numpy.py), the C++ API and the CLI on the same inputs, streaming, layouts."""

import numpy as np
import pytest

import logme_numpy
import tlkit
from conftest import DATA, LOGME_REFS, logme_case, rel_err, run_json

CASES = sorted(LOGME_REFS)
MODES = ["exact", "thuml", "icml"]
# The C++ tests' tolerances against the references: thuml and icml reproduce the fixed-point
# codes to 1e-8; exact is checked against a SciPy optimiser good to about 1e-9.
REF_RTOL = {"exact": 1e-9, "thuml": 1e-8, "icml": 1e-8}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_matches_numpy_references(case, mode):
    f, y, regression = logme_case(case)
    ref = LOGME_REFS[case][mode]
    r = tlkit.logme(f, y, regression=regression, mode=mode)
    assert rel_err(r.score, ref["score"]) <= REF_RTOL[mode]
    assert rel_err(r.per_target, ref["per_target"]) <= REF_RTOL[mode]
    for got, want in zip(list(r.alpha) + list(r.beta), ref["alpha"] + ref["beta"]):
        if want is None:  # a supremum at a limit
            assert np.isinf(got)
    assert r.mode == mode
    assert r.n == LOGME_REFS[case]["n"] and r.d == LOGME_REFS[case]["d"]
    assert len(r.per_target) == LOGME_REFS[case]["num_targets"]
    assert r.regression == regression
    if not regression:
        assert list(r.labels) == LOGME_REFS[case]["classes"]
        assert r.per_target.dtype == np.float64 and r.labels.dtype == np.int64


def _cpp_args(case, mode, chunk_rows=0):
    ref = LOGME_REFS[case]
    args = ["logme", "--features", DATA / "logme" / ("%s_features.npy" % case), "--mode", mode]
    if ref["regression"]:
        args += ["--labels", DATA / "logme" / ("%s_targets.npy" % case), "--regression"]
    else:
        args += ["--labels", DATA / "logme" / ("%s_labels.npy" % case)]
    if chunk_rows:
        args += ["--chunk-rows", chunk_rows]
    return args


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_python_equals_cpp_api(case, mode, cpp_reference):
    f, y, regression = logme_case(case)
    r = tlkit.logme(f, y, regression=regression, mode=mode)
    c = run_json([cpp_reference] + _cpp_args(case, mode))
    assert rel_err(r.score, c["score"]) <= 1e-12
    assert rel_err(r.per_target, c["per_target"]) <= 1e-12
    assert rel_err(r.alpha, c["alpha"]) <= 1e-12
    assert rel_err(r.beta, c["beta"]) <= 1e-12
    assert list(r.iterations) == c["iterations"] and r.rank == c["rank"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES)
def test_python_equals_cli(case, mode, cli):
    f, y, regression = logme_case(case)
    r = tlkit.logme(f, y, regression=regression, mode=mode)
    args = _cpp_args(case, mode)[1:]
    args = [a if a != "--mode" else "--logme-mode" for a in args]
    j = run_json([cli, "score", "--format", "json"] + args)["metrics"]["logme"]
    assert rel_err(r.score, j["score"]) <= 1e-12
    assert rel_err(r.per_target, j["per_target"]) <= 1e-12
    assert rel_err(r.alpha, j["alpha"]) <= 1e-12
    assert rel_err(r.beta, j["beta"]) <= 1e-12
    assert r.boundary == j["boundary"]
    assert list(r.converged) == j["converged"]


@pytest.mark.parametrize("case", ["tall", "tall_f32", "rankdef_tall", "noncontig", "regression"])
def test_streaming_python_equals_cpp_streaming(case, cpp_reference):
    f, y, regression = logme_case(case)
    acc = tlkit.LogmeAccumulator()
    for b in range(0, f.shape[0], 37):
        if regression:
            acc.update(f[b:b + 37], targets=y[b:b + 37])
        else:
            acc.update(f[b:b + 37], y[b:b + 37])
    r = acc.result()
    c = run_json([cpp_reference] + _cpp_args(case, "exact", chunk_rows=37))
    assert rel_err(r.per_target, c["per_target"]) <= 1e-12


def _stream(f, y, chunk, regression=False, mode="exact"):
    acc = tlkit.LogmeAccumulator()
    for b in range(0, f.shape[0], chunk):
        if regression:
            acc.update(f[b:b + chunk], targets=y[b:b + chunk])
        else:
            acc.update(f[b:b + chunk], y[b:b + chunk])
    assert acc.rows == f.shape[0] and acc.dim == f.shape[1]
    return acc.result(mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", ["tall", "tall_f32", "rankdef_tall", "noncontig", "binary",
                                  "regression", "regression_1d"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 100000])
def test_streaming_equals_in_memory(case, mode, chunk):
    f, y, regression = logme_case(case)
    whole = tlkit.logme(f, y, regression=regression, mode=mode)
    streamed = _stream(f, y, chunk, regression, mode)
    # The README's promise for the CLI's --chunk-rows: equal to rounding, 1e-9 relative.
    assert rel_err(streamed.per_target, whole.per_target) <= 1e-9
    assert list(streamed.labels) == list(whole.labels)


def test_streaming_merge_equals_one_accumulator():
    f, y, _ = logme_case("tall")
    a, b = tlkit.LogmeAccumulator(), tlkit.LogmeAccumulator()
    a.update(f[:120], y[:120])
    b.update(f[120:], y[120:])
    a.merge(b)
    assert a.rows == f.shape[0]
    assert rel_err(a.result().per_target, tlkit.logme(f, y).per_target) <= 1e-9
    with pytest.raises(ValueError, match="into itself"):
        a.merge(a)


def test_accumulator_needs_labels_or_targets():
    acc = tlkit.LogmeAccumulator()
    f, y, _ = logme_case("tall")
    with pytest.raises(TypeError):
        acc.update(f)
    with pytest.raises(TypeError):
        acc.update(f, y, targets=y.astype(float))
    with pytest.raises(ValueError, match="no rows"):
        acc.result()
    acc.update(f, y)
    with pytest.raises(ValueError, match="cannot mix classification and regression"):
        acc.update(f, targets=y.astype(float))
    with pytest.raises(ValueError, match="columns, earlier chunks had"):
        acc.update(f[:, :3], y)


@pytest.mark.parametrize("case", ["tall", "wide", "rankdef_tall", "regression"])
def test_live_numpy_implementations(case):
    """tools/logme_numpy.py called now (not only its stored refs): thuml mode equals both of its
    fixed-point implementations, icml mode its ICML iteration."""
    f, y, regression = logme_case(case)
    thuml = tlkit.logme(f, y, regression=regression, mode="thuml")
    for ref in (logme_numpy.logme_thuml(f, y, regression),
                logme_numpy.logme_eigh_fast(f, y, regression)):
        assert rel_err(thuml.per_target, ref["per_target"]) <= 1e-8
    icml = tlkit.logme(f, y, regression=regression, mode="icml")
    assert rel_err(icml.per_target, logme_numpy.logme_icml(f, y, regression)["per_target"]) <= 1e-8


# ---- layouts and dtypes: the same numbers whatever the memory layout ---------------------------

def test_layouts_give_the_same_result():
    f, y, _ = logme_case("tall")
    base = tlkit.logme(f, y)
    for variant in (np.asfortranarray(f), f.copy(order="C"), f[::-1][::-1],
                    np.ascontiguousarray(f.T).T):
        assert rel_err(tlkit.logme(variant, y).per_target, base.per_target) <= 1e-12
    # A strided slice equals its contiguous copy (zero-copy view with strides).
    wide = np.zeros((f.shape[0], 2 * f.shape[1]))
    wide[:, ::2] = f
    assert rel_err(tlkit.logme(wide[:, ::2], y).per_target, base.per_target) <= 1e-12
    tall = np.zeros((2 * f.shape[0], f.shape[1]))
    tall[::2] = f
    assert rel_err(tlkit.logme(tall[::2], y).per_target, base.per_target) <= 1e-12
    # Reversed rows with reversed labels: the same data in another order.
    assert rel_err(tlkit.logme(f[::-1], y[::-1]).per_target, base.per_target) <= 1e-9


def test_float32_is_read_as_float32():
    f, y, _ = logme_case("tall_f32")
    assert f.dtype == np.float32
    r32 = tlkit.logme(f, y)
    r64 = tlkit.logme(f.astype(np.float64), y)  # the exact float32 values, upcast
    assert rel_err(r32.per_target, r64.per_target) <= 1e-12
    assert rel_err(tlkit.logme(np.asfortranarray(f), y).per_target, r64.per_target) <= 1e-12


def test_float16_and_integer_features_are_converted_like_numpy():
    f, y, _ = logme_case("tall")
    f16 = f.astype(np.float16)
    assert tlkit.logme(f16, y).score == tlkit.logme(f16.astype(np.float64), y).score
    fi = np.round(f * 100).astype(np.int32)
    assert tlkit.logme(fi, y).score == tlkit.logme(fi.astype(np.float64), y).score
    big = f.astype(">f8")  # non-native byte order: converted, same values
    assert tlkit.logme(big, y).score == tlkit.logme(f, y).score


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                   np.uint32, np.uint64, ">i8"])
def test_label_dtypes(dtype):
    f, y, _ = logme_case("noncontig")
    base = tlkit.logme(f, y)
    r = tlkit.logme(f, y.astype(dtype))
    assert r.score == base.score and list(r.labels) == list(base.labels)
    assert tlkit.logme(f, y.reshape(-1, 1)).score == base.score  # (N, 1) labels
    assert tlkit.logme(f, list(y)).score == base.score           # a Python list


def test_bool_labels():
    f, y, _ = logme_case("binary")
    assert set(np.unique(y)) == {0, 1}
    r = tlkit.logme(f, y.astype(bool))
    assert r.score == tlkit.logme(f, y).score and list(r.labels) == [0, 1]


def test_regression_targets_layouts():
    f, t, _ = logme_case("regression")
    base = tlkit.logme(f, t, regression=True)
    assert base.regression and len(base.labels) == 0
    for variant in (np.asfortranarray(t), t.astype(np.float32).astype(np.float64), t[:, ::1]):
        assert rel_err(tlkit.logme(f, variant, regression=True).per_target,
                       tlkit.logme(f, np.ascontiguousarray(variant), regression=True).per_target
                       ) <= 1e-12
    one = tlkit.logme(f, t[:, 1], regression=True)  # 1-D target = column 1
    assert rel_err(one.per_target[0], base.per_target[1]) <= 1e-12
    t32 = t.astype(np.float32)  # converted to float64 like NumPy
    assert tlkit.logme(f, t32, regression=True).score == \
        tlkit.logme(f, t32.astype(np.float64), regression=True).score


def test_result_fields():
    f, y, _ = logme_case("wide")
    r = tlkit.logme(f, y)
    assert set(r.boundary) <= {"interior", "beta_infinite", "alpha_infinite", "noise_floor"}
    d = r.as_dict()
    assert d["score"] == r.score and d["boundary"] == r.boundary and d["mode"] == "exact"
    assert d["labels"] == list(r.labels) and d["per_target"] == list(r.per_target)
    assert "LogmeResult(score=" in repr(r)
    assert tlkit.logme(f, y, mode="thuml").boundary == ["n/a"] * len(r.per_target)
