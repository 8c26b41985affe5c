"""Placement data types of the policies, the simulator and the runtime (DESIGN 5.1, 6, 10).

A floor below the simulator (it imports only ``alpa_serve.profiling`` and ``alpa_serve.units``),
so that ``alpa_serve.simulator`` and ``alpa_serve.runtime`` can name these types without importing
the policies; ``alpa_serve.placement`` (and ``alpa_serve.placement.types``) re-export them.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Sequence, Union

from alpa_serve.profiling import ModelProfile, ParallelConfig
from alpa_serve.units import DEFAULT_MEM_BUDGET


def normalization_order(group_models: Sequence[Sequence[int]]
                        ) -> tuple[list[int], list[tuple[int, ...]]]:
    """The normalisation of DESIGN 6 as a permutation.

    Returns ``(order, sorted_models)``: ``sorted_models[g]`` is group g's models sorted
    ascending, and ``order`` lists the old group indices in normalised order (a stable sort by
    the sorted model tuples; the empty tuple sorts first, as Python's tuple order gives).
    """
    models = [tuple(sorted(ms)) for ms in group_models]
    order = sorted(range(len(models)), key=models.__getitem__)  # Python's sort is stable
    return order, models


class _PlacementJson:
    """JSON round trip shared by both placement types (DESIGN 10): ``to_dict`` is the type's own;
    parsing dispatches on ``"type"`` (missing means ModelPlacement), so either class parses both."""

    def to_dict(self) -> dict:
        """JSON-ready dict of DESIGN 10 (each placement type defines its own)."""
        raise NotImplementedError

    def to_json(self) -> str:
        """Serialise as DESIGN 10's JSON (``{"type": ..., ...}``)."""
        return json.dumps(self.to_dict())

    @staticmethod
    def from_dict(obj: dict) -> "Placement":
        """Build a placement from a parsed JSON object, dispatching on ``"type"``."""
        return placement_from_dict(obj)

    @staticmethod
    def from_json(text: str) -> "Placement":
        """Parse either placement type (dispatching on ``"type"``)."""
        return placement_from_dict(json.loads(text))


@dataclass(frozen=True)
class ModelPlacement(_PlacementJson):
    """Devices split into groups; group g runs ``group_configs[g]`` and hosts ``group_models[g]``.

    Model entries are indices into the case's model list. A model may sit on several groups
    (replicas) but at most once per group.
    """

    group_configs: tuple[ParallelConfig, ...]
    group_models: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        # Accept lists on construction but always store hashable tuples, so placements can be
        # compared, hashed and shared between processes.
        configs = tuple(ParallelConfig.coerce(c) for c in self.group_configs)
        models = tuple(tuple(int(m) for m in ms) for ms in self.group_models)
        if len(configs) != len(models):
            raise ValueError(
                f"ModelPlacement has {len(configs)} group configs but {len(models)} model groups")
        object.__setattr__(self, "group_configs", configs)
        object.__setattr__(self, "group_models", models)

    @classmethod
    def _trusted(cls, group_configs: tuple[ParallelConfig, ...],
                 group_models: tuple[tuple[int, ...], ...]) -> "ModelPlacement":
        """Construct without coercion or checks: for the search's inner loop, whose inputs are
        already tuples of ParallelConfig and tuples of Python ints of equal length."""
        obj = object.__new__(cls)
        object.__setattr__(obj, "group_configs", group_configs)
        object.__setattr__(obj, "group_models", group_models)
        return obj

    @property
    def num_groups(self) -> int:
        """Number of device groups."""
        return len(self.group_configs)

    @property
    def num_replicas(self) -> int:
        """Total number of model replicas over all groups."""
        return sum(len(ms) for ms in self.group_models)

    @property
    def num_devices(self) -> int:
        """Devices used: sum over groups of dp * op * pp."""
        return sum(c.dp * c.op * c.pp for c in self.group_configs)

    def normalized(self) -> "ModelPlacement":
        """Canonical form used by the fast greedy (DESIGN 6).

        Each group's models are sorted ascending; then groups are stable-sorted by their sorted
        model tuples (the empty tuple sorts first, as Python's tuple order gives), and configs
        move with their groups.
        """
        order, models = normalization_order(self.group_models)
        return ModelPlacement(tuple(self.group_configs[g] for g in order),
                              tuple(models[g] for g in order))

    def to_dict(self) -> dict:
        """JSON-ready dict of DESIGN 10."""
        return {
            "type": "ModelPlacement",
            "group_configs": [[int(c.dp), int(c.op), int(c.pp)] for c in self.group_configs],
            "group_models": [[int(m) for m in ms] for ms in self.group_models],
        }

    def group_memory(self, profiles: Sequence[ModelProfile], group: int) -> float:
        """Bytes group ``group`` needs: sum over its models of the largest stage weight.

        A configuration missing from a model's profile weighs infinity.
        """
        cfg = self.group_configs[group]
        return float(sum(profiles[m].max_stage_weight(cfg) for m in self.group_models[group]))

    def verify(self, profiles_or_model_datas: Sequence[Union[ModelProfile, "ModelData"]],
               mem_budget: float) -> None:
        """Raise ValueError unless every model index is valid, no group holds a model twice and
        every group's memory (bytes) is <= ``mem_budget`` (bytes)."""
        profiles = _profiles_of(profiles_or_model_datas)
        num_models = len(profiles)
        for g, (cfg, ms) in enumerate(zip(self.group_configs, self.group_models)):
            for m in ms:
                if not 0 <= m < num_models:
                    raise ValueError(
                        f"group {g} ({tuple(cfg)}) holds model index {m}, out of range for "
                        f"{num_models} models")
            if len(set(ms)) != len(ms):
                dups = sorted({m for m in ms if ms.count(m) > 1})
                raise ValueError(f"group {g} ({tuple(cfg)}) holds model(s) {dups} more than once")
            mem = self.group_memory(profiles, g)
            if not mem <= mem_budget:
                names = [profiles[m].name for m in ms]
                raise ValueError(
                    f"group {g} ({tuple(cfg)}) with models {list(ms)} {names} needs "
                    f"{mem:.0f} bytes, over the memory budget of {mem_budget:.0f} bytes")


@dataclass(frozen=True)
class ModelPlacementWithReplacement(_PlacementJson):
    """Clockwork++ placement: ``placements[i]`` serves from ``start_times[i]`` (seconds) on.

    The simulator switches to placement i+1 at the first request arriving strictly after
    ``start_times[i+1]`` (DESIGN 5.1).
    """

    start_times: tuple[float, ...]
    placements: tuple[ModelPlacement, ...]

    def __post_init__(self) -> None:
        starts = tuple(float(s) for s in self.start_times)
        placements = tuple(p if isinstance(p, ModelPlacement) else model_placement_from_dict(p)
                           for p in self.placements)
        if len(starts) != len(placements):
            raise ValueError(f"ModelPlacementWithReplacement has {len(starts)} start times but "
                             f"{len(placements)} placements")
        if not placements:
            raise ValueError("ModelPlacementWithReplacement needs at least one placement")
        if any(b < a for a, b in zip(starts, starts[1:])):
            raise ValueError(f"start times must be non-decreasing, got {starts}")
        object.__setattr__(self, "start_times", starts)
        object.__setattr__(self, "placements", placements)

    @property
    def num_replicas(self) -> int:
        """Largest replica count over the windows' placements."""
        return max(p.num_replicas for p in self.placements)

    def to_dict(self) -> dict:
        """JSON-ready dict of DESIGN 10."""
        return {
            "type": "ModelPlacementWithReplacement",
            "start_times": [float(s) for s in self.start_times],
            "placements": [p.to_dict() for p in self.placements],
        }


    def verify(self, profiles_or_model_datas: Sequence[Union[ModelProfile, "ModelData"]],
               mem_budget: float) -> None:
        """Verify every window's placement (see ModelPlacement.verify)."""
        for i, p in enumerate(self.placements):
            try:
                p.verify(profiles_or_model_datas, mem_budget)
            except ValueError as e:
                raise ValueError(f"window {i} (start {self.start_times[i]} s): {e}") from None


Placement = Union[ModelPlacement, ModelPlacementWithReplacement]


def placement_from_dict(obj: dict) -> Placement:
    """Parse a DESIGN 10 JSON object; a missing ``"type"`` means ModelPlacement."""
    if not isinstance(obj, dict):
        raise ValueError(f"placement JSON must be an object, got {type(obj).__name__}")
    kind = obj.get("type", "ModelPlacement")
    try:
        if kind == "ModelPlacement":
            return ModelPlacement(tuple(ParallelConfig.coerce(c) for c in obj["group_configs"]),
                                  tuple(tuple(ms) for ms in obj["group_models"]))
        if kind == "ModelPlacementWithReplacement":
            return ModelPlacementWithReplacement(
                tuple(obj["start_times"]),
                tuple(model_placement_from_dict(p) for p in obj["placements"]))
    except KeyError as e:
        raise ValueError(f"placement JSON of type {kind} lacks the field {e}") from None
    raise ValueError(f"unknown placement type {kind!r}; expected 'ModelPlacement' or "
                     f"'ModelPlacementWithReplacement'")


def model_placement_from_dict(obj: dict) -> ModelPlacement:
    """Parse a DESIGN 10 JSON object that must be a ModelPlacement (the windows of a
    ModelPlacementWithReplacement, a stored sub-problem); ValueError otherwise."""
    placement = placement_from_dict(obj)
    if not isinstance(placement, ModelPlacement):
        raise ValueError(f"expected a ModelPlacement, got a {type(placement).__name__}")
    return placement


@dataclass(frozen=True)
class ClusterEnv:
    """The devices of a case.

    num_devices: number of devices (>= 1); mem_budget: bytes per device;
    num_devices_per_node: devices per node (8 on p3.16xlarge).
    """

    num_devices: int
    mem_budget: float = DEFAULT_MEM_BUDGET
    num_devices_per_node: int = 8

    def __post_init__(self) -> None:
        if int(self.num_devices) != self.num_devices or self.num_devices < 1:
            raise ValueError(f"ClusterEnv.num_devices must be an integer >= 1, got "
                             f"{self.num_devices!r}")
        if not (self.mem_budget > 0 and math.isfinite(self.mem_budget)):
            raise ValueError(f"ClusterEnv.mem_budget must be a positive number of bytes, got "
                             f"{self.mem_budget!r}")
        if int(self.num_devices_per_node) != self.num_devices_per_node or \
                self.num_devices_per_node < 1:
            raise ValueError(f"ClusterEnv.num_devices_per_node must be an integer >= 1, got "
                             f"{self.num_devices_per_node!r}")
        object.__setattr__(self, "num_devices", int(self.num_devices))
        object.__setattr__(self, "num_devices_per_node", int(self.num_devices_per_node))


@dataclass(frozen=True)
class ModelData:
    """One model of a case.

    name: model name; slo: latency SLO in seconds; rate: request rate in requests per second;
    cv: coefficient of variation of inter-arrival gaps; profile: its ModelProfile.
    """

    name: str
    slo: float
    rate: float
    cv: float
    profile: ModelProfile


def _profiles_of(items: Sequence[Union[ModelProfile, ModelData]]) -> list[ModelProfile]:
    """Profiles of a list of ModelProfile or ModelData."""
    return [x.profile if isinstance(x, ModelData) else x for x in items]
