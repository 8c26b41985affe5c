"""The placement policy base class (DESIGN 6, 10).

A policy turns ModelData (per model: SLO, rate, CV, profile) and a ClusterEnv into a placement.
Search policies score candidates on a training workload (DESIGN 4.1): the one given, or one
they generate (:mod:`alpa_serve.placement.training`). Their building blocks live beside this
module: the search case (:mod:`~alpa_serve.placement.search_case`), the fast greedy
(:mod:`~alpa_serve.placement.greedy`), where greedy runs execute
(:mod:`~alpa_serve.placement.executors`) and shared sub-problems
(:mod:`~alpa_serve.placement.subproblems`).
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Optional, Sequence

from alpa_serve.placement.executors import GreedyExecutor, LocalExecutor
from alpa_serve.placement.search_case import ARGSORT_KINDS, SearchCase
from alpa_serve.placement.subproblems import SubproblemStore
from alpa_serve.placement.training import generate_train_workload
from alpa_serve.placement_types import ClusterEnv, ModelData, Placement
from alpa_serve.profiling import ParallelConfig
from alpa_serve.workload import Workload
from alpa_serve.workload.workload import SortKind

SINGLE_DEVICE = ParallelConfig(1, 1, 1)


@dataclass
class Policy(ABC):
    """A placement policy (DESIGN 6).

    argsort_kind: numpy argsort kind for tie-breaking ("stable" default; "quicksort" = numpy's
    default kind, as in the published runs).
    executor / subproblem_store: resources of the search policies (where greedy runs execute,
    where solved sub-problems are kept); they never change a result.
    """

    argsort_kind: SortKind = "stable"
    #: How the policy runs its independent greedy searches (default: in this process).
    executor: Optional[GreedyExecutor] = field(default=None, repr=False, compare=False)
    #: Where solved sub-problems are shared between cases (mp-search-sep; None: not shared).
    subproblem_store: Optional[SubproblemStore] = field(default=None, repr=False,
                                                        compare=False)
    name: str = field(default="", init=False)

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
        if isinstance(self, StaticPolicy):
            placement = self.solve_static(model_datas, cluster_env)
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

    def greedy_executor(self, num_workers: int = 1) -> GreedyExecutor:
        """The executor of this policy's greedy runs: ``executor`` if set, else local with
        ``num_workers`` forked workers."""
        return self.executor if self.executor is not None else LocalExecutor(num_workers)

    def make_case(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
                  workload: Workload) -> SearchCase:
        """The SearchCase of a (models, workload) pair with this policy's tie-breaking."""
        return SearchCase([d.profile for d in model_datas], workload, cluster_env.mem_budget,
                          self.argsort_kind)



class StaticPolicy(Policy):
    """A policy that places without looking at requests: it is given no training workload
    (none is generated for it) and implements :meth:`solve_static`."""

    @abstractmethod
    def solve_static(self, model_datas: Sequence[ModelData],
                     cluster_env: ClusterEnv) -> Placement:
        """Compute the placement (inputs already validated)."""

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> Placement:
        return self.solve_static(model_datas, cluster_env)

def binary_parts(n: int) -> list[int]:
    """Powers of two summing to ``n`` (its binary digits), ascending: 6 -> [2, 4]."""
    return [1 << k for k in range(int(n).bit_length()) if n >> k & 1]


__all__ = ["SINGLE_DEVICE", "Policy", "binary_parts"]
