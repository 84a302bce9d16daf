"""The GIL is released while the core computes: other Python threads run meanwhile, and
concurrent scorings give the results of serial ones. (No timing is asserted: the checks are
about what can happen during a call, not how fast it is.)"""

import threading
import time

import numpy as np

import tlkit


# Metrics with real work in the core and cheap enough to run several times here.
FAST = [m["name"] for m in tlkit.metrics()
        if m["name"] in ("logme", "hscore", "hscore_shrink", "transrate", "gbc", "sfda", "knn")]


def _problem(seed, n=6000, d=300, c=20):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, c, n)
    f = rng.standard_normal((n, d)) + rng.standard_normal((c, d))[y]
    return f.astype(np.float32), y


def test_other_python_threads_run_during_a_call():
    """While one thread is inside tlkit.score, the main thread keeps executing Python. With the GIL
    held for the whole call, the main thread could not run at all between the worker's entry
    into the call and its return, so no tick could fall in the middle of the call."""
    f, y = _problem(0)
    window = {}
    started = threading.Event()

    def worker():
        started.set()
        window["enter"] = time.perf_counter()
        for _ in range(3):
            tlkit.score(f, y, metrics=FAST[:3])
        window["exit"] = time.perf_counter()

    t = threading.Thread(target=worker)
    ticks = []
    t.start()
    started.wait()
    while t.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.0005)
    t.join()
    enter, exit_ = window["enter"], window["exit"]
    span = exit_ - enter
    middle = [x for x in ticks if enter + 0.25 * span < x < exit_ - 0.25 * span]
    assert len(middle) >= 1, (len(ticks), span)


def test_concurrent_scorings_equal_serial_ones():
    problems = [_problem(s, n=2000, d=80, c=8) for s in range(4)]
    serial = [(tlkit.logme(f, y).per_target, tlkit.score(f, y, metrics=FAST))
              for f, y in problems]
    results = [None] * len(problems)
    errors = []

    def run(i):
        try:
            f, y = problems[i]
            results[i] = (tlkit.logme(f, y).per_target, tlkit.score(f, y, metrics=FAST))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for (pt, s), (pt0, s0) in zip(results, serial):
        assert np.array_equal(pt, pt0)
        assert dict(s) == dict(s0)


def test_one_accumulator_fed_from_several_threads():
    """update() releases the GIL; the accumulator's lock keeps concurrent updates whole."""
    f, y = _problem(1, n=4000, d=50, c=5)
    acc = tlkit.LogmeAccumulator()
    chunks = [(f[b:b + 250], y[b:b + 250]) for b in range(0, len(y), 250)]

    def feed(part):
        for fc, yc in part:
            acc.update(fc, yc)

    threads = [threading.Thread(target=feed, args=(chunks[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert acc.rows == len(y)
    whole = tlkit.logme(f, y)
    got = acc.result()
    assert np.max(np.abs(got.per_target - whole.per_target) / np.abs(whole.per_target)) < 1e-9
