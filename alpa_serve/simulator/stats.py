"""Statistics of a simulation (DESIGN 5.2): trimmed reported statistics and fast search ones.

All times are seconds. Latency of a request = finish - arrival for good requests, 0 for failed
ones (the kernels set finish = arrival for them, so finish - arrival is exactly 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

#: Seconds trimmed at each end of the workload (warm-up / cool-down) in reported statistics.
WARMUP_SECONDS = 10.0

#: Added to per-model request counts in the fast per-model goodput (published formula).
_MODEL_GOODPUT_EPS = 1e-6


@dataclass(frozen=True)
class FastStats:
    """Untrimmed statistics used to score placements during search.

    goodput: good requests / all requests (unknown-model requests included).
    latency_mean: mean over all requests of the latency in seconds (0 for failed ones).
    model_num, model_good: int64[M] requests and good requests per model.
    model_goodput: float64[M], model_good / (model_num + 1e-6).
    group_num: int64[G] requests sent to each group, rejected ones included.
    num_replicas: replicas of the placement (largest over windows for a replacement placement).
    score: goodput - latency_mean / 1e4 + num_replicas / 1e6 (DESIGN 6).
    """

    goodput: float
    latency_mean: float
    num_requests: int
    num_good: int
    model_num: np.ndarray
    model_good: np.ndarray
    model_goodput: np.ndarray
    group_num: np.ndarray
    num_replicas: int
    score: float

    @classmethod
    def from_counts(cls, num_good: int, latency_sum: float, num_requests: int,
                    model_num: np.ndarray, model_good: np.ndarray, group_num: np.ndarray,
                    num_replicas: int) -> "FastStats":
        """Build from the kernel's aggregates (latency_sum: seconds, summed in arrival order)."""
        goodput = num_good / num_requests
        latency_mean = latency_sum / num_requests
        model_goodput = model_good / (model_num + _MODEL_GOODPUT_EPS)
        score = goodput - latency_mean / 10000 + num_replicas / 1e6
        return cls(goodput=float(goodput), latency_mean=float(latency_mean),
                   num_requests=int(num_requests), num_good=int(num_good),
                   model_num=model_num, model_good=model_good, model_goodput=model_goodput,
                   group_num=group_num, num_replicas=int(num_replicas), score=float(score))


@dataclass(frozen=True)
class ModelStats:
    """Trimmed statistics of one model (requests inside the overall trim window).

    goodput is NaN when the model has no request in the window; latencies (seconds) are over
    good requests only and are 0 when there is none.
    """

    model_id: int
    name: str
    num_requests: int
    num_good: int
    goodput: float
    latency_mean: float
    latency_p90: float
    latency_p99: float


@dataclass(frozen=True)
class SimStats:
    """Reported (trimmed) statistics of a simulation.

    goodput: fraction of good requests in the trim window (SLO attainment).
    latency_mean: mean latency (s) over the trimmed requests, 0 for failed ones.
    latency_p99: 99th percentile (linear interpolation) of good trimmed latencies; NaN if none.
    num_requests: requests in the trim window.
    per_model: one ModelStats per case model.
    group_num: int64[G] requests per group over the whole workload (not trimmed).
    finish: float64[n] finish times (s), = arrival for failed requests; good: bool[n].
    trim: the slice of request indices the trimmed statistics use.
    """

    goodput: float
    latency_mean: float
    latency_p99: float
    num_requests: int
    per_model: list[ModelStats]
    group_num: np.ndarray
    finish: np.ndarray = field(repr=False)
    good: np.ndarray = field(repr=False)
    trim: slice


def trim_slice(arrivals: np.ndarray, warmup: float = WARMUP_SECONDS) -> slice:
    """Requests kept by the warm-up/cool-down trimming of DESIGN 5.2.

    skip = int(warmup / (last - first) * N); skip requests are dropped at each end if skip > 0,
    N > 1 and 2 * skip < N. All arrivals equal (span 0) means an unbounded skip: no trimming.
    """
    n = len(arrivals)
    if n <= 1:
        return slice(0, n)
    span = float(arrivals[-1]) - float(arrivals[0])
    if span <= 0:
        return slice(0, n)
    ratio = warmup / span * n
    if not math.isfinite(ratio):  # a tiny span can overflow to inf: skip would cover everything
        return slice(0, n)
    skip = int(ratio)
    if skip <= 0 or 2 * skip >= n:
        return slice(0, n)
    return slice(skip, n - skip)


def _order_stat(sorted_vals: np.ndarray, q: float) -> float:
    """Element int(q * n) of sorted values (published percentile rule); 0 if empty."""
    n = len(sorted_vals)
    if n == 0:
        return 0.0
    return float(sorted_vals[int(q * n)])


def compute_stats(arrivals: np.ndarray, model_ids: np.ndarray, finish: np.ndarray,
                  good: np.ndarray, group_num: np.ndarray,
                  model_names: Sequence[str]) -> SimStats:
    """Trimmed statistics from per-request results (DESIGN 5.2).

    Raises ValueError on an empty workload (goodput would be NaN).
    """
    n = len(arrivals)
    if n == 0:
        raise ValueError("cannot compute statistics of an empty workload (goodput is NaN)")
    trim = trim_slice(arrivals)
    t_good = good[trim]
    t_lat = finish[trim] - arrivals[trim]  # exactly 0 for failed requests
    t_ids = model_ids[trim]
    goodput = float(np.mean(t_good))
    latency_mean = float(np.mean(t_lat))
    good_lat = t_lat[t_good]
    latency_p99 = float(np.percentile(good_lat, 99)) if len(good_lat) else math.nan

    per_model = []
    for m, name in enumerate(model_names):
        mask = t_ids == m
        num = int(np.count_nonzero(mask))
        lat_m = np.sort(t_lat[mask & t_good])
        num_good = len(lat_m)
        per_model.append(ModelStats(
            model_id=m, name=str(name), num_requests=num, num_good=num_good,
            goodput=num_good / num if num else math.nan,
            latency_mean=float(np.mean(lat_m)) if num_good else 0.0,
            latency_p90=_order_stat(lat_m, 0.90),
            latency_p99=_order_stat(lat_m, 0.99)))
    return SimStats(goodput=goodput, latency_mean=latency_mean, latency_p99=latency_p99,
                    num_requests=len(t_good), per_model=per_model, group_num=group_num,
                    finish=finish, good=good, trim=trim)
