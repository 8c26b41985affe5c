"""Selective Replication policies (DESIGN 6): sr-greedy, sr-replace-<T> (Clockwork++), sr-uniform.

Every group is a single device running ParallelConfig(1, 1, 1); a model is either whole on a
device or absent.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Sequence

from alpa_serve.placement.base import SINGLE_DEVICE, Policy, StaticPolicy
from alpa_serve.placement.greedy import fast_greedy
from alpa_serve.placement.search_case import empty_placement
from alpa_serve.placement_types import (
    ClusterEnv,
    ModelData,
    ModelPlacement,
    ModelPlacementWithReplacement,
)
from alpa_serve.profiling import ParallelConfig
from alpa_serve.workload import Workload

logger = logging.getLogger(__name__)


@dataclass
class SelectiveReplicationGreedy(Policy):
    """``sr-greedy``: num_devices groups of (1,1,1), filled by the fast greedy."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.name = "sr-greedy"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return [SINGLE_DEVICE]

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> ModelPlacement:
        case = self.make_case(model_datas, cluster_env, train_workload)
        init = empty_placement([SINGLE_DEVICE] * cluster_env.num_devices)
        placement, _ = fast_greedy(init, case)
        return placement


@dataclass
class SelectiveReplicationReplacement(Policy):
    """``sr-replace-<T>`` (Clockwork++): sr-greedy re-run on every T-second training window.

    interval: window length T in seconds. Windows follow Workload.split_time_interval (a
    window starts at its first arrival); each window's placement is sr-greedy on that window's
    own requests and takes over at the window's first arrival.
    """

    interval: float = 60.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.interval > 0 and math.isfinite(self.interval)):
            raise ValueError(f"sr-replace interval must be a positive number of seconds, got "
                             f"{self.interval!r}")
        self.name = f"sr-replace-{self.interval:g}"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return [SINGLE_DEVICE]

    def solve(self, model_datas: Sequence[ModelData], cluster_env: ClusterEnv,
              train_workload: Workload) -> ModelPlacementWithReplacement:
        windows, starts = train_workload.split_time_interval_with_starts(self.interval)
        init = empty_placement([SINGLE_DEVICE] * cluster_env.num_devices)
        placements = []
        for w in windows:
            case = self.make_case(model_datas, cluster_env, w)
            placement, _ = fast_greedy(init, case)
            placements.append(placement)
        logger.debug("%s: %d windows", self.name, len(windows))
        return ModelPlacementWithReplacement(tuple(starts), tuple(placements))


@dataclass
class SelectiveReplicationUniform(StaticPolicy):
    """``sr-uniform`` (Sec. 3 motivation): every device holds k consecutive models.

    k = min(floor(budget / w0), M) with w0 model 0's (1,1,1) weight; device i holds models
    (i + j) mod M for j < k, in that order. Meant for equal models; placement verification
    rejects a model set where this layout overflows a device.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        self.name = "sr-uniform"

    def candidate_configs(self, cluster_env: ClusterEnv) -> list[ParallelConfig]:
        return [SINGLE_DEVICE]

    def solve_static(self, model_datas: Sequence[ModelData],
                     cluster_env: ClusterEnv) -> ModelPlacement:
        num_models = len(model_datas)
        w0 = model_datas[0].profile.max_stage_weight(SINGLE_DEVICE)
        k = min(int(math.floor(cluster_env.mem_budget / w0)), num_models)
        groups = tuple(tuple((i + j) % num_models for j in range(k))
                       for i in range(cluster_env.num_devices))
        return ModelPlacement((SINGLE_DEVICE,) * cluster_env.num_devices, groups)
