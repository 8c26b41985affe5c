"""Run one case: workload -> placement -> simulation -> TSV row (DESIGN 4.1, 7.3).

``run_case(case, db)`` is the one code path every suite and every runner mode
uses. It is split in two steps so the runner can share work between cases:

* :func:`prepare_inputs` builds what depends only on the workload part of a case
  (the test workload's arrivals and model ids, the training workload, the
  per-model rate/CV of the ModelDatas). Cases that differ only in policy,
  number of devices or SLO scale share it (see :func:`inputs_key`).
* :func:`simulate_prepared` applies the case's SLOs, runs the policy and the
  simulator; :func:`result_row` reduces the :class:`CaseResult` to the row
  (:func:`run_prepared` does both). :func:`simulate_case` keeps the result for callers
  that need per-request output (the Section 3 figures).

Units: seconds, bytes, requests per second.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, overload

import numpy as np

from alpa_serve import placement as placement_pkg  # get_policy looked up at each call
from alpa_serve.experiments import trace_inputs as trace_adapter
from alpa_serve.experiments.cases import Case, SyntheticWorkload, TraceWorkload
from alpa_serve.experiments.fast_search import fast_training_workload
from alpa_serve.model_sets import (
    PUBLISHED_SLO_BASES as PUBLISHED_SLO_BASES,  # re-exported (their home: model_sets)
    default_database,
    slo_base,
)
from alpa_serve.placement import ClusterEnv, ModelData, ModelPlacement, Placement
from alpa_serve.placement.executors import RayExecutor
from alpa_serve.placement.subproblems import DirectoryStore
from alpa_serve.profiling import ModelProfile, ProfilingDatabase
from alpa_serve.simulator import SimStats, simulate
from alpa_serve.workload import GammaProcess, Workload, power_law_rates, uniform_rates

logger = logging.getLogger(__name__)

#: Loaded traces (or handles of their caches) by source name, shared by the cases of a run.
Traces = Mapping[str, trace_adapter.TraceSource]


@dataclass(frozen=True)
class CaseInputs:
    """Workload-derived inputs of a case, independent of policy, devices and SLO.

    Attributes:
        test_workload: the evaluated requests (SLO column still to be set per case).
        train_workload: the requests the policy places on; ``None`` lets the policy
            generate its own from the ModelDatas with ``train_seed``.
        train_seed: seed of a policy-generated training workload.
        rates: per-model ModelData rate (requests/s).
        cvs: per-model ModelData CV.
    """

    test_workload: Workload
    train_workload: Optional[Workload]
    train_seed: int
    rates: tuple[float, ...]
    cvs: tuple[float, ...]


def inputs_key(case: Case) -> str:
    """Key of the inputs :func:`prepare_inputs` builds for ``case``.

    Cases with equal keys have identical :class:`CaseInputs`: the key covers the
    model names (hence their number) and the workload spec, not the model types
    (S1 and S2 share their workloads), the policy, the devices, the SLO scale or
    the memory budget: SLOs are applied per case by :func:`run_prepared`.
    """
    data = case.to_json_dict()
    key = {"model_names": case.model_names, "workload": data["workload"]}
    return json.dumps(key, sort_keys=True, separators=(",", ":"))


def _synthetic_inputs(case: Case, spec: SyntheticWorkload) -> CaseInputs:
    m = case.num_models
    names = case.model_names
    if spec.rate_dist == "shares":
        rates = [spec.total_rate * share for share in spec.rate_shares]
    else:
        rate_fn = power_law_rates if spec.rate_dist == "power_law" else uniform_rates
        rates = [float(r) for r in rate_fn(spec.total_rate, m)]
    # Model i: Gamma(rate_i, cv) with seed i from time 0; SLO filled in per case.
    parts = [GammaProcess(rates[i], spec.cv).generate_workload(i, 0.0, spec.duration, 0.0,
                                                               seed=i, model_names=names)
             for i in range(m)]
    test = Workload.merge(*parts)  # one merge over all models (DESIGN 4.1)
    if spec.train_workload == "test":
        train = test
    else:
        train = None
    return CaseInputs(test_workload=test, train_workload=train, train_seed=spec.train_seed,
                      rates=tuple(rates), cvs=tuple(float(spec.cv) for _ in range(m)))


def _trace_inputs(case: Case, spec: TraceWorkload, traces: Optional[Traces]) -> CaseInputs:
    trace = trace_adapter.get_trace(spec.source, traces)
    test = trace_adapter.replay(trace, case, spec.test_window)
    if spec.train_window is None or tuple(spec.train_window) == tuple(spec.test_window):
        train = test
    else:
        train = trace_adapter.replay(trace, case, spec.train_window)
    return CaseInputs(test_workload=test.workload, train_workload=train.workload,
                      train_seed=0, rates=tuple(test.rates), cvs=tuple(test.cvs))


def prepare_inputs(case: Case, traces: Optional[Traces] = None) -> CaseInputs:
    """Build the workload-derived inputs of ``case`` (shared by cases with equal
    :func:`inputs_key`).

    ``traces`` maps a trace source name to a loaded trace (the runner shares them
    through Ray's object store); missing ones are loaded (and cached per process).
    """
    if isinstance(case.workload, SyntheticWorkload):
        return _synthetic_inputs(case, case.workload)
    return _trace_inputs(case, case.workload, traces)


@overload
def with_slos(workload: Workload, slos: np.ndarray) -> Workload: ...


@overload
def with_slos(workload: None, slos: np.ndarray) -> None: ...


def with_slos(workload: Optional[Workload], slos: np.ndarray) -> Optional[Workload]:
    """``workload`` with request SLOs set from the per-model ``slos`` (s); None stays None."""
    if workload is None:
        return None
    ids = workload.model_ids
    req_slos = np.where(ids >= 0, slos[np.maximum(ids, 0)], 0.0).astype(np.float64)
    return Workload(workload.arrivals, ids, req_slos, workload.model_names)


def _compact_json(text: str) -> str:
    return json.dumps(json.loads(text), separators=(",", ":"), sort_keys=False)


def _float(x: Any) -> float:
    return float(x) if x is not None else float("nan")


def case_models(case: Case, db: ProfilingDatabase) -> tuple[list[ModelProfile], np.ndarray]:
    """Profile (model i -> ``profiles[i]``) and SLO (s, float64[M]) of every model of ``case``:
    SLO = ``case.slo_scale`` x :func:`slo_base` of the model's type."""
    types = case.model_types
    type_profiles = {t: db.get(t) for t in dict.fromkeys(types)}
    profiles = [type_profiles[t] for t in types]
    slo_of_type = {t: case.slo_scale * slo_base(p) for t, p in type_profiles.items()}
    slos = np.array([slo_of_type[t] for t in types], dtype=np.float64)
    return profiles, slos


@dataclass(frozen=True)
class SearchResources:
    """Where a case's policy runs its greedy searches and keeps solved sub-problems (never
    changes a row, apart from ``solver_seconds``).

    Attributes:
        split: run the independent greedy searches of the case as Ray tasks (the process
            must be connected to Ray, e.g. a Ray worker); else in this process.
        subproblem_dir: folder where mp-search-sep keeps solved (cluster, devices)
            sub-problems by content, so the cases of a device sweep share them; None: none
            are kept.
    """

    split: bool = False
    subproblem_dir: Optional[str] = None

    def policy_options(self) -> dict[str, Any]:
        """Keyword arguments for ``get_policy``."""
        return {"executor": RayExecutor() if self.split else None,
                "subproblem_store": (CacheStore(self.subproblem_dir)
                                     if self.subproblem_dir else None)}


class CacheStore:
    """The sub-problem folder as a cache that never fails a case: a result that cannot be
    read counts as missing (as in ``DirectoryStore``), one that cannot be written (disk full,
    the folder not a folder) is skipped with a warning; the case then solves or keeps going
    without it (same row)."""

    def __init__(self, path: str) -> None:
        self._store = DirectoryStore(path)
        self._warned = False

    def get(self, key: str) -> Optional[tuple[ModelPlacement, float]]:
        """The stored (placement, score) of ``key``, or None."""
        try:
            return self._store.get(key)
        except OSError:
            return None

    def put(self, key: str, placement: ModelPlacement, score: float) -> None:
        """Store the result of ``key`` if possible."""
        try:
            self._store.put(key, placement, score)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("cannot keep solved sub-problems in %s (%s); this case goes on "
                               "without storing them (same rows, later cases may solve them "
                               "again)", self._store.path, exc.strerror or exc)


@dataclass(frozen=True)
class CaseResult:
    """What one simulated case produced, before it is reduced to a row.

    Attributes:
        placement: the policy's placement.
        stats: the simulator's warm-up-trimmed statistics of ``workload`` (per request:
            ``stats.finish``, ``stats.good``; ``stats.trim`` selects the trimmed requests).
        workload: the evaluated requests, with their SLOs (s).
        solver_seconds: wall time (s) of the policy's placement.
    """

    placement: Placement
    stats: SimStats
    workload: Workload
    solver_seconds: float

    def good_latencies(self) -> np.ndarray:
        """Latencies (s) of the good requests inside the warm-up trim window (DESIGN 5.2)."""
        trim = self.stats.trim
        latency = self.stats.finish[trim] - self.workload.arrivals[trim]
        return latency[self.stats.good[trim]]


def simulate_prepared(case: Case, db: ProfilingDatabase, inputs: CaseInputs,
                      resources: SearchResources = SearchResources()) -> CaseResult:
    """Apply ``case``'s SLOs to its prepared ``inputs`` (see :func:`prepare_inputs`), run its
    policy and simulate the placement (DESIGN 4.2, 6, 5). A fast case's search policy trains on
    :func:`~alpa_serve.experiments.fast_search.fast_training_workload` (DESIGN 7.8);
    ``solver_seconds`` times the search on it."""
    names = case.model_names
    profiles, slos = case_models(case, db)

    test = with_slos(inputs.test_workload, slos)
    train: Optional[Workload]
    if inputs.train_workload is inputs.test_workload:
        train = test
    else:
        train = with_slos(inputs.train_workload, slos)
    if train is not None:
        # The opt-in fast search (DESIGN 7.8): the search policies of a fast trace case train
        # on a reduced day; the test workload is never reduced.
        train = fast_training_workload(case, train)

    model_datas = [ModelData(name=names[i], slo=float(slos[i]), rate=float(inputs.rates[i]),
                             cv=float(inputs.cvs[i]), profile=profiles[i])
                   for i in range(case.num_models)]
    env = ClusterEnv(num_devices=case.num_devices, mem_budget=case.mem_budget)
    policy = placement_pkg.get_policy(case.policy, **resources.policy_options())

    t0 = time.perf_counter()
    placement = policy.place(model_datas, env, train_workload=train,
                             train_seed=inputs.train_seed)
    solver_seconds = time.perf_counter() - t0

    stats = simulate(placement, profiles, test)
    return CaseResult(placement, stats, test, solver_seconds)


def result_row(case: Case, db: ProfilingDatabase, result: CaseResult) -> dict[str, Any]:
    """The TSV row of ``case`` (DESIGN 7.3 columns plus ``case_id``) from its ``result``."""
    stats = result.stats
    row = case.to_row_fields()
    row.update(
        goodput=float(np.round(np.float64(stats.goodput), 3)),
        latency_mean=_float(stats.latency_mean),
        latency_p99=_float(stats.latency_p99),
        num_requests=int(stats.num_requests),
        solver_seconds=round(result.solver_seconds, 4),
        placement=_compact_json(result.placement.to_json()),
        profile=profile_fingerprint(case, db),
        case_id=case.case_id,
    )
    logger.debug("finished %s: goodput %.3f", case.describe(), row["goodput"])
    return row


def run_prepared(case: Case, db: ProfilingDatabase, inputs: CaseInputs,
                 resources: SearchResources = SearchResources()) -> dict[str, Any]:
    """Run ``case`` on prepared ``inputs`` (see :func:`prepare_inputs`) and return its row."""
    return result_row(case, db, simulate_prepared(case, db, inputs, resources))


def profile_fingerprint(case: Case, db: ProfilingDatabase) -> str:
    """The ``profile`` column of ``case``'s row: the fingerprint of the profiles of the model
    types the case uses (a change elsewhere in the database leaves its rows valid)."""
    return db.fingerprint(case.model_types)


def run_case(case: Case, db: Optional[ProfilingDatabase] = None,
             traces: Optional[Traces] = None,
             resources: SearchResources = SearchResources()) -> dict[str, Any]:
    """Run one case and return its TSV row (DESIGN 7.3 columns plus ``case_id``).

    Args:
        case: the case.
        db: the profiling database (default: ``ProfilingDatabase.default()``, loaded
            once per process).
        traces: loaded traces by source name (optional; loaded on demand).
        resources: where the policy's searches run (see :class:`SearchResources`).
    """
    if db is None:
        db = default_database()
    return result_row(case, db, simulate_case(case, db, traces, resources))


def simulate_case(case: Case, db: Optional[ProfilingDatabase] = None,
                  traces: Optional[Traces] = None,
                  resources: SearchResources = SearchResources()) -> CaseResult:
    """Run one case and return its :class:`CaseResult` (placement, per-request statistics
    and workload) instead of the row; arguments as :func:`run_case`."""
    if db is None:
        db = default_database()
    return simulate_prepared(case, db, prepare_inputs(case, traces), resources)
