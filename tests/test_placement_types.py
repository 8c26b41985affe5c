"""Placement types: normalisation, JSON, verification, ClusterEnv, import graph."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_placement_util import synthetic_profile

from alpa_serve.placement import (
    ClusterEnv,
    ModelPlacement,
    ModelPlacementWithReplacement,
    placement_from_dict,
)
from alpa_serve.profiling import ParallelConfig
from alpa_serve.units import GiB

C1 = ParallelConfig(1, 1, 1)
C2 = ParallelConfig(1, 1, 2)
C4 = ParallelConfig(1, 2, 2)


def test_normalized_sorts_models_and_groups_empty_first():
    p = ModelPlacement((C1, C2, C4, C1), ((3, 1), (), (0, 2), (1, 3)))
    n = p.normalized()
    # Groups sorted by their sorted model tuples: () < (0, 2) < (1, 3) == (1, 3) (stable).
    assert n.group_models == ((), (0, 2), (1, 3), (1, 3))
    assert n.group_configs == (C2, C4, C1, C1)
    assert n.num_groups == 4 and n.num_replicas == 6
    assert n.normalized() == n


def test_lists_are_coerced_to_tuples_of_configs():
    p = ModelPlacement([[1, 1, 2]], [[1, 0]])
    assert p.group_configs == (C2,) and isinstance(p.group_configs[0], ParallelConfig)
    assert p.group_models == ((1, 0),)
    with pytest.raises(ValueError, match="2 group configs but 1"):
        ModelPlacement((C1, C1), ((0,),))


def test_json_format_and_round_trip():
    p = ModelPlacement((C1, C4), ((0, 2), (1,)))
    doc = json.loads(p.to_json())
    assert doc == {"type": "ModelPlacement", "group_configs": [[1, 1, 1], [1, 2, 2]],
                   "group_models": [[0, 2], [1]]}
    assert ModelPlacement.from_json(p.to_json()) == p
    # A missing "type" means ModelPlacement.
    del doc["type"]
    assert ModelPlacement.from_json(json.dumps(doc)) == p

    r = ModelPlacementWithReplacement((0.5, 60.25), (p, p.normalized()))
    doc = json.loads(r.to_json())
    assert doc["type"] == "ModelPlacementWithReplacement"
    assert doc["start_times"] == [0.5, 60.25]
    assert doc["placements"][0] == json.loads(p.to_json())
    # from_json of either class dispatches on "type".
    assert ModelPlacement.from_json(r.to_json()) == r
    assert ModelPlacementWithReplacement.from_json(p.to_json()) == p
    assert placement_from_dict(json.loads(r.to_json())) == r


def test_json_errors():
    with pytest.raises(ValueError, match="unknown placement type"):
        ModelPlacement.from_json('{"type": "Foo"}')
    with pytest.raises(ValueError, match="lacks the field"):
        ModelPlacement.from_json('{"type": "ModelPlacement", "group_configs": []}')
    with pytest.raises(ValueError, match="3 integers"):
        ModelPlacement.from_json('{"group_configs": [[1, 1]], "group_models": [[0]]}')
    # A replacement window must be a plain ModelPlacement (the simulator switches between them).
    inner = ModelPlacementWithReplacement((0.0,), (ModelPlacement((C1,), ((0,),)),)).to_dict()
    nested = {"type": "ModelPlacementWithReplacement", "start_times": [0.0],
              "placements": [inner]}
    with pytest.raises(ValueError, match="expected a ModelPlacement"):
        placement_from_dict(nested)


def test_verify_errors_name_the_problem():
    prof = synthetic_profile("m", 0.1, 6 * GiB)
    profiles = [prof, prof, prof]
    budget = 13 * GiB
    ModelPlacement((C1, C2), ((0, 1), (0, 1, 2))).verify(profiles, budget)
    with pytest.raises(ValueError, match="model index 3, out of range for 3 models"):
        ModelPlacement((C1,), ((3,),)).verify(profiles, budget)
    with pytest.raises(ValueError, match=r"group 0 .* model\(s\) \[1\] more than once"):
        ModelPlacement((C1,), ((1, 1),)).verify(profiles, budget)
    with pytest.raises(ValueError) as e:
        ModelPlacement((C2, C1), ((0,), (0, 1, 2))).verify(profiles, budget)
    msg = str(e.value)
    assert "group 1" in msg and "[0, 1, 2]" in msg
    assert "19327352832 bytes" in msg and "13958643712 bytes" in msg
    # A config missing from the profile weighs infinity.
    with pytest.raises(ValueError, match="inf bytes"):
        ModelPlacement((ParallelConfig(1, 16, 1),), ((0,),)).verify(profiles, budget)


def test_replacement_validation():
    p = ModelPlacement((C1,), ((0,),))
    with pytest.raises(ValueError, match="2 start times but 1"):
        ModelPlacementWithReplacement((0.0, 1.0), (p,))
    with pytest.raises(ValueError, match="non-decreasing"):
        ModelPlacementWithReplacement((2.0, 1.0), (p, p))
    with pytest.raises(ValueError, match="window 1"):
        ModelPlacementWithReplacement((0.0, 1.0), (p, ModelPlacement((C1,), ((0, 0),)))).verify(
            [synthetic_profile("m", 0.1, GiB)], 13 * GiB)


def test_cluster_env_validation():
    env = ClusterEnv(4)
    assert env.mem_budget == 13 * GiB and env.num_devices_per_node == 8
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="num_devices"):
            ClusterEnv(bad)
    with pytest.raises(ValueError, match="mem_budget"):
        ClusterEnv(2, mem_budget=0)


def test_the_simulator_imports_no_placement_module():
    # The policies import the simulator; the simulator takes the placement types from
    # alpa_serve.placement_types (a floor below it), never the placement package, so the import
    # graph has no cycle and alpa_serve.placement can export the policies eagerly.
    code = ("import sys, alpa_serve.simulator; "
            "assert not [m for m in sys.modules if m == 'alpa_serve.placement' "
            "or m.startswith('alpa_serve.placement.')]; "
            "import alpa_serve.placement as p; p.get_policy('sr-greedy')")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_placement_types_sit_below_the_simulator():
    # Their home imports only the profiling types and the units; the old paths re-export them.
    code = ("import sys, alpa_serve.placement_types; "
            "print(sorted(m for m in sys.modules if m.startswith('alpa_serve.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == str(["alpa_serve.placement_types", "alpa_serve.profiling",
                                      "alpa_serve.profiling.database", "alpa_serve.units"])
    import alpa_serve.placement as placement
    import alpa_serve.placement.types as old_home
    import alpa_serve.placement_types as home
    for name in ("ClusterEnv", "ModelData", "ModelPlacement", "ModelPlacementWithReplacement",
                 "Placement", "placement_from_dict"):
        assert getattr(placement, name) is getattr(home, name) is getattr(old_home, name)
    assert ModelPlacement.__module__ == "alpa_serve.placement_types"
