"""The dispatch rule of DESIGN 5.1 for one request at a time, in plain Python.

The compiled kernel (``kernels.simulate_requests``) walks a whole workload; a serving system sees
one request at a time and must decide at once. :class:`Dispatcher` applies the same rule to one
request, keeping the per-stage free times between calls, so the serving runtime
(``alpa_serve.runtime``) admits exactly the requests the simulator serves:

* the replica is the group, among the model's groups in increasing group index, whose LAST
  stage is free earliest (strict ``<``: ties keep the lower group index);
* pipeline: ``x = t; for each stage k: x = max(x, free[g][k]) + L[m,g,k]``;
  ``finish = x + FIXED_OVERHEAD``;
* served iff ``finish - t <= float32(slo)``; then ``free[g]`` takes the per-stage ``x``;
  otherwise rejected at once and nothing is occupied;
* ``L`` comes from :meth:`SimTables.stage_latencies` (float32 of ``latency x (1 + 0.009 pp)``),
  the very table the kernel reads.

Clocks are Python floats (IEEE float64, like the kernel's); idle stages are free at ``-inf``.
``tests/test_runtime_dispatch.py`` checks that a Dispatcher walked over a workload reproduces
``SimTables.run`` bit for bit. Times are seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from alpa_serve.placement_types import Placement
from alpa_serve.profiling import ModelProfile
from alpa_serve.simulator.kernels import FIXED_OVERHEAD
from alpa_serve.simulator.tables import SimTables

#: Reasons a request is not served (``Decision.reason``); ``"ok"`` means served.
REASONS = ("ok", "slo", "no_replica", "config_missing", "unknown_model")


@dataclass(frozen=True)
class Decision:
    """Outcome of :meth:`Dispatcher.admit` for one request (times in seconds).

    Attributes:
        model: model index of the request.
        arrival: arrival time t.
        group: chosen group (-1: the model has no replica or is unknown).
        accepted: whether the request is served.
        reason: one of :data:`REASONS`.
        finish: predicted finish time (pipeline + fixed overhead); ``inf`` when no pipeline
            could be evaluated (no replica, missing config). Set for rejections too, so a
            caller can say by how much the SLO was missed.
        stage_ends: predicted completion time of each stage of the chosen group (the values
            committed to the free times when accepted; empty when no pipeline was evaluated).
        slo: the SLO actually compared (float32-rounded, as the simulator stores it).
    """

    model: int
    arrival: float
    group: int
    accepted: bool
    reason: str
    finish: float
    stage_ends: tuple[float, ...]
    slo: float

    @property
    def latency(self) -> float:
        """Predicted latency ``finish - arrival`` (s)."""
        return self.finish - self.arrival


def float32_slo(slo: float) -> float:
    """The SLO as the simulator compares it: float64 rounded once to float32 (DESIGN 5.1)."""
    return float(np.float32(slo))


class Dispatcher:
    """Admission and replica choice of DESIGN 5.1 for a ``ModelPlacement``, one request at a time.

    ``profiles[i]`` is the profile of model i. Stage latencies come from
    :meth:`SimTables.stage_latencies`; ``latencies(m, g)`` returns them (float32 values as Python
    floats) or None when group g's configuration is missing from model m's profile.
    """

    def __init__(self, placement: Placement, profiles: Sequence[ModelProfile],
                 model_names: Optional[Sequence[str]] = None) -> None:
        if hasattr(placement, "start_times"):
            raise ValueError("the dispatcher serves one ModelPlacement; a "
                             "ModelPlacementWithReplacement changes placement over time and "
                             "is not supported by the runtime (simulate it instead)")
        from alpa_serve.workload import Workload

        names = list(model_names) if model_names is not None else [p.name for p in profiles]
        tables = SimTables(profiles, Workload.empty(names))
        self.num_models = len(names)
        self.model_names = names
        self.group_configs = tuple(placement.group_configs)
        self.group_models = tuple(tuple(ms) for ms in placement.group_models)
        self.num_groups = len(self.group_configs)
        self.group_stages = [int(c.pp) for c in self.group_configs]
        replicas: list[list[int]] = [[] for _ in range(self.num_models)]
        self._lat: dict[tuple[int, int], Optional[tuple[float, ...]]] = {}
        for g, models in enumerate(placement.group_models):
            for m in models:
                if not 0 <= m < self.num_models:
                    raise ValueError(f"placement refers to model index {m}, but there are "
                                     f"{self.num_models} models; valid indices are "
                                     f"0..{self.num_models - 1}")
                if g not in replicas[m]:  # a model listed twice in a group never wins the tie
                    replicas[m].append(g)
                lat = tables.stage_latencies(m, self.group_configs[g])
                self._lat[(m, g)] = None if lat is None else tuple(float(x) for x in lat)
        #: Groups hosting each model, in increasing group index (the tie-break order).
        self.replicas: list[list[int]] = [sorted(r) for r in replicas]
        #: Per group, per stage: time (s) the stage becomes free; -inf when idle.
        self.free: list[list[float]] = [[-math.inf] * n for n in self.group_stages]
        self.removed: set[int] = set()

    def latencies(self, m: int, g: int) -> Optional[tuple[float, ...]]:
        """Stage latencies (s) of model m on group g, None if the config is not profiled."""
        return self._lat[(m, g)]

    def choose_group(self, m: int) -> int:
        """Group of model m whose last stage is free earliest (strict <); -1 if none."""
        best, best_free = -1, math.inf
        for g in self.replicas[m]:
            f = self.free[g][-1]
            if best < 0 or f < best_free:
                best, best_free = g, f
        return best

    def admit(self, m: int, t: float, slo: float) -> Decision:
        """Decide on a request of model m arriving at t (s) with SLO ``slo`` (s).

        Commits the chosen group's stage free times when the request is accepted.
        """
        slo32 = float32_slo(slo)
        if not 0 <= m < self.num_models:
            return Decision(m, t, -1, False, "unknown_model", math.inf, (), slo32)
        g = self.choose_group(m)
        if g < 0:
            return Decision(m, t, -1, False, "no_replica", math.inf, (), slo32)
        lat = self._lat[(m, g)]
        if lat is None:
            return Decision(m, t, g, False, "config_missing", math.inf, (), slo32)
        free = self.free[g]
        x = t
        ends = []
        for k, latency in enumerate(lat):
            fk = free[k]
            x = fk if fk > x else x
            x += latency
            ends.append(x)
        finish = x + FIXED_OVERHEAD
        if finish - t <= slo32:
            free[:] = ends
            return Decision(m, t, g, True, "ok", finish, tuple(ends), slo32)
        return Decision(m, t, g, False, "slo", finish, tuple(ends), slo32)

    def remove_group(self, g: int) -> None:
        """Take group g out of service (e.g. its actor died): its models' later requests go to
        their remaining replicas by the same rule, or are rejected as ``no_replica``."""
        if g in self.removed:
            return
        self.removed.add(g)
        for reps in self.replicas:
            if g in reps:
                reps.remove(g)

    def restore_group(self, g: int) -> None:
        """Put group g back into service, idle (its stages free at -inf), e.g. a group that
        stopped answering and recovered with nothing left inside: its models' replica lists
        regain it in increasing group index, as they were built."""
        if g not in self.removed:
            return
        self.removed.discard(g)
        self.free[g] = [-math.inf] * self.group_stages[g]
        for m in set(self.group_models[g]):
            if g not in self.replicas[m]:
                self.replicas[m] = sorted(self.replicas[m] + [g])
