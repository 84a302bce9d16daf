"""The GIL is released while the core computes: other Python threads run meanwhile, and
concurrent scorings give the results of serial ones. (No timing is asserted: the checks are
about what can happen during a call, not how fast it is.)"""

import sys
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


def test_other_python_threads_run_during_one_call():
    """While one thread is inside a single tlkit.score call, the main thread executes Python.

    The worker reads the main thread's counter right before the call and right after it. With
    the GIL held for the whole call the two reads are equal whatever the timing: the switch
    interval is raised far above the call's length, so the interpreter never forces the worker
    to hand over the GIL between the reads, and nothing in between releases it (the arrays are
    float32 and int64, contiguous: no conversion, no copy). With the GIL released during the
    core computation, the main thread runs its loop meanwhile and the counter moves. The main
    thread sleeps briefly every few thousand steps so that the worker can take the GIL back when
    its call ends. A call in which the main thread was never scheduled (a very loaded machine)
    shows no progress but proves nothing either way, so the check is tried up to 10 times."""
    f, y = _problem(2, n=20000, d=256)
    assert f.dtype == np.float32 and f.flags["C_CONTIGUOUS"] and y.dtype == np.int64
    counter = [0]
    reads = []

    def worker():
        before = counter[0]
        tlkit.score(f, y, metrics=["logme"], threads=1)
        reads.append((before, counter[0]))

    old = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    try:
        for _ in range(10):
            t = threading.Thread(target=worker)
            t.start()
            while t.is_alive():
                counter[0] += 1
                if counter[0] % 4096 == 0:
                    time.sleep(0.001)
            t.join()
            if reads[-1][1] > reads[-1][0]:
                break
    finally:
        sys.setswitchinterval(old)
    assert reads[-1][1] > reads[-1][0], reads


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
