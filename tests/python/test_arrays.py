"""How arrays reach the core: zero-copy for float32/float64 in any element-strided layout,
NumPy-semantics conversion otherwise, ValueError for what cannot be features."""

import tracemalloc

import numpy as np
import pytest

import tlkit


def _info(a, role="features"):
    return tlkit._debug_view_info(a, role)


def _rng_features(n=300, d=12, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)).astype(dtype), rng.integers(0, 4, n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_contiguous_layouts_are_not_copied(dtype):
    f, _ = _rng_features(dtype=dtype)
    n, d = f.shape
    cases = {
        "C": (f, (d, 1)),
        "F": (np.asfortranarray(f), (1, n)),
        "column slice": (f[:, 2:9], (d, 1)),
        "every other column": (f[:, ::2], (d, 2)),
        "every third row": (f[::3], (3 * d, 1)),
        "reversed rows": (f[::-1], (-d, 1)),
        "transposed view": (np.ascontiguousarray(f.T).T, (1, n)),
    }
    for name, (a, strides) in cases.items():
        info = _info(a)
        assert not info["copied"], (name, info["reason"])
        assert info["data"] == info["input_data"], name  # the core reads the caller's memory
        assert info["strides"] == strides, name
        assert info["dtype"] == np.dtype(dtype).name
        assert info["shape"] == a.shape


def test_read_only_and_memory_mapped_arrays_are_not_copied(tmp_path):
    f, y = _rng_features(dtype=np.float32)
    ro = f.copy()
    ro.flags.writeable = False
    assert not _info(ro)["copied"]
    np.save(tmp_path / "f.npy", f)
    mm = np.load(tmp_path / "f.npy", mmap_mode="r")
    assert not _info(mm)["copied"]
    assert tlkit.logme(mm, y).score == tlkit.logme(f, y).score


def test_single_row_or_column_is_not_copied():
    f, _ = _rng_features()
    for a in (f[:, :1], np.asfortranarray(f)[:, :1], f[:1], f[:1, :1]):
        assert not _info(a)["copied"]


@pytest.mark.parametrize("dtype,converted", [(np.float16, "float64"), (np.int32, "float64"),
                                             (np.uint8, "float64"), (np.bool_, "float64"),
                                             (np.longdouble, "float64"), (">f4", "float32"),
                                             (">f8", "float64")])
def test_other_dtypes_are_converted(dtype, converted):
    f, _ = _rng_features()
    a = (f * 10).astype(dtype)
    info = _info(a)
    assert info["copied"] and info["reason"]
    assert info["dtype"] == converted


def test_odd_strides_are_copied_as_float32():
    # A float32 array at an odd address, through np.frombuffer with an offset.
    raw = bytes(4 * 300 * 12 + 1)
    f32 = np.frombuffer(raw, dtype=np.float32, count=300 * 12, offset=1).reshape(300, 12)
    info = _info(f32)
    assert info["copied"] and "whole elements" in info["reason"] and info["dtype"] == "float32"
    # A structured array's field: strides are not a multiple of the item size.
    rec = np.zeros((300, 12), dtype=[("a", np.float32), ("b", np.int8)])
    info = _info(rec["a"])
    assert info["copied"] and "whole elements" in info["reason"] and info["dtype"] == "float32"


def test_lists_are_converted():
    rows = [[1.0, 2.0], [3.0, 5.0], [0.5, 1.0], [2.0, 2.5]]
    assert _info(rows)["input_data"] is None and _info(rows)["dtype"] == "float64"
    labels = [0, 1, 0, 1]
    assert tlkit.logme(rows, labels).score == tlkit.logme(np.array(rows), np.array(labels)).score


def test_labels_int64_contiguous_are_not_copied():
    _, y = _rng_features()
    y = y.astype(np.int64)
    info = _info(y, "labels")
    assert not info["copied"] and info["data"] == info["input_data"]
    assert _info(y.reshape(-1, 1), "labels")["data"] == info["data"]
    for other in (y.astype(np.int32), y[::2], y.astype(bool), y.astype(">i8")):
        assert _info(other, "labels")["copied"]


def test_targets_float64_any_layout_are_not_copied():
    t = np.random.default_rng(1).standard_normal((300, 3))
    for a in (t, np.asfortranarray(t), t[:, 1], t[::2]):
        info = _info(a, "targets")
        assert not info["copied"] and info["data"] == info["input_data"]
    assert _info(t.astype(np.float32), "targets")["copied"]


def _peak_traced_bytes(fn):
    """Peak of Python-tracked allocations (NumPy reports its array buffers to tracemalloc)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_no_copy_is_made_measured_by_tracemalloc():
    """The debug view info is not the only witness: scoring a 9.6 MB float32 array allocates far
    less than a copy through NumPy, while a float16 array (which must be converted) shows the
    converted copy in the same measurement."""
    f, y = _rng_features(n=200_000, d=12, dtype=np.float32, seed=2)
    assert f.nbytes == 9_600_000
    peak = _peak_traced_bytes(lambda: tlkit.logme(f, y))
    assert peak < f.nbytes / 10, peak
    fortran = np.asfortranarray(f)
    peak_f = _peak_traced_bytes(lambda: tlkit.score(fortran, y, metrics=["logme"]))
    assert peak_f < f.nbytes / 10, peak_f
    f16 = f.astype(np.float16)
    peak16 = _peak_traced_bytes(lambda: tlkit.logme(f16, y))
    assert peak16 >= f16.size * 8, peak16  # the float64 copy is visible


# ---- refused inputs ----------------------------------------------------------------------------

@pytest.mark.parametrize("bad,match", [
    (np.zeros(5), r"features: must be a 2-D array \(N, D\), got shape \(5,\)"),
    (np.zeros((2, 3, 4)), r"must be a 2-D array \(N, D\), got shape \(2, 3, 4\)"),
    (np.zeros((5, 2), dtype=complex), "complex dtype complex128 is not supported"),
    (np.array([["a", "b"]] * 5), "must be real numbers, got dtype <U1"),
    (np.zeros((5, 2), dtype=object), "must be real numbers, got dtype object"),
    (None, "features: expected an array, got None"),
])
def test_bad_features_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        tlkit.logme(bad, [0, 1, 0, 1, 1])


@pytest.mark.parametrize("bad,match", [
    (np.array([0.0, 1.0, 0.0, 1.0]), "labels have dtype float64; classification needs integer "
                                     r"labels \(pass regression=True"),
    (np.zeros((4, 2), dtype=int),
     r"labels must have shape \(N,\) or \(N, 1\), got \(4, 2\) \(one-hot or multi-label "
     r"0/1 columns are a target matrix: .* with regression=True\)"),
    (np.array(["a", "b", "a", "b"]), "labels must be integers or bool, got dtype <U1"),
    (np.array([0, 1, 2**63, 1], dtype=np.uint64),
     "label 9223372036854775808 at row 2 does not fit in int64"),
])
def test_bad_labels_raise_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        tlkit.logme(np.ones((4, 2)), bad)


def test_large_uint64_labels_that_fit_are_accepted():
    f = np.random.default_rng(0).standard_normal((4, 2))
    y = np.array([0, 2**62, 0, 2**62], dtype=np.uint64)
    assert list(tlkit.logme(f, y).labels) == [0, 2**62]


def test_bad_targets_raise_value_error():
    with pytest.raises(ValueError, match=r"targets: targets must have shape \(N,\) or \(N, K\)"):
        tlkit.logme(np.ones((4, 2)), np.zeros((4, 1, 1)), regression=True)
    with pytest.raises(ValueError, match="complex"):
        tlkit.logme(np.ones((4, 2)), np.zeros(4, dtype=complex), regression=True)
