"""Policy base class, training-workload generation and the fast greedy (DESIGN 4.1, 6).

The search score (goodput - mean latency / 1e4 + replicas / 1e6) is ``FastStats.score`` of the
simulator; candidates are compared on it with strict ``>``.

Every search policy works on one :class:`SearchCase`: the case's profiles, a per-config table of
model weights and the simulator's :class:`~alpa_serve.simulator.SimTables` of the training
workload. The case is built once per (models, workload) and reused across all candidates and all
greedy steps, so that the static tables are never rebuilt inside the search.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
import logging
import math
import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

from alpa_serve.placement.types import (
    ClusterEnv,
    ModelData,
    ModelPlacement,
    Placement,
    normalization_order,
)
from alpa_serve.profiling import ModelProfile, ParallelConfig
from alpa_serve.simulator import SimTables
from alpa_serve.simulator.kernels import merge_sorted
from alpa_serve.simulator.stats import FastStats
from alpa_serve.workload import GammaProcess, Workload

logger = logging.getLogger(__name__)

#: Training workload length (DESIGN 4.1): at least this many seconds ...
TRAIN_MIN_DURATION = 100.0
#: ... and long enough for about this many requests at the models' summed rate.
TRAIN_MIN_SAMPLES = 30000.0

#: numpy argsort kinds accepted for tie-breaking. "stable" is our default (DESIGN 6);
#: "quicksort" is numpy's default kind, as used by the published code.
ARGSORT_KINDS = ("stable", "quicksort", "mergesort", "heapsort")

SINGLE_DEVICE = ParallelConfig(1, 1, 1)


# ------------------------------------------------------------------------------------------
# Training workload
# ------------------------------------------------------------------------------------------
def workload_model_names(model_datas: Sequence[ModelData]) -> list[str]:
    """Model names for a case's workload: the ModelData names when they are unique, otherwise
    ``"<name>#<index>"`` (a workload needs unique names; cases often repeat a model type)."""
    names = [d.name for d in model_datas]
    if len(set(names)) == len(names):
        return names
    return [f"{n}#{i}" for i, n in enumerate(names)]


def train_duration(model_datas: Sequence[ModelData]) -> float:
    """Duration (s) of the generated training workload: max(100 s, 30000 / sum of rates)."""
    total_rate = sum(d.rate for d in model_datas)
    if not total_rate > 0:
        raise ValueError(f"cannot generate a training workload: the models' summed rate is "
                         f"{total_rate} req/s; give every model a positive rate or pass "
                         f"train_workload")
    return max(TRAIN_MIN_DURATION, TRAIN_MIN_SAMPLES / total_rate)


def generate_train_workload(model_datas: Sequence[ModelData], train_seed: int = 0) -> Workload:
    """The training workload a policy generates when none is given (DESIGN 4.1).

    Model i: GammaProcess(rate_i, cv_i) from time 0 over :func:`train_duration` seconds with seed
    ``train_seed + i`` and SLO ``slo_i``; all models merged in ONE Workload.merge call (numpy's
    default argsort, as published, so ties among identical arrivals are ordered as there).
    """
    duration = train_duration(model_datas)
    names = workload_model_names(model_datas)
    ws = [GammaProcess(d.rate, d.cv).generate_workload(i, 0.0, duration, d.slo,
                                                        seed=int(train_seed) + i,
                                                        model_names=names)
          for i, d in enumerate(model_datas)]
    return Workload.merge(*ws)


# ------------------------------------------------------------------------------------------
# Search case: profiles, weight tables, simulator tables
# ------------------------------------------------------------------------------------------
class SearchCase:
    """Everything the search needs about one (model set, training workload, budget).

    profiles: ModelProfile per model (model i = workload model id i).
    tables: SimTables of the training workload, built once and shared by all candidates.
    mem_budget: bytes per device.
    argsort_kind: numpy argsort kind used for every tie-breaking sort.
    """

    def __init__(self, profiles: Sequence[ModelProfile], workload: Workload, mem_budget: float,
                 argsort_kind: str = "stable", tables: Optional[SimTables] = None) -> None:
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


# ------------------------------------------------------------------------------------------
# Fast greedy replica placement
# ------------------------------------------------------------------------------------------
def _group_used(case: SearchCase, cfg: ParallelConfig, models: Sequence[int]) -> float:
    """Memory (bytes) of a group: its models' largest stage weights summed in group order
    (the order of a Python ``sum``, so float rounding matches a plain recomputation)."""
    w = case.weight_list(cfg)
    return sum(w[m] for m in models)


def fast_greedy(init: ModelPlacement, case: SearchCase, incremental: bool = True
                ) -> tuple[ModelPlacement, FastStats]:
    """Fast greedy replica placement of DESIGN 6, starting from ``init`` (not normalised).

    Repeat: simulate the current placement (fast statistics); unserved_m = n_m * (1 - good_m /
    (n_m + 1e-6)); model order = argsort(unserved) reversed; group order = argsort(group
    requests); take the first (group, model) pair in that order where the model is not on the
    group and fits (group memory + model weight <= budget); add it and normalise. Stop when no
    pair fits.

    incremental: after each addition re-simulate only the connected component (of the
    model-group incidence graph) that received the new replica (see ``_GreedyState``). The
    decisions only use integer counts, which are identical either way; ``False`` runs the plain
    algorithm (a full simulation per step) and exists to test this equivalence.

    Returns the final placement and its fast statistics from a full simulation.
    """
    if init.num_groups == 0 or case.num_models == 0:
        return init, case.simulate(init)
    state = _GreedyState(init, case, track_requests=incremental)
    stats: Optional[FastStats] = None
    if any(init.group_models):
        stats = case.simulate(init)
        state.set_counts(stats)
    else:
        # Nothing placed: every request fails, counts are known without simulating.
        state.set_empty_counts()
    steps = 0
    while True:
        pair = state.choose()
        if pair is None:
            break
        state.add(*pair)
        steps += 1
        if not state.any_fits():
            # Nothing fits any more, so the next check would stop whatever the counts are.
            stats = case.simulate(state.placement())
            break
        if incremental:
            state.resimulate_component(pair[1])
        else:
            stats = case.simulate(state.placement())
            state.set_counts(stats)
    # choose() finds nothing only before the first addition (afterwards any_fits() ends the
    # loop first), so ``stats`` is always the full simulation of the returned placement.
    if stats is None:  # empty start where nothing fits
        stats = case.simulate(init)
    placement = state.placement()
    logger.debug("fast greedy: %d steps, %d groups, score %.6f", steps, init.num_groups,
                 stats.score)
    return placement, stats


class _GreedyState:
    """Bookkeeping of the fast greedy, indexed by group *slot* (a group's identity; slots never
    move, normalisation only changes ``pos2slot``, the slot at each position).

    Per slot: config, sorted model tuple, weight row W[s, m] (bytes), memory used (bytes),
    member[s, m], fits[s, m] (m may be added: not a member and used + W <= budget) and a
    component label. Per model: component label (-1: no replica yet). Counts (requests per
    model and per slot, good requests per model) come from the last simulation.

    Component re-simulation is exact: a request of model m can only be served by a group
    hosting m and only changes that group's free times, so the requests of one connected
    component of the model-group graph are simulated identically whether or not the other
    components' requests are served (they are skipped as models without replicas). Adding
    model m to a group changes only the component that now joins them; every other model's and
    group's counts stay valid. Counts are integers, so the decisions are bit-identical; the
    returned score always comes from a full simulation.
    """

    def __init__(self, init: ModelPlacement, case: SearchCase, track_requests: bool = True
                 ) -> None:
        self.case = case
        # Per component label: increasing index arrays of its models' requests (only these
        # requests are simulated when the component is re-simulated), merged lazily.
        self.track_requests = track_requests
        self.comp_requests: dict[int, list[np.ndarray]] = {}
        self.budget = case.mem_budget
        self.configs = list(init.group_configs)
        # The initial candidate is not normalised: its order is kept until the first addition.
        self.groups = [tuple(int(m) for m in ms) for ms in init.group_models]
        num_groups, num_models = len(self.configs), case.num_models
        self.pos2slot = list(range(num_groups))
        self.W = np.stack([case.weights(c) for c in self.configs])
        self.used = np.array([_group_used(case, c, ms)
                              for c, ms in zip(self.configs, self.groups)])
        self.member = np.zeros((num_groups, num_models), dtype=bool)
        for g, ms in enumerate(self.groups):
            self.member[g, list(ms)] = True
        self.fits = (~self.member) & (self.used[:, None] + self.W <= self.budget)
        self.fits_any = self.fits.any(axis=1)
        self.group_comp = np.arange(num_groups)
        self.model_comp = np.full(num_models, -1)
        for g, ms in enumerate(self.groups):
            for m in ms:
                self._join(g, m)
        self.model_num = self.model_good = self.slot_num = np.zeros(0, dtype=np.int64)

    def set_counts(self, stats: FastStats) -> None:
        """Take all counts from a full simulation of the current placement."""
        self.model_num = np.array(stats.model_num, dtype=np.int64)
        self.model_good = np.array(stats.model_good, dtype=np.int64)
        self.slot_num = np.empty(len(self.pos2slot), dtype=np.int64)
        self.slot_num[self.pos2slot] = stats.group_num

    def set_empty_counts(self) -> None:
        """Counts of a placement with no replica: every request fails, no group gets any."""
        self.model_num = np.array(self.case.tables.model_counts(), dtype=np.int64)
        self.model_good = np.zeros(self.case.num_models, dtype=np.int64)
        self.slot_num = np.zeros(len(self.pos2slot), dtype=np.int64)

    def choose(self) -> Optional[tuple[int, int]]:
        """The (slot, model) pair the greedy adds next, or None when nothing fits."""
        case = self.case
        model_num = self.model_num
        # Exact published formula (float64); fully served models keep ~1e-6 that orders them.
        unserved = model_num * (1 - self.model_good / (model_num + 1e-6))
        model_order = case.argsort(unserved)[::-1]
        pos = np.array(self.pos2slot)
        slot_order = pos[case.argsort(self.slot_num[pos])]
        candidates = self.fits_any[slot_order]
        r = int(np.argmax(candidates))
        if not candidates[r]:
            return None
        slot = int(slot_order[r])
        m = int(model_order[int(np.argmax(self.fits[slot][model_order]))])
        return slot, m

    def add(self, slot: int, m: int) -> None:
        """Add model m to ``slot`` and normalise."""
        self.groups[slot] = self.groups[slot] + (m,)
        order, sorted_groups = normalization_order([self.groups[s] for s in self.pos2slot])
        for p, s in enumerate(self.pos2slot):
            self.groups[s] = sorted_groups[p]
        self.pos2slot = [self.pos2slot[i] for i in order]
        self.member[slot, m] = True
        self.used[slot] = _group_used(self.case, self.configs[slot], self.groups[slot])
        self.fits[slot] = ~self.member[slot] & (self.used[slot] + self.W[slot] <= self.budget)
        self.fits_any[slot] = self.fits[slot].any()
        self._join(slot, m)

    def any_fits(self) -> bool:
        """Whether any (group, model) pair still fits."""
        return bool(self.fits_any.any())

    def placement(self) -> ModelPlacement:
        """The current placement (groups in position order)."""
        return ModelPlacement._trusted(tuple(self.configs[s] for s in self.pos2slot),
                                       tuple(self.groups[s] for s in self.pos2slot))

    def _join(self, slot: int, m: int) -> None:
        """Record a replica of model m on ``slot``: merge their components."""
        label = int(self.group_comp[slot])
        old = int(self.model_comp[m])
        if old >= 0 and old != label:
            self.group_comp[self.group_comp == old] = label
            self.model_comp[self.model_comp == old] = label
            if self.track_requests:
                self.comp_requests.setdefault(label, []).extend(self.comp_requests.pop(old))
        elif old < 0 and self.track_requests:
            self.comp_requests.setdefault(label, []).append(self.case.tables.model_requests(m))
        self.model_comp[m] = label

    def _component_requests(self, label: int) -> Optional[np.ndarray]:
        """Increasing indices of the requests of component ``label``'s models, or None when
        they are at least half of the tables' requests: then the kernel walks all requests
        (skipping another model's request costs ~1.5 ns, merging index lists ~2 ns per
        element; both give identical counts for the component, see simulate_subset)."""
        pieces = self.comp_requests[label]
        if 2 * sum(len(p) for p in pieces) >= self.case.tables.num_requests:
            return None
        if len(pieces) > 1:
            pieces.sort(key=len)
            index = pieces[0]
            for p in pieces[1:]:
                index = merge_sorted(index, p)
            self.comp_requests[label] = pieces = [index]
        return pieces[0]

    def resimulate_component(self, m: int) -> None:
        """Refresh the counts of the component containing model m by simulating it alone."""
        label = self.model_comp[m]
        comp = self.group_comp == label
        # The component's groups in position order: relative order (and so the replica
        # tie-break, lower group index first) is that of the full placement.
        slots = [s for s in self.pos2slot if comp[s]]
        sub = ModelPlacement._trusted(tuple(self.configs[s] for s in slots),
                                      tuple(self.groups[s] for s in slots))
        # Only the component's requests: every other request belongs to a model without a
        # replica in ``sub`` (or to model -1) and would only be counted, not served.
        model_num, model_good, group_num = self.case.tables.simulate_subset(
            sub, self._component_requests(int(label)))
        models = self.model_comp == label
        self.model_num[models] = model_num[models]
        self.model_good[models] = model_good[models]
        self.slot_num[slots] = group_num


# ------------------------------------------------------------------------------------------
# Running many independent greedy searches (optionally in worker processes)
# ------------------------------------------------------------------------------------------
GreedyJob = tuple[SearchCase, tuple[ParallelConfig, ...]]
"""One fast-greedy run: the case and the group configs of its (empty) initial candidate."""

# Jobs of the running batch; forked workers inherit it, so no case is ever pickled.
_FORK_JOBS: Sequence[GreedyJob] = ()


def _run_job(index: int) -> tuple[ModelPlacement, float]:
    case, configs = _FORK_JOBS[index]
    placement, stats = fast_greedy(empty_placement(configs), case)
    return placement, stats.score


def run_greedy_jobs(jobs: Sequence[GreedyJob], num_workers: int = 1
                    ) -> list[tuple[ModelPlacement, float]]:
    """Run the fast greedy for every job; returns (placement, score) per job, in job order.

    num_workers > 1 runs the jobs in that many forked worker processes (each job is
    deterministic, so the results are identical to a serial run). Without the ``fork`` start
    method (e.g. on Windows) the jobs run serially.
    """
    global _FORK_JOBS
    if num_workers <= 1 or len(jobs) <= 1 or "fork" not in mp.get_all_start_methods():
        out = []
        for case, configs in jobs:
            placement, stats = fast_greedy(empty_placement(configs), case)
            out.append((placement, stats.score))
        return out
    # Largest jobs first (more groups and models: longer greedy) for a balanced finish.
    order = sorted(range(len(jobs)),
                   key=lambda i: -len(jobs[i][1]) * jobs[i][0].num_models)
    _FORK_JOBS = jobs
    try:
        with ProcessPoolExecutor(max_workers=num_workers,
                                 mp_context=mp.get_context("fork")) as pool:
            results = list(pool.map(_run_job, order, chunksize=1))
    finally:
        _FORK_JOBS = ()
    out: list = [None] * len(jobs)
    for i, r in zip(order, results):
        out[i] = r
    return out


def first_best(results: Sequence[tuple[ModelPlacement, float]]) -> tuple[ModelPlacement, float]:
    """The first (placement, score) with the highest score (strict > keeps the earliest)."""
    best = results[0]
    for r in results[1:]:
        if r[1] > best[1]:
            best = r
    return best


# ------------------------------------------------------------------------------------------
# Policy base class
# ------------------------------------------------------------------------------------------
@dataclass
class Policy(ABC):
    """A placement policy (DESIGN 6).

    argsort_kind: numpy argsort kind for tie-breaking ("stable" default; "quicksort" = numpy's
    default kind, as in the published runs).
    """

    argsort_kind: str = "stable"
    name: str = field(default="", init=False)
    #: False for policies that ignore the training workload (none is generated for them).
    needs_workload = True

    def __post_init__(self) -> None:
        if self.argsort_kind not in ARGSORT_KINDS:
            raise ValueError(f"argsort_kind must be one of {ARGSORT_KINDS}, got "
                             f"{self.argsort_kind!r}")

    # -- to be provided by subclasses ------------------------------------------------------
    @abstractmethod
    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        """Every group configuration this policy may use on ``cluster_env``."""

    @abstractmethod
    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> Placement:
        """Compute the placement (inputs already validated)."""

    # -- public entry point ----------------------------------------------------------------
    def place(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Optional[Workload] = None, train_seed: int = 0) -> Placement:
        """Place ``model_datas`` on ``cluster_env``.

        train_workload: requests the search scores candidates on (model i = model_datas[i]);
        None generates it from the ModelData rates, CVs and SLOs with ``train_seed``
        (DESIGN 4.1). Raises ValueError for an empty model list, a model that fits none of the
        policy's group configurations within the memory budget, or a training workload over a
        different number of models. The result always passes ``verify``.
        """
        model_datas = list(model_datas)
        if not model_datas:
            raise ValueError(f"{self.name}: the model list is empty; give at least one ModelData")
        if not isinstance(cluster_env, ClusterEnv):
            raise TypeError(f"{self.name}: cluster_env must be a ClusterEnv, got "
                            f"{type(cluster_env).__name__}")
        self.check_fits(model_datas, cluster_env)
        if not self.needs_workload:
            placement = self.solve(model_datas, cluster_env, train_workload)
            placement.verify(model_datas, cluster_env.mem_budget)
            return placement
        if train_workload is None:
            train_workload = generate_train_workload(model_datas, train_seed)
        elif len(train_workload.model_names) != len(model_datas):
            raise ValueError(
                f"{self.name}: the training workload covers {len(train_workload.model_names)} "
                f"models ({train_workload.model_names[:6]}...) but {len(model_datas)} ModelData "
                f"were given; workload model i must be model_datas[i]")
        if len(train_workload) == 0:
            raise ValueError(f"{self.name}: the training workload is empty; the search needs "
                             f"requests to score placements")
        placement = self.solve(model_datas, cluster_env, train_workload)
        placement.verify(model_datas, cluster_env.mem_budget)
        return placement

    def check_fits(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv) -> None:
        """Raise ValueError naming every model that fits none of the policy's configurations."""
        configs = self.candidate_configs(cluster_env)
        budget = cluster_env.mem_budget
        bad = []
        for i, d in enumerate(model_datas):
            best = min((d.profile.max_stage_weight(c) for c in configs), default=math.inf)
            if not best <= budget:
                bad.append(f"model {i} ({d.name}: smallest weight {best:.4g} bytes)")
        if bad:
            cfgs = ", ".join(str(tuple(c)) for c in configs)
            raise ValueError(
                f"{self.name}: {len(bad)} model(s) fit no group configuration within the memory "
                f"budget of {budget:.4g} bytes per device on {cluster_env.num_devices} devices: "
                f"{'; '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}. Configurations this "
                f"policy may use: {cfgs}")

    def make_case(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
                  workload: Workload) -> SearchCase:
        """The SearchCase of a (models, workload) pair with this policy's tie-breaking."""
        return SearchCase([d.profile for d in model_datas], workload, cluster_env.mem_budget,
                          self.argsort_kind)


def binary_parts(n: int) -> list[int]:
    """Powers of two summing to ``n`` (its binary digits), ascending: 6 -> [2, 4]."""
    return [1 << k for k in range(int(n).bit_length()) if n >> k & 1]


__all__ = [
    "ARGSORT_KINDS",
    "first_best",
    "run_greedy_jobs",
    "Policy",
    "SearchCase",
    "binary_parts",
    "empty_placement",
    "fast_greedy",
    "generate_train_workload",
    "train_duration",
    "workload_model_names",
]
