"""Shared fixtures for the tlkit Python tests.

Run with the built package on the path (scripts/test does this):

    PYTHONPATH=build-py/python /usr/bin/python3 -m pytest tests/python

The comparisons with the C++ API and the CLI use the programs recorded by the build in
<build>/python/tlkit_build_info.json (or $TLKIT_CPP_REFERENCE / $TLKIT_CLI); a test that needs
one that was not built (a pip install, TLKIT_BUILD_CLI=OFF) is skipped and says why.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tlkit

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
sys.path.insert(0, str(REPO / "tools"))


def _build_info():
    path = Path(tlkit.__file__).resolve().parent.parent / "tlkit_build_info.json"
    if path.is_file():
        return json.loads(path.read_text())
    return {}


def _program(env, key):
    p = os.environ.get(env) or _build_info().get(key) or ""
    return p if p and os.access(p, os.X_OK) else None


@pytest.fixture(scope="session")
def cli():
    """Path of the tlkit command-line program, or skip."""
    p = _program("TLKIT_CLI", "cli")
    if p is None:
        pytest.skip("the tlkit CLI was not built with this module (TLKIT_BUILD_CLI=OFF or a pip "
                    "install); set TLKIT_CLI to compare with it")
    return p


@pytest.fixture(scope="session")
def cpp_reference():
    """Path of tlkit_py_cpp_reference (tests/python/cpp_reference.cpp), or skip."""
    p = _program("TLKIT_CPP_REFERENCE", "cpp_reference")
    if p is None:
        pytest.skip("tlkit_py_cpp_reference was not built (TLKIT_BUILD_TESTS=OFF or a pip install)")
    return p


def run_json(argv):
    """Runs a program that prints one JSON object; returns it (nulls as inf where asked)."""
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    assert out.returncode == 0, "%s failed (%d): %s" % (argv[0], out.returncode, out.stderr)
    return json.loads(out.stdout)


def run_error(argv):
    """Runs a program expected to fail with exit code 2; returns its one-line message with the
    program's own prefix ('tlkit: error: ') removed."""
    out = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False)
    assert out.returncode == 2, "%s: expected exit code 2, got %d (stderr %r)" % (
        argv[0], out.returncode, out.stderr)
    line = out.stderr.strip().splitlines()[-1]
    return _as_roles(line.split(": error: ", 1)[1], [str(a) for a in argv])


def _as_roles(msg, argv):
    """The message as the library words it: tlkit score names the file the user gave where the
    library names the input's role ('f.npy: non-finite ...' for 'features: non-finite ...')."""
    flags = (("--features", "features"), ("--labels", "targets" if "--regression" in argv
                                          else "labels"), ("--probs", "probs"))
    for flag, role in flags:
        if flag in argv[:-1]:
            path = argv[argv.index(flag) + 1]
            if msg.startswith(path + ":"):
                return role + msg[len(path):]
    return msg


def rel_err(a, b):
    """Largest relative error between a and b (arrays or scalars); None and inf compare equal to
    inf; 1e-300 floor."""
    a = np.asarray([np.inf if v is None else v for v in np.atleast_1d(a)], dtype=np.float64)
    b = np.asarray([np.inf if v is None else v for v in np.atleast_1d(b)], dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    both_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    a, b = a[~both_inf], b[~both_inf]
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-300)))


LOGME_REFS = json.loads((DATA / "logme" / "refs.json").read_text())
METRIC_REFS = json.loads((DATA / "metrics" / "refs.json").read_text())["cases"]


def logme_case(name):
    """(features, labels or targets, regression) of a tests/data/logme case."""
    ref = LOGME_REFS[name]
    f = np.load(DATA / "logme" / ("%s_features.npy" % name))
    if ref["regression"]:
        return f, np.load(DATA / "logme" / ("%s_targets.npy" % name)), True
    return f, np.load(DATA / "logme" / ("%s_labels.npy" % name)), False


def metric_case(name):
    """(features, labels, probs or None) of a tests/data/metrics case."""
    base = DATA / "metrics"
    f = np.load(base / ("%s_features.npy" % name))
    y = np.load(base / ("%s_labels.npy" % name))
    p = base / ("%s_probs.npy" % name)
    return f, y, (np.load(p) if p.exists() else None)
