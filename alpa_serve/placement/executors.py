"""Running a batch of independent greedy searches (DESIGN 6): in this process, in forked worker
processes, or as Ray tasks on the Ray instance or cluster this process is connected to.

mp-search and mp-search-sep reduce to many independent fast-greedy runs ("jobs": a search case
and the group configurations of an empty initial candidate). Every job is deterministic, so
the results do not depend on where or in which order the jobs run.
"""
from __future__ import annotations

import logging
import multiprocessing as mp
from abc import ABC, abstractmethod
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from alpa_serve.placement.greedy import fast_greedy
from alpa_serve.placement.search_case import SearchCase, empty_placement
from alpa_serve.placement_types import ModelPlacement
from alpa_serve.profiling import ParallelConfig

if TYPE_CHECKING:
    from ray import ObjectRef

logger = logging.getLogger(__name__)

GreedyJob = tuple[SearchCase, tuple[ParallelConfig, ...]]
"""One fast-greedy run: the case and the group configs of its (empty) initial candidate."""

GreedyResult = tuple[ModelPlacement, float]
"""The placement a greedy run ends with and its search score."""


def run_job(case: SearchCase, configs: Sequence[ParallelConfig]) -> GreedyResult:
    """Run the fast greedy from the empty placement with groups ``configs``."""
    placement, stats = fast_greedy(empty_placement(configs), case)
    return placement, stats.score


def first_best(results: Sequence[GreedyResult]) -> GreedyResult:
    """The first (placement, score) with the highest score (strict > keeps the earliest)."""
    best = results[0]
    for r in results[1:]:
        if r[1] > best[1]:
            best = r
    return best


def largest_first(jobs: Sequence[GreedyJob]) -> list[int]:
    """Job indices with the longest-looking jobs first (more groups and models: a longer
    greedy), so that parallel workers finish together."""
    return sorted(range(len(jobs)), key=lambda i: -len(jobs[i][1]) * jobs[i][0].num_models)


class GreedyExecutor(ABC):
    """Runs a batch of greedy jobs; results in job order."""

    @property
    def parallelism(self) -> int:
        """How many jobs run at once (callers size their batches with it)."""
        return 1

    @abstractmethod
    def run(self, jobs: Sequence[GreedyJob]) -> list[GreedyResult]:
        """Run every job and return their results in job order."""


# Jobs of the batch a forked worker serves: set in each worker by the pool's initializer
# (inherited through fork, never pickled).
_WORKER_JOBS: Sequence[GreedyJob] = ()


def _init_worker(jobs: Sequence[GreedyJob]) -> None:
    global _WORKER_JOBS
    _WORKER_JOBS = jobs


def _run_worker_job(index: int) -> GreedyResult:
    case, configs = _WORKER_JOBS[index]
    return run_job(case, configs)


@dataclass(frozen=True)
class LocalExecutor(GreedyExecutor):
    """In this process (``num_workers`` 1) or in that many forked worker processes. Without
    the ``fork`` start method (e.g. on Windows) the jobs run in this process."""

    num_workers: int = 1

    def __post_init__(self) -> None:
        if int(self.num_workers) != self.num_workers or self.num_workers < 1:
            raise ValueError(f"num_workers must be an integer >= 1, got {self.num_workers!r}")

    @property
    def parallelism(self) -> int:
        return int(self.num_workers)

    def run(self, jobs: Sequence[GreedyJob]) -> list[GreedyResult]:
        if (self.num_workers <= 1 or len(jobs) <= 1
                or "fork" not in mp.get_all_start_methods()):
            return [run_job(case, configs) for case, configs in jobs]
        order = largest_first(jobs)
        with ProcessPoolExecutor(max_workers=int(self.num_workers),
                                 mp_context=mp.get_context("fork"),
                                 initializer=_init_worker, initargs=(jobs,)) as pool:
            results = list(pool.map(_run_worker_job, order, chunksize=1))
        out: list = [None] * len(jobs)
        for i, r in zip(order, results):
            out[i] = r
        return out


def _ray_job(case: SearchCase, configs: Sequence[ParallelConfig]) -> GreedyResult:
    return run_job(case, configs)


@dataclass(frozen=True)
class RayExecutor(GreedyExecutor):
    """Every job a Ray task (one CPU each) on the Ray instance or cluster this process is
    connected to (the caller runs ``ray.init``; inside a Ray task it already is). Each distinct
    search case (its simulator tables: the workload arrays) is put in the object store once per
    batch and shared by its jobs."""

    @property
    def parallelism(self) -> int:
        """The CPUs of the connected Ray cluster (1 when not connected)."""
        import ray

        if not ray.is_initialized():
            return 1
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def run(self, jobs: Sequence[GreedyJob]) -> list[GreedyResult]:
        import ray

        if not ray.is_initialized():
            raise RuntimeError("RayExecutor needs a connected Ray instance: call ray.init() "
                               "(or run inside a Ray task) first, or use LocalExecutor")
        remote = ray.remote(num_cpus=1)(_ray_job)
        refs: dict[int, ObjectRef[SearchCase]] = {}
        for case, _ in jobs:
            if id(case) not in refs:
                refs[id(case)] = ray.put(case)
        order = largest_first(jobs)
        futures = {i: remote.remote(refs[id(jobs[i][0])], jobs[i][1]) for i in order}
        logger.debug("ray executor: %d greedy jobs over %d search cases", len(jobs), len(refs))
        return ray.get([futures[i] for i in range(len(jobs))])


__all__ = ["GreedyExecutor", "GreedyJob", "GreedyResult", "LocalExecutor", "RayExecutor",
           "first_best", "largest_first", "run_job"]
