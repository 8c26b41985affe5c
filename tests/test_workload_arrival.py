"""Arrival processes (DESIGN 4.1): bit-exactness with the published loop, rates, validation."""

import math

import numpy as np
import pytest

from alpa_serve.workload import (
    DeterministicProcess,
    GammaProcess,
    PoissonProcess,
    Workload,
    power_law_rates,
    uniform_rates,
    weighted_rates,
)


def reference_gamma(rate, cv, start, duration, seed):
    """Literal transcription of the published artifact's GammaProcess.generate_arrivals."""
    shape = 1 / (cv * cv)
    scale = cv * cv / rate
    np.random.seed(seed)
    batch_size = max(int(rate * duration * 1.2), 1)
    intervals = np.random.gamma(shape, scale, size=batch_size)
    pt = 0
    ticks = []
    cur = start + intervals[0]
    end = start + duration
    while cur < end:
        ticks.append(cur)
        pt += 1
        if pt >= batch_size:
            intervals = np.random.gamma(shape, scale, size=batch_size)
            pt = 0
        cur += intervals[pt]
    return np.array(ticks, dtype=np.float64), np.random.get_state()


CASES = [
    # (rate, cv, start, duration, seed)
    (10.0, 1.0, 0.0, 100.0, 0),
    (5.0, 0.25, 0.0, 400.0, 3),
    (2.3, 3.0, 12.5, 300.0, 7),
    (8.0, 4.0, 0.0, 2000.0, 1234),
    (0.7, 1.5, 1123200.0, 5400.0, 42),   # absolute MAF2-like start: large magnitudes
    (1.0, 1.0, 0.0, 0.5, 1),             # n = max(int(0.6), 1) = 1: refill after every gap
    (0.01, 0.5, 0.0, 1000.0, 5),         # n = 12 while ~10 expected: occasional refill
    (3.0, 0.1, 0.0, 10.0, 9),            # low cv: ~30 arrivals from n = 36
    (20.0, 8.0, 60.0, 60.0, 11),         # cv 8: many gaps underflow to 0 -> identical arrivals
    (1.0, 30.0, 0.0, 500.0, 2),          # extreme cv: shape ~1e-3
    (4.0, 1.0, 0.0, 0.0, 0),             # duration 0: no arrivals
]


@pytest.mark.parametrize("rate,cv,start,duration,seed", CASES)
def test_gamma_bit_exact_with_reference_loop(rate, cv, start, duration, seed):
    ref, ref_state = reference_gamma(rate, cv, start, duration, seed)
    got = GammaProcess(rate, cv).generate_arrivals(start, duration, seed)
    state = np.random.get_state()
    assert got.dtype == np.float64
    assert got.shape == ref.shape
    # Bit-exact (array_equal on float64 compares exact values).
    assert np.array_equal(got, ref)
    # The global RNG state left behind matches too (same number of batches drawn).
    assert ref_state[2] == state[2]
    assert np.array_equal(ref_state[1], state[1])


def test_ties_occur_with_large_cv():
    # Large cv: many gaps underflow to 0, giving identical arrival times (still bit-exact).
    big = GammaProcess(20.0, 8.0).generate_arrivals(60.0, 60.0, 11)
    assert np.array_equal(big, reference_gamma(20.0, 8.0, 60.0, 60.0, 11)[0])
    assert len(big) - len(np.unique(big)) > 0


def test_refill_count_exceeds_batch():
    # Find a seed where the ticks exceed one batch, to make sure that branch is exercised.
    rate, cv, dur = 0.01, 0.5, 1000.0
    n = max(int(rate * dur * 1.2), 1)
    exceeded = False
    for seed in range(50):
        got = GammaProcess(rate, cv).generate_arrivals(0.0, dur, seed)
        assert np.array_equal(got, reference_gamma(rate, cv, 0.0, dur, seed)[0])
        exceeded |= len(got) > n
    assert exceeded


def test_arrivals_in_window_and_sorted():
    a = GammaProcess(7.0, 2.0).generate_arrivals(100.0, 50.0, 3)
    assert np.all(a >= 100.0) and np.all(a < 150.0)
    assert np.all(np.diff(a) >= 0)


def test_poisson_is_gamma_cv1():
    p = PoissonProcess(3.0)
    assert p.cv == 1.0
    assert np.array_equal(p.generate_arrivals(0, 100, 4),
                          GammaProcess(3.0, 1.0).generate_arrivals(0, 100, 4))


def test_deterministic():
    d = DeterministicProcess(4.0)
    a = d.generate_arrivals(1.0, 1.0, seed=123)
    assert np.array_equal(a, 1.0 + np.arange(4) * 0.25)
    assert len(d.generate_arrivals(0.0, 0.0)) == 0
    assert d.cv == 0.0
    # seed is ignored
    assert np.array_equal(d.generate_arrivals(0, 10, 1), d.generate_arrivals(0, 10, 2))


def test_generate_workload():
    w = GammaProcess(5.0, 1.0).generate_workload(2, 0.0, 10.0, slo=0.5, seed=1)
    assert isinstance(w, Workload)
    assert w.model_names == ["m0", "m1", "m2"]
    assert np.all(w.model_ids == 2) and w.model_ids.dtype == np.int32
    assert np.all(w.slos == 0.5)
    assert np.array_equal(w.arrivals, GammaProcess(5.0, 1.0).generate_arrivals(0.0, 10.0, 1))
    w2 = GammaProcess(5.0, 1.0).generate_workload(0, 0.0, 10.0, 0.5, 1, model_names=["a", "b"])
    assert w2.model_names == ["a", "b"]
    with pytest.raises(ValueError):
        GammaProcess(5.0, 1.0).generate_workload(3, 0.0, 10.0, 0.5, 1, model_names=["a"])


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_rate_validation(bad):
    with pytest.raises(ValueError, match="rate must be > 0"):
        GammaProcess(bad, 1.0)
    with pytest.raises(ValueError, match="rate must be > 0"):
        PoissonProcess(bad)
    with pytest.raises(ValueError, match="rate must be > 0"):
        DeterministicProcess(bad)


@pytest.mark.parametrize("bad", [0.0, -0.5, float("nan")])
def test_cv_validation(bad):
    with pytest.raises(ValueError, match="cv must be > 0"):
        GammaProcess(1.0, bad)


def test_duration_validation():
    with pytest.raises(ValueError, match="duration"):
        GammaProcess(1.0, 1.0).generate_arrivals(0.0, -1.0, 0)
    with pytest.raises(ValueError, match="duration"):
        DeterministicProcess(1.0).generate_arrivals(0.0, -1.0, 0)


# ----------------------------------------------------------------------------- rates

def test_power_law_exact_loop_form():
    for total, n in [(100.0, 1), (60.0, 8), (7.3, 36), (1e3, 72)]:
        s = 0.0
        for j in range(n):
            s += (j + 1) ** -0.5
        ref = [(total / s) * (i + 1) ** -0.5 for i in range(n)]
        got = power_law_rates(total, n)
        assert got.dtype == np.float64
        assert [float(x) for x in got] == ref
    # The exact form matters: an algebraically equal form rounds differently somewhere.
    n, total = 72, 7.3
    s = sum((j + 1) ** -0.5 for j in range(n))
    alt = [total * (i + 1) ** -0.5 / s for i in range(n)]
    assert any(a != b for a, b in zip(alt, power_law_rates(total, n)))


def test_uniform_and_weighted():
    assert np.array_equal(uniform_rates(10.0, 4), np.full(4, 2.5))
    w = [1.0, 3.0]
    assert list(weighted_rates(8.0, w)) == [1.0 / 4.0 * 8.0, 3.0 / 4.0 * 8.0]
    with pytest.raises(ValueError):
        uniform_rates(1.0, 0)
    with pytest.raises(ValueError):
        weighted_rates(1.0, [])
    with pytest.raises(ValueError):
        weighted_rates(1.0, [0.0, 0.0])
    assert math.isclose(float(np.sum(power_law_rates(10.0, 5))), 10.0)
