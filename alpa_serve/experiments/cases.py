"""Case descriptions: one frozen, hashable dataclass per simulated experiment point.

A :class:`Case` fully determines one TSV row (apart from the timing column
``solver_seconds``): the model set, the cluster, the placement policy, the SLO
scale and the workload (synthetic Gamma arrivals or an Azure trace replay).
Its :attr:`Case.case_id` is a hash of its canonical JSON form and is the key
used to resume an interrupted run (DESIGN 7.3).

Units: seconds for time, bytes for memory, requests per second for rates.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal, Optional, Union

from alpa_serve.model_sets import (
    MODEL_SETS as MODEL_SETS,  # re-exported (their home)
    model_names,
    model_set_types,
    model_types,
)
from alpa_serve.results import SEARCH_EXACT, SEARCH_FAST, SEARCH_MODES
from alpa_serve.units import DEFAULT_MEM_BUDGET
from alpa_serve.workload.trace import SOURCES as TRACE_SOURCES
from alpa_serve.workload.trace_defs import TraceWindow

#: Rate distributions of a synthetic workload over its models.
RATE_DISTS: tuple[str, ...] = ("power_law", "uniform", "shares")


def _as_float(obj: Any, name: str) -> None:
    """Coerce a numeric field of a frozen dataclass to float (so 5 and 5.0 hash alike)."""
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{type(obj).__name__}.{name} must be a number, got {value!r}")
    object.__setattr__(obj, name, float(value))


def _as_int(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{type(obj).__name__}.{name} must be an integer, got {value!r}")
    object.__setattr__(obj, name, int(value))


def window_string(window: Optional[tuple[str, str]]) -> str:
    """TSV form of a trace window: ``"start-end"`` (empty for synthetic cases)."""
    return "" if window is None else f"{window[0]}-{window[1]}"


@dataclass(frozen=True)
class SyntheticWorkload:
    """Synthetic Gamma arrivals (DESIGN 4.1).

    Attributes:
        total_rate: sum of the models' rates (requests/s).
        cv: coefficient of variation of every model's inter-arrival gaps.
        duration: length of the test workload (s), starting at 0.
        rate_dist: ``"power_law"`` (rate_i proportional to (i+1)^-0.5), ``"uniform"`` or
            ``"shares"`` (rate_i = total_rate x ``rate_shares[i]``).
        train_workload: ``"test"``: the policy places on the test workload itself
            (the published equal-model drivers); ``"generated"``: the policy
            generates its own training workload from the ModelDatas with
            ``train_seed`` (mixed-set drivers; the calibration setting uses 1234).
        train_seed: seed of the generated training workload (ignored for ``"test"``).
        rate_shares: each model's share of ``total_rate`` (one per model, > 0; e.g. the
            20%/80% split of Fig. 2(b)); only with ``rate_dist="shares"``.
    """

    total_rate: float
    cv: float
    duration: float
    rate_dist: Literal["power_law", "uniform", "shares"] = "power_law"
    train_workload: Literal["test", "generated"] = "test"
    train_seed: int = 0
    rate_shares: tuple[float, ...] = ()

    kind = "synthetic"

    def __post_init__(self) -> None:
        for name in ("total_rate", "cv", "duration"):
            _as_float(self, name)
        _as_int(self, "train_seed")
        if self.rate_dist not in RATE_DISTS:
            raise ValueError(f"rate_dist must be one of {RATE_DISTS}, got {self.rate_dist!r}")
        shares = tuple(self.rate_shares)
        if (self.rate_dist == "shares") != bool(shares):
            raise ValueError("rate_shares must be given exactly when rate_dist is 'shares', got "
                             f"rate_dist={self.rate_dist!r}, rate_shares={shares!r}")
        if any(isinstance(x, bool) or not isinstance(x, (int, float))
               or not (math.isfinite(x) and x > 0) for x in shares):
            raise ValueError(f"rate_shares must be finite numbers > 0, got {shares!r}")
        object.__setattr__(self, "rate_shares", tuple(float(x) for x in shares))
        if self.train_workload not in ("test", "generated"):
            raise ValueError(
                f"train_workload must be 'test' or 'generated', got {self.train_workload!r}")
        if self.total_rate <= 0 or self.duration <= 0 or self.cv < 0:
            raise ValueError(f"invalid synthetic workload {self}")


@dataclass(frozen=True)
class TraceWorkload:
    """Replay of an Azure Functions trace window (DESIGN 4.3).

    Attributes:
        source: ``"maf1"``/``"maf2"`` (real files) or their ``-standin`` versions.
        rate_scale: multiplier of the replayed rates.
        cv_scale: MAF1: the CV of every replayed window; MAF2: multiplier of the fitted CV.
        test_window: ``("day.hour.minute", "day.hour.minute")`` evaluated window.
        train_window: window the policy places on; ``None`` means the test window
            (the Fig. 11 setting; the training replay then equals the test replay).
        interval_seconds: replay window length (s): 60 for MAF1, 5400 for MAF2 in Fig. 11.
    """

    source: str
    rate_scale: float
    cv_scale: float
    test_window: tuple[str, str]
    train_window: Optional[tuple[str, str]] = None
    interval_seconds: float = 60.0

    kind = "trace"

    def __post_init__(self) -> None:
        if self.source not in TRACE_SOURCES:
            raise ValueError(f"trace source must be one of {TRACE_SOURCES}, got {self.source!r}")
        for name in ("rate_scale", "cv_scale", "interval_seconds"):
            _as_float(self, name)
        parsed: dict[str, TraceWindow] = {}
        for name in ("test_window", "train_window"):
            window = getattr(self, name)
            if window is None:
                continue
            window = tuple(window)
            if len(window) != 2:
                raise ValueError(f"{name} must be a (start, end) pair, got {window!r}")
            parsed[name] = TraceWindow.parse(window[0], window[1])
            if parsed[name].end_seconds <= parsed[name].start_seconds:
                raise ValueError(f"{name} {window!r} is empty")
            object.__setattr__(self, name, parsed[name].strings)
        # The windows parsed once, here (not fields: the case's JSON and id keep the strings).
        if "test_window" in parsed:
            object.__setattr__(self, "test_trace_window", parsed["test_window"])
            object.__setattr__(self, "train_trace_window",
                               parsed.get("train_window", parsed["test_window"]))

    @property
    def effective_train_window(self) -> tuple[str, str]:
        """The window the policy trains on (the test window when unset)."""
        return self.train_window if self.train_window is not None else self.test_window

    @functools.cached_property
    def test_trace_window(self) -> TraceWindow:
        """:attr:`test_window` parsed (set when the workload is built)."""
        return TraceWindow.parse(*self.test_window)

    @functools.cached_property
    def train_trace_window(self) -> TraceWindow:
        """:attr:`effective_train_window` parsed (set when the workload is built)."""
        return TraceWindow.parse(*self.effective_train_window)

    @property
    def duration(self) -> float:
        """Length of the test window (s)."""
        return float(self.test_trace_window.duration)


WorkloadSpec = Union[SyntheticWorkload, TraceWorkload]


@dataclass(frozen=True)
class Case:
    """One experiment point: everything that determines a TSV row.

    Attributes:
        exp_name: swept variable of the row's figure panel, e.g. ``"goodput_vs_num_devices"``.
        model_set: a name of :data:`MODEL_SETS` or a single model type.
        num_devices: devices of the cluster.
        num_models: number of model instances (model i has type ``types[i % len(types)]``).
        policy: placement policy name (DESIGN 6), e.g. ``"mp-search"``.
        slo_scale: per-model SLO = slo_scale x the type's single-device b=1 latency.
        workload: :class:`SyntheticWorkload` or :class:`TraceWorkload`.
        mem_budget: per-device memory budget (bytes).
        search: ``"exact"`` (default) or ``"fast"``: the opt-in fast search of DESIGN 7.8
            (mp-search and mp-search-sep train on some replay windows of a trace case's
            training workload; every other policy and every synthetic case is unchanged).
            Part of the case's identity: a fast case has another ``case_id``.
    """

    exp_name: str
    model_set: str
    num_devices: int
    num_models: int
    policy: str
    slo_scale: float
    workload: WorkloadSpec
    mem_budget: float = float(DEFAULT_MEM_BUDGET)
    search: Literal["exact", "fast"] = "exact"

    def __post_init__(self) -> None:
        if self.search not in SEARCH_MODES:
            raise ValueError(f"search must be one of {', '.join(map(repr, SEARCH_MODES))}, "
                             f"got {self.search!r}")
        _as_int(self, "num_devices")
        _as_int(self, "num_models")
        _as_float(self, "slo_scale")
        _as_float(self, "mem_budget")
        if self.num_devices < 1:
            raise ValueError(f"num_devices must be >= 1, got {self.num_devices}")
        if self.num_models < 1:
            raise ValueError(f"num_models must be >= 1, got {self.num_models}")
        if not (math.isfinite(self.slo_scale) and self.slo_scale > 0):
            raise ValueError(f"slo_scale must be a finite number > 0 (the SLO is slo_scale x "
                             f"the model's single-device latency), got {self.slo_scale}")
        if not (math.isfinite(self.mem_budget) and self.mem_budget > 0):
            raise ValueError(f"mem_budget must be a finite number of bytes > 0, "
                             f"got {self.mem_budget}")
        if not isinstance(self.workload, (SyntheticWorkload, TraceWorkload)):
            raise TypeError(f"workload must be a SyntheticWorkload or TraceWorkload, "
                            f"got {type(self.workload).__name__}")
        shares = getattr(self.workload, "rate_shares", ())
        if shares and len(shares) != self.num_models:
            raise ValueError(f"the workload gives {len(shares)} rate_shares for "
                             f"{self.num_models} models")
        model_set_types(self.model_set)

    # ----- derived values -------------------------------------------------
    @property
    def model_types(self) -> list[str]:
        """Type of every model (model i: ``types[i % len(types)]``)."""
        return model_types(self.model_set, self.num_models)

    @property
    def model_names(self) -> list[str]:
        """Names of the models (``m0..`` for equal-model sets)."""
        return model_names(self.model_set, self.num_models)

    @property
    def workload_name(self) -> str:
        """TSV ``workload`` column: ``synthetic`` or the trace source."""
        if isinstance(self.workload, SyntheticWorkload):
            return "synthetic"
        return self.workload.source

    def to_json_dict(self) -> dict[str, Any]:
        """Canonical plain-data form (the workload carries a ``kind`` tag).

        ``rate_shares`` appears only when given and ``search`` only when ``"fast"``, so the ids
        of the cases that do not use them are those they had before the fields existed.
        """
        data = dataclasses.asdict(self)
        if data["search"] == SEARCH_EXACT:
            del data["search"]
        data["workload"] = {"kind": self.workload.kind, **dataclasses.asdict(self.workload)}
        for key in ("test_window", "train_window", "rate_shares"):
            if data["workload"].get(key) is not None:
                data["workload"][key] = list(data["workload"][key])
        if data["workload"].get("rate_shares") == []:
            del data["workload"]["rate_shares"]
        return data

    def canonical_json(self) -> str:
        """Sorted-key compact JSON; equal cases give equal strings."""
        return json.dumps(self.to_json_dict(), sort_keys=True, separators=(",", ":"),
                          allow_nan=False)

    @property
    def case_id(self) -> str:
        """Stable key of the case: first 16 hex digits of SHA-256 of :meth:`canonical_json`."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> "Case":
        """Inverse of :meth:`to_json_dict`."""
        data = dict(data)
        wl = dict(data.pop("workload"))
        kind = wl.pop("kind")
        if kind == "synthetic":
            wl["rate_shares"] = tuple(wl.get("rate_shares", ()))
            workload: WorkloadSpec = SyntheticWorkload(**wl)
        elif kind == "trace":
            for key in ("test_window", "train_window"):
                if wl.get(key) is not None:
                    wl[key] = tuple(wl[key])
            workload = TraceWorkload(**wl)
        else:
            raise ValueError(f"unknown workload kind {kind!r}")
        return cls(workload=workload, **data)

    def replace(self, **changes: Any) -> "Case":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def describe(self) -> str:
        """Short human-readable description for logs and error messages."""
        wl = self.workload
        if isinstance(wl, SyntheticWorkload):
            w = f"synthetic rate={wl.total_rate:g} cv={wl.cv:g} dur={wl.duration:g}s"
        else:
            w = (f"{wl.source} rate_scale={wl.rate_scale:g} cv_scale={wl.cv_scale:g} "
                 f"test={window_string(wl.test_window)} "
                 f"train={window_string(wl.effective_train_window)}")
        fast = ", fast search" if self.search == SEARCH_FAST else ""
        return (f"{self.exp_name} {self.model_set} x{self.num_models} on {self.num_devices} dev, "
                f"{self.policy}{fast}, slo={self.slo_scale:g}, {w} [{self.case_id}]")

    def to_row_fields(self) -> dict[str, Any]:
        """The TSV columns that describe the case (DESIGN 7.3), before any result.

        Columns that do not apply to the workload kind are empty strings:
        ``rate_scale``/``cv_scale``/windows for synthetic cases, ``total_rate``/``cv``
        for trace cases (their rates come from the trace). ``duration`` is the test
        window's length for trace cases. ``train_workload`` is ``test``, ``generated``
        (with ``train_seed``) or ``replay`` (trace cases: the training window's replay).
        ``search`` is the case's search mode (DESIGN 7.8).
        """
        wl = self.workload
        row: dict[str, Any] = {
            "exp_name": self.exp_name,
            "workload": self.workload_name,
            "model_set": self.model_set,
            "num_devices": self.num_devices,
            "num_models": self.num_models,
            "mem_budget": self.mem_budget,
        }
        if isinstance(wl, SyntheticWorkload):
            row.update(total_rate=wl.total_rate, rate_scale="", cv=wl.cv, cv_scale="",
                       slo_scale=self.slo_scale, duration=wl.duration, policy=self.policy,
                       train_window="", test_window="", train_workload=wl.train_workload,
                       train_seed=wl.train_seed if wl.train_workload == "generated" else "")
        else:
            row.update(total_rate="", rate_scale=wl.rate_scale, cv="", cv_scale=wl.cv_scale,
                       slo_scale=self.slo_scale, duration=wl.duration, policy=self.policy,
                       train_window=window_string(wl.effective_train_window),
                       test_window=window_string(wl.test_window), train_workload="replay",
                       train_seed="")
        row["search"] = self.search
        return row
