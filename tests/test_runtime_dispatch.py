"""The one-request dispatch rule (alpa_serve.simulator.dispatch) against the simulator kernel.

The serving runtime admits requests with :class:`Dispatcher`; walking a whole workload through it
must give exactly what ``SimTables.run`` gives (finish times, good flags, group counts).
"""
from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
from test_simulator import make_profile, make_workload, random_case

from alpa_serve.placement import ModelPlacement, ModelPlacementWithReplacement
from alpa_serve.profiling import ParallelConfig
from alpa_serve.simulator import SimTables
from alpa_serve.simulator.dispatch import Dispatcher


def walk(placement, profiles, workload):
    """Per-request (finish, good) and group counts from a Dispatcher, in the kernel's format."""
    d = Dispatcher(placement, profiles, workload.model_names)
    n = len(workload)
    finish = np.empty(n)
    good = np.zeros(n, dtype=bool)
    group_num = np.zeros(placement.num_groups, dtype=np.int64)
    for i in range(n):
        t = float(workload.arrivals[i])
        dec = d.admit(int(workload.model_ids[i]), t, float(workload.slos[i]))
        if dec.group >= 0:
            group_num[dec.group] += 1
        finish[i] = dec.finish if dec.accepted else t
        good[i] = dec.accepted
    return finish, good, group_num


@pytest.mark.parametrize("seed", range(40))
def test_dispatcher_matches_kernel(seed):
    placement, profiles, w = random_case(seed)
    if isinstance(placement, ModelPlacementWithReplacement):
        placement = placement.placements[-1]
        if placement.num_groups == 0:
            placement = ModelPlacement((ParallelConfig(1, 1, 1),), ((0,),))
    finish, good, group_num = walk(placement, profiles, w)
    k_finish, k_good, _, _, k_group = SimTables(profiles, w).run(placement)
    np.testing.assert_array_equal(finish, k_finish)  # bit-exact
    np.testing.assert_array_equal(good, k_good)
    np.testing.assert_array_equal(group_num, k_group[:placement.num_groups])


def test_decision_fields_and_reasons():
    c1, c2 = ParallelConfig(1, 1, 1), ParallelConfig(1, 1, 2)
    prof = make_profile("a", {(1, 1, 1): [0.1], (1, 1, 2): [0.05, 0.05]})
    other = make_profile("b", {(1, 1, 1): [0.1]})  # (1,1,2) missing
    p = ModelPlacement((c1, c2), ((0,), (0, 1)))
    d = Dispatcher(p, [prof, other, other], ["a", "b", "c"])
    dec = d.admit(0, 0.0, 1.0)
    assert dec.accepted and dec.reason == "ok" and dec.group == 0  # tie: lower group
    assert dec.finish == pytest.approx(0.1 * 1.009 + 0.011)
    assert dec.stage_ends == (d.free[0][0],)
    # Group 0 now busy until ~0.1; group 1's last stage is idle (-inf): it wins.
    dec = d.admit(0, 0.0, 1.0)
    assert dec.group == 1 and len(dec.stage_ends) == 2
    # SLO miss: rejected, nothing committed.
    before = [list(f) for f in d.free]
    dec = d.admit(0, 0.0, 0.05)
    assert not dec.accepted and dec.reason == "slo" and dec.latency > 0.05
    assert d.free == before
    assert d.admit(1, 0.0, 10.0).reason == "config_missing"
    assert d.admit(2, 0.0, 10.0).reason == "no_replica"
    assert d.admit(-1, 0.0, 10.0).reason == "unknown_model"
    assert math.isinf(d.admit(2, 0.0, 10.0).finish)


def test_remove_group_reroutes_then_rejects():
    c1 = ParallelConfig(1, 1, 1)
    prof = make_profile("a", {(1, 1, 1): [0.1]})
    d = Dispatcher(ModelPlacement((c1, c1), ((0,), (0,))), [prof])
    d.remove_group(0)
    assert d.admit(0, 0.0, 1.0).group == 1
    d.remove_group(1)
    dec = d.admit(0, 1.0, 1.0)
    assert not dec.accepted and dec.reason == "no_replica"


def test_replacement_placement_is_refused():
    c1 = ParallelConfig(1, 1, 1)
    prof = make_profile("a", {(1, 1, 1): [0.1]})
    p = ModelPlacement((c1,), ((0,),))
    with pytest.raises(ValueError, match="ModelPlacementWithReplacement"):
        Dispatcher(ModelPlacementWithReplacement((0.0,), (p,)), [prof])
    w = make_workload([0.0], [0], [1.0], 1)
    assert walk(p, [prof], w)[1][0]


def test_the_runtime_imports_the_experiments_only_in_its_fidelity_study():
    # The serving runtime reads the model sets, SLO bases and default profiles from
    # alpa_serve.model_sets and the placement types from alpa_serve.placement_types; only the
    # fidelity study (an experiment driver) uses the experiments package.
    runtime = Path(__file__).resolve().parents[1] / "alpa_serve" / "runtime"
    found = []
    for path in sorted(runtime.glob("*.py")):
        if path.stem in ("fidelity", "fidelity_jax"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):  # "from alpa_serve import experiments" too
                names = [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            found += [f"{path.name}:{node.lineno} {n}" for n in names
                      if n.startswith("alpa_serve.experiments")]
    assert not found, found
