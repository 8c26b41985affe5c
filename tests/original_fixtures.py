"""Fixtures in the original artifact's formats, written from the format facts (not copied):
result rows as its experiment drivers append them (``str()`` of every value, tab-separated, no
header) and look-alike profile classes pickled under the original module name."""

from __future__ import annotations

import dataclasses
from collections import namedtuple
from pathlib import Path
from typing import Any, Iterable, Optional

GiB = 1 << 30
MAF1_KWARGS = {"rate_scale": 0.002, "cv_scale": 4, "trace_dir": "/home/ubuntu/azure_v1.pkl"}


def pc(pp: int, op: int = 1) -> str:
    """The namedtuple repr the original writes inside placements."""
    return f"ParallelConfig(dp=1, op={op}, pp={pp})"


SR_PLACEMENT = (f"ModelPlacement(group_configs=({pc(1)}, {pc(1)}), "
                "group_models=((0,), (1, 16)))")
MP_PLACEMENT = (f"ModelPlacement(group_configs=[{pc(1, 4)}, {pc(8)}], "
                "group_models=[[0, 18, 48, 60], [1, 4, 8]])")
REPLACE_PLACEMENT = "ModelPlacementWithReplacement(num_segments=60)"


def placement_for(policy: str) -> str:
    if policy.startswith("sr-replace"):
        return REPLACE_PLACEMENT
    return SR_PLACEMENT if policy.startswith("sr-") else MP_PLACEMENT


def general_row(exp_name: str, num_devices: int, policy: str, goodput: float,
                kwargs: dict[str, Any], slo_scale: float = 5, num_models: int = 72,
                total_rate: float = -1, rate_distribution: Optional[str] = None,
                arrival_process: str = "azure_v1", duration: float = -1,
                placement: Optional[str] = None, mode: str = "simulate") -> str:
    """One general-model row (14 fields)."""
    values = (exp_name, num_models, num_devices, 13 * GiB, total_rate, rate_distribution,
              arrival_process, kwargs, slo_scale, duration, policy,
              placement or placement_for(policy), round(goodput, 3), mode)
    return "\t".join(str(v) for v in values)


def equal_row(exp_name: str, num_devices: int, policy: str, goodput: float,
              kwargs: dict[str, Any], slo_scale: float = 5, model_type: str = "bert-1.3b",
              num_models: int = 48, total_rate: float = -1,
              rate_distribution: Optional[str] = None, arrival_process: str = "azure_v1",
              duration: float = -1, windows: tuple[Optional[str], ...] = (None,) * 4,
              placement: Optional[str] = None, mode: str = "simulate") -> str:
    """One equal-model row (19 fields)."""
    values = (exp_name, num_devices, 13 * GiB, model_type, num_models, total_rate,
              rate_distribution, arrival_process, kwargs, slo_scale, duration, policy,
              *windows, placement or placement_for(policy), round(goodput, 3), mode)
    return "\t".join(str(v) for v in values)


def write_lines(path: Path, lines: Iterable[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ------------------------------------------------------------------ the original profile
ParallelConfig = namedtuple("ParallelConfig", ("dp", "op", "pp"))


@dataclasses.dataclass
class LatencyMemData:
    latency: dict
    act_mem: dict
    weight_mem: list
    metadata: Any = None


@dataclasses.dataclass
class LatencyMemDataOld:  # an older version of the class, without metadata
    latency: dict
    act_mem: dict
    weight_mem: list


@dataclasses.dataclass
class ProfilingResult:
    model_name: str
    para_dict: dict
    preprocess_cpu: float
    postprocess_cpu: float


def as_original(cls: type, name: str) -> type:
    """``cls`` made to pickle as the original package's ``alpa_serve.profiling.<name>``."""
    cls.__module__ = "alpa_serve.profiling"
    cls.__qualname__ = name
    cls.__name__ = name
    return cls


def install_lookalikes(monkeypatch, old_lmd: bool = False) -> dict[str, type]:
    """Make ``alpa_serve.profiling.{ParallelConfig, LatencyMemData, ProfilingResult}`` the
    look-alike classes for the duration of a test (pickle checks that a class is reachable
    under its module and name); returns them by name."""
    import alpa_serve.profiling as module

    classes = {"ParallelConfig": as_original(ParallelConfig, "ParallelConfig"),
               "LatencyMemData": as_original(LatencyMemDataOld if old_lmd else LatencyMemData,
                                             "LatencyMemData"),
               "ProfilingResult": as_original(ProfilingResult, "ProfilingResult")}
    for name, cls in classes.items():
        monkeypatch.setattr(module, name, cls, raising=False)
    return classes


def tiny_original_profile(classes: dict[str, type], metadata: Any = None) -> dict[str, Any]:
    """A small profile in the original classes: two models, two configurations, two batch
    sizes."""
    PC, LMD, PR = (classes[n] for n in ("ParallelConfig", "LatencyMemData", "ProfilingResult"))

    def lmd(lat, act, w):
        kwargs = {} if metadata is None else {"metadata": metadata}
        return LMD(latency=lat, act_mem=act, weight_mem=w, **kwargs)

    out = {}
    for name, base in (("bert-1.3b", 0.151), ("bert-2.6b", 0.238)):
        out[name] = PR(name, {
            PC(1, 1, 1): lmd({1: [base], 2: [2 * base]}, {1: [1.0e8], 2: [2.0e8]}, [2.6e9]),
            PC(1, 1, 2): lmd({1: [base / 2 + 0.001, base / 2], 2: [base, base]},
                             {1: [5e7, 5e7], 2: [1e8, 1e8]}, [1.3e9, 1.3e9]),
        }, preprocess_cpu=0.002, postprocess_cpu=0.001)
    return out
