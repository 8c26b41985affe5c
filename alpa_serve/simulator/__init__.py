"""Fast serving simulator (DESIGN 5): compiled FCFS pipeline kernel plus statistics.

Public API (DESIGN 10, docs/architecture.md)::

    from alpa_serve.simulator import simulate, SimTables
    stats = simulate(placement, profiles, workload)   # model i -> profiles[i]; trimmed stats
    tables = SimTables(profiles, workload)            # once per case, for search
    fast = tables.simulate_fast(placement)            # untrimmed FastStats (score, counts)

Semantics and precision choices: docs/simulator.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from alpa_serve.placement_types import Placement
from alpa_serve.profiling import ModelProfile
from alpa_serve.simulator.stats import FastStats, ModelStats, SimStats, compute_stats, trim_slice
from alpa_serve.simulator.tables import EmptyWorkloadError, SimTables

if TYPE_CHECKING:  # the workload package is imported where a Workload is built, not here
    from alpa_serve.workload import Workload

__all__ = [
    "simulate",
    "SimTables",
    "FastStats",
    "SimStats",
    "ModelStats",
    "EmptyWorkloadError",
    "compute_stats",
    "trim_slice",
]


def simulate(placement: Placement, profiles: Sequence[ModelProfile], workload: Workload
             ) -> SimStats:
    """Simulate ``placement`` (ModelPlacement or ModelPlacementWithReplacement) serving
    ``workload``, with ``profiles[i]`` the profile of ``workload.model_names[i]``.

    Returns the warm-up trimmed statistics of DESIGN 5.2. Raises ValueError when the profile
    count differs from the workload's model count or the placement names an unknown model
    index, and EmptyWorkloadError (a ValueError) for an empty workload.
    """
    return SimTables(profiles, workload).simulate(placement)
