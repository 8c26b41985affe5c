"""Placement policies (DESIGN 6) and placement types.

The policies score candidates with the simulator; the simulator imports the placement types
from ``alpa_serve.placement_types`` (their home, a floor below it) and nothing from this package,
so importing the policies here makes no cycle.
"""
from alpa_serve.placement.registry import get_policy, policy_names
from alpa_serve.placement_types import (
    ClusterEnv,
    ModelData,
    ModelPlacement,
    ModelPlacementWithReplacement,
    Placement,
    placement_from_dict,
)

__all__ = [
    "ClusterEnv",
    "ModelData",
    "ModelPlacement",
    "ModelPlacementWithReplacement",
    "Placement",
    "placement_from_dict",
    "get_policy",
    "policy_names",
]
