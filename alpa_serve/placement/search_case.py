"""The search case: what every search policy's greedy runs share (DESIGN 6).

A :class:`SearchCase` holds one (model set, training workload, budget): the models' profiles,
a per-config table of model weights and the simulator's
:class:`~alpa_serve.simulator.SimTables` of the training workload. It is built once per case
(and once per cluster in mp-search-sep) and reused across all candidates and all greedy steps,
so the static tables are never rebuilt inside the search.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, get_args

import numpy as np

from alpa_serve.placement_types import ModelPlacement, Placement
from alpa_serve.profiling import ModelProfile, ParallelConfig
from alpa_serve.simulator import SimTables
from alpa_serve.simulator.stats import FastStats
from alpa_serve.workload.workload import SortKind, Workload

#: numpy argsort kinds accepted for tie-breaking. "stable" is our default (DESIGN 6);
#: "quicksort" is numpy's default kind, as used by the published code.
ARGSORT_KINDS: tuple[SortKind, ...] = get_args(SortKind)


class SearchCase:
    """Everything the search needs about one (model set, training workload, budget).

    profiles: ModelProfile per model (model i = workload model id i).
    tables: SimTables of the training workload, built once and shared by all candidates.
    mem_budget: bytes per device.
    argsort_kind: numpy argsort kind used for every tie-breaking sort.
    """

    def __init__(self, profiles: Sequence[ModelProfile], workload: Workload, mem_budget: float,
                 argsort_kind: SortKind = "stable", tables: Optional[SimTables] = None) -> None:
        self.profiles = list(profiles)
        self.num_models = len(self.profiles)
        self.workload = workload
        self.mem_budget = float(mem_budget)
        self.argsort_kind = argsort_kind
        self.tables = tables if tables is not None else SimTables(self.profiles, workload)
        self._weights: dict[ParallelConfig, np.ndarray] = {}
        self._weight_lists: dict[ParallelConfig, list[float]] = {}

    def weights(self, cfg: ParallelConfig) -> np.ndarray:
        """float64[M]: each model's largest stage weight (bytes) under ``cfg``; inf if missing."""
        w = self._weights.get(cfg)
        if w is None:
            w = np.array([p.max_stage_weight(cfg) for p in self.profiles], dtype=np.float64)
            w.setflags(write=False)
            self._weights[cfg] = w
        return w

    def weight_list(self, cfg: ParallelConfig) -> list[float]:
        """:meth:`weights` as a list of Python floats (cheap scalar access in sums)."""
        w = self._weight_lists.get(cfg)
        if w is None:
            w = self._weight_lists[cfg] = [float(x) for x in self.weights(cfg)]
        return w

    def simulate(self, placement: Placement) -> FastStats:
        """Fast (untrimmed) statistics of ``placement`` on the training workload."""
        return self.tables.simulate_fast(placement)

    def argsort(self, values: np.ndarray) -> np.ndarray:
        """argsort with this case's tie-breaking kind."""
        return np.argsort(values, kind=self.argsort_kind)


def empty_placement(configs: Iterable[ParallelConfig]) -> ModelPlacement:
    """A placement with the given groups and no model on any of them."""
    configs = tuple(configs)
    return ModelPlacement(configs, tuple(() for _ in configs))


__all__ = ["ARGSORT_KINDS", "SearchCase", "empty_placement"]
