"""Arrival processes and per-model rate splits (DESIGN 4.1).

All times are in seconds and all rates in requests per second.

The Gamma process uses the *legacy generator* of the published artifact, which is kept
bit-compatible so that our workloads are identical to the original's:

* it calls ``np.random.seed(seed)``, i.e. it **resets numpy's global RNG state** (a side effect
  callers must be aware of; every seed is an explicit argument, nothing relies on the state
  left behind), and
* draws gaps in batches of ``n = max(int(rate * duration * 1.2), 1)`` from ``np.random.gamma``,
  accumulating them with the exact sequence of float64 additions of the original Python loop
  ``t = start + gap[0]; t += gap[k]`` (see :func:`legacy_gamma_arrivals`).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from alpa_serve.workload.workload import Workload

__all__ = [
    "ArrivalProcess",
    "GammaProcess",
    "PoissonProcess",
    "DeterministicProcess",
    "legacy_gamma_arrivals",
    "uniform_rates",
    "power_law_rates",
    "weighted_rates",
]


def _check_rate(rate: float) -> float:
    rate = float(rate)
    if not math.isfinite(rate) or rate <= 0:
        raise ValueError(f"rate must be > 0 and finite (requests/s), got {rate!r}")
    return rate


def _check_cv(cv: float) -> float:
    cv = float(cv)
    if not math.isfinite(cv) or cv <= 0:
        raise ValueError(f"cv must be > 0 and finite, got {cv!r}")
    return cv


def _check_window(start: float, duration: float) -> tuple[float, float]:
    start = float(start)
    duration = float(duration)
    if not math.isfinite(start):
        raise ValueError(f"start must be finite (s), got {start!r}")
    if not math.isfinite(duration) or duration < 0:
        raise ValueError(f"duration must be >= 0 and finite (s), got {duration!r}")
    return start, duration


def legacy_gamma_arrivals(shape: float, scale: float, rate: float, start: float,
                          duration: float, seed: int) -> np.ndarray:
    """Arrival times (s, float64, non-decreasing) of the published artifact's Gamma generator.

    Equivalent, bit for bit, to this loop (the original code)::

        np.random.seed(seed)
        n = max(int(rate * duration * 1.2), 1)
        gaps = np.random.gamma(shape, scale, size=n); pt = 0
        t = start + gaps[0]; ticks = []
        while t < start + duration:
            ticks.append(t); pt += 1
            if pt >= n: gaps = np.random.gamma(shape, scale, size=n); pt = 0
            t += gaps[pt]

    ``shape``/``scale`` are the Gamma parameters of the gaps (scale in s); ``rate`` (req/s) only
    sizes the batches. Sets numpy's global RNG state (``np.random.seed``). The global state left
    behind also matches the loop: a new batch is drawn exactly when the loop would draw one.
    """
    np.random.seed(seed)
    end = start + duration
    n = max(int(rate * duration * 1.2), 1)
    chunks: list[np.ndarray] = []
    gaps = np.random.gamma(shape, scale, size=n)
    # np.cumsum (add.accumulate) adds strictly left to right, so cumsum([t0, g1, g2, ...])
    # performs the same float64 additions, in the same order, as the loop's `t += gap`.
    buf = np.empty(n, dtype=np.float64)
    buf[0] = start + gaps[0]
    buf[1:] = gaps[1:]
    acc = np.cumsum(buf)
    while True:
        # Arrivals are non-decreasing (gaps >= 0): the loop stops at the first t >= end.
        k = int(np.searchsorted(acc, end, side="left"))
        if k < len(acc):
            chunks.append(acc[:k])
            break
        chunks.append(acc)
        # All n ticks of this batch were kept: the loop draws the next batch and continues
        # from its first gap, added to the last tick.
        gaps = np.random.gamma(shape, scale, size=n)
        buf = np.empty(n + 1, dtype=np.float64)
        buf[0] = acc[-1]
        buf[1:] = gaps
        acc = np.cumsum(buf)[1:]
    if len(chunks) == 1:
        return np.ascontiguousarray(chunks[0], dtype=np.float64)
    return np.concatenate(chunks).astype(np.float64, copy=False)


class ArrivalProcess(ABC):
    """Base class: an arrival process with a mean ``rate`` (req/s) and a ``cv``."""

    rate: float
    cv: float

    @abstractmethod
    def generate_arrivals(self, start: float, duration: float, seed: int = 0) -> np.ndarray:
        """Arrival times (s, float64) in ``[start, start + duration)``."""

    def generate_workload(self, model_id: int, start: float, duration: float, slo: float,
                          seed: int = 0,
                          model_names: Optional[Sequence[str]] = None) -> Workload:
        """A one-model :class:`Workload` with arrivals in ``[start, start + duration)``.

        ``slo`` (s) is given to every request. ``model_names=None`` names the models
        ``m0..m{model_id}``; otherwise ``model_id`` must index ``model_names``.
        """
        model_id = int(model_id)
        if model_id < 0:
            raise ValueError(f"model_id must be >= 0, got {model_id}")
        if model_names is None:
            model_names = [f"m{i}" for i in range(model_id + 1)]
        arrivals = self.generate_arrivals(start, duration, seed)
        n = len(arrivals)
        return Workload(arrivals, np.full(n, model_id, dtype=np.int32),
                        np.full(n, float(slo), dtype=np.float64), list(model_names))


@dataclass(frozen=True)
class GammaProcess(ArrivalProcess):
    """Renewal process with Gamma(shape=1/cv^2, scale=cv^2/rate) inter-arrival gaps.

    ``rate`` in req/s; ``cv`` is the coefficient of variation of the gaps (1 = Poisson).
    Generation uses :func:`legacy_gamma_arrivals` (resets numpy's global RNG with ``seed``).
    """

    rate: float
    cv: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _check_rate(self.rate))
        object.__setattr__(self, "cv", _check_cv(self.cv))

    @property
    def shape(self) -> float:
        """Gamma shape parameter 1/cv^2 (computed as in the original: ``1 / (cv * cv)``)."""
        return 1 / (self.cv * self.cv)

    @property
    def scale(self) -> float:
        """Gamma scale parameter cv^2/rate, in seconds."""
        return self.cv * self.cv / self.rate

    def generate_arrivals(self, start: float, duration: float, seed: int = 0) -> np.ndarray:
        start, duration = _check_window(start, duration)
        return legacy_gamma_arrivals(self.shape, self.scale, self.rate, start, duration,
                                     int(seed))


class PoissonProcess(GammaProcess):
    """Poisson process: exactly ``GammaProcess(rate, 1.0)``.

    It shares the legacy Gamma generator (Gamma gaps with shape 1, *not* ``np.random.exponential``),
    as the published artifact does, so its arrivals equal GammaProcess(rate, 1) for the same seed.
    """

    def __init__(self, rate: float) -> None:
        super().__init__(rate, 1.0)

    def __repr__(self) -> str:
        return f"PoissonProcess(rate={self.rate!r})"


@dataclass(frozen=True)
class DeterministicProcess(ArrivalProcess):
    """Evenly spaced arrivals: ``start + k / rate`` for k = 0, 1, ... while ``< start + duration``.

    The first arrival is at ``start`` itself; ``seed`` is accepted for interface compatibility and
    ignored (no randomness, numpy's global RNG is untouched). ``cv`` is 0.
    """

    rate: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", _check_rate(self.rate))

    @property
    def cv(self) -> float:  # type: ignore[override]
        return 0.0

    def generate_arrivals(self, start: float, duration: float, seed: int = 0) -> np.ndarray:
        start, duration = _check_window(start, duration)
        end = start + duration
        interval = 1.0 / self.rate
        # One extra candidate guards against rounding in duration * rate; filter exactly.
        n = int(math.ceil(duration * self.rate)) + 1
        ticks = start + np.arange(n, dtype=np.float64) * interval
        return np.ascontiguousarray(ticks[ticks < end])


# ----------------------------------------------------------------------------- rate splits

def uniform_rates(total: float, n: int) -> np.ndarray:
    """``n`` equal rates ``total / n`` (req/s)."""
    if n <= 0:
        raise ValueError(f"n must be >= 1, got {n}")
    return np.full(n, float(total) / n, dtype=np.float64)


def power_law_rates(total: float, n: int, exponent: float = 0.5) -> np.ndarray:
    """Rates ``(total / S) * (i+1)**-exponent`` (req/s), ``S = sum_j (j+1)**-exponent``.

    S is accumulated in index order with Python float64 additions and the rates are formed in
    exactly this order of operations: another algebraically equal form rounds differently and
    changes the generated arrivals (DESIGN 4.1).
    """
    if n <= 0:
        raise ValueError(f"n must be >= 1, got {n}")
    total = float(total)
    s = 0.0
    for j in range(n):
        s += (j + 1) ** -exponent
    return np.array([(total / s) * (i + 1) ** -exponent for i in range(n)], dtype=np.float64)


def weighted_rates(total: float, weights: Sequence[float]) -> np.ndarray:
    """Rates ``w_i / sum(w) * total`` (req/s); the sum is taken in list order."""
    ws = [float(w) for w in weights]
    if not ws:
        raise ValueError("weights must not be empty")
    if any((not math.isfinite(w)) or w < 0 for w in ws):
        raise ValueError(f"weights must be finite and >= 0, got {ws}")
    s = 0.0
    for w in ws:
        s += w
    if s <= 0:
        raise ValueError("weights must not all be 0")
    return np.array([w / s * float(total) for w in ws], dtype=np.float64)
