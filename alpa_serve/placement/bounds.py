"""Upper bounds on what any placement of a search case's models on d devices can score.

mp-search-sep solves two or more mp-search sub-problems for every device split it keeps and
keeps the split with the highest score. A split whose score provably stays below a score
already reached cannot win (nor tie), so it need not be solved: skipping it returns the same
placement (DESIGN 6's result is unchanged; docs/placement.md, "Speed-ups").

Two bounds, both valid for every placement the search can build on d devices:

* **Good requests (work conservation).** A good request of model m served by a group (1, op,
  pp) keeps stage k's op devices busy for its stage latency L_k, inside [arrival, arrival +
  SLO], and a stage's busy intervals never overlap (the simulator's recurrence starts a
  request at a stage only after the previous one left it). So the good requests arriving in
  a window [a, a + T) use at most d (T + max SLO) device-seconds, each at least W_m = min over
  the usable configurations of op * sum_k L_k (usable: in the profile, within the memory
  budget, and fast enough for m's SLO on idle devices). The most requests that fit is the
  cheapest-first count; summing it over the windows of one window length T and taking the
  smallest total over several T gives the bound.
* **Replicas (memory).** A group holds models whose largest stage weights sum to at most the
  budget, so at most the count of the smallest weights that fit, and at most one replica of
  each model.

The score (goodput - latency_mean / 1e4 + replicas / 1e6) is then at most good / total +
replicas / 1e6 (the latency term is never positive).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from alpa_serve.placement.search_case import SearchCase
from alpa_serve.profiling import ParallelConfig
from alpa_serve.simulator.kernels import FIXED_OVERHEAD

#: Window lengths (seconds) of the good-request bound; the smallest total over them is used.
#: Short windows see bursts, long ones the daily peak.
WINDOW_LENGTHS = (1.0, 10.0, 60.0, 600.0, 3600.0)

#: Relative slack against float rounding, always in the direction of a larger bound.
_SLACK = 1e-6


class ScoreBounds:
    """Upper bounds for one search case (its models, training workload and memory budget).

    The per-window request counts are built once per window length and shared by every
    device count asked for.
    """

    def __init__(self, case: SearchCase,
                 window_lengths: Sequence[float] = WINDOW_LENGTHS) -> None:
        if not window_lengths or min(window_lengths) <= 0:
            raise ValueError(f"window lengths must be positive seconds, got {window_lengths!r}")
        self.case = case
        tables = case.tables
        keep = tables.model_ids >= 0
        self._arrivals = tables.arrivals[keep]
        self._models = tables.model_ids[keep].astype(np.int64)
        slos = tables.slos[keep].astype(np.float64)
        m = case.num_models
        #: Largest SLO (s) of each model's requests (-inf for a model without requests).
        self.model_slo = np.full(m, -np.inf)
        np.maximum.at(self.model_slo, self._models, slos)
        self.max_slo = float(slos.max()) if slos.size else 0.0
        self.window_lengths = tuple(float(t) for t in window_lengths)
        self._counts: dict[float, np.ndarray] = {}
        # Per window length, the cumulative tables of the last work vector asked for (the
        # work vector changes only when the device count admits new configurations, and a
        # day of 1-s windows makes each table ~40 MB, so older ones are not kept).
        self._cumulative: dict[float, tuple[bytes, np.ndarray, np.ndarray, np.ndarray]] = {}

    # ------------------------------------------------------------------ good requests

    def work_per_request(self, configs: Sequence[ParallelConfig]) -> np.ndarray:
        """float64[M]: the least device-seconds a good request of each model can take under
        ``configs`` (op * the sum of its stage latencies, the simulator's float32 values);
        inf where no configuration is usable (missing, over the budget, or slower than the
        model's SLO on idle devices)."""
        case = self.case
        work = np.full(case.num_models, np.inf)
        for cfg in configs:
            weights = case.weights(cfg)
            for m in range(case.num_models):
                if not weights[m] <= case.mem_budget:
                    continue
                lat = case.tables.stage_latencies(m, cfg)
                if lat is None:
                    continue
                total = float(np.sum(lat, dtype=np.float64))
                if total + FIXED_OVERHEAD > self.model_slo[m] + _SLACK:
                    continue
                work[m] = min(work[m], cfg.op * total * (1 - _SLACK))
        return work

    def _window_counts(self, length: float) -> np.ndarray:
        """int64[windows, M]: requests per (window of ``length`` s from the earliest arrival,
        model)."""
        counts = self._counts.get(length)
        if counts is None:
            m = self.case.num_models
            if self._arrivals.size == 0:
                counts = np.zeros((0, m), dtype=np.int64)
            else:
                win = ((self._arrivals - self._arrivals.min()) // length).astype(np.int64)
                num = int(win.max()) + 1
                counts = np.bincount(win * m + self._models, minlength=num * m
                                     ).reshape(num, m)
            self._counts[length] = counts
        return counts

    def good_requests(self, configs: Sequence[ParallelConfig], num_devices: int) -> int:
        """Upper bound on the good requests of any placement on ``num_devices`` devices whose
        groups use only ``configs``."""
        work = self.work_per_request(configs)
        usable = np.flatnonzero(np.isfinite(work))
        if usable.size == 0 or self._arrivals.size == 0:
            return 0
        usable = usable[np.argsort(work[usable], kind="stable")]
        w = work[usable]
        totals = []
        for length in self.window_lengths:
            key = w.tobytes() + usable.tobytes()
            cached = self._cumulative.get(length)
            if cached is None or cached[0] != key:
                counts = self._window_counts(length)[:, usable]
                cached = (key, counts, np.cumsum(counts * w, axis=1), np.cumsum(counts, axis=1))
                self._cumulative[length] = cached
            _, counts, cum_work, cum_num = cached
            capacity = num_devices * (length + self.max_slo) * (1 + _SLACK)
            # Cheapest first: models 0..j-1 (in work order) fit whole, model j partly.
            j = np.sum(cum_work <= capacity, axis=1)
            rows = np.arange(len(j))
            whole = np.where(j > 0, cum_num[rows, np.maximum(j - 1, 0)], 0)
            spent = np.where(j > 0, cum_work[rows, np.maximum(j - 1, 0)], 0.0)
            part = np.zeros(len(j), dtype=np.int64)
            partial = j < len(usable)
            if partial.any():
                jj = j[partial]
                extra = np.floor((capacity - spent[partial]) / w[jj] + _SLACK).astype(np.int64)
                part[partial] = np.minimum(extra, counts[rows[partial], jj])
            totals.append(int(np.sum(whole) + np.sum(part)))
        return min(totals)

    # ------------------------------------------------------------------ replicas

    def replicas(self, partitions: Sequence[Sequence[ParallelConfig]]) -> int:
        """Upper bound on the replicas of any placement whose groups are one of
        ``partitions`` (lists of group configurations)."""
        case = self.case
        per_config: dict[ParallelConfig, int] = {}
        for cfg in {c for part in partitions for c in part}:
            weights = np.sort(case.weights(cfg))
            fits = np.cumsum(weights) <= case.mem_budget * (1 + _SLACK)
            per_config[cfg] = int(np.count_nonzero(fits))
        return max((sum(per_config[c] for c in part) for part in partitions), default=0)


__all__ = ["ScoreBounds", "WINDOW_LENGTHS"]
