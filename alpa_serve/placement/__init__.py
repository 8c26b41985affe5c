"""Placement policies (DESIGN 6) and placement types.

The policies score candidates with the simulator; the simulator knows placements only through
duck typing (it imports nothing from this package), so importing the policies here makes no
cycle.
"""
from alpa_serve.placement.registry import get_policy, policy_names
from alpa_serve.placement.types import (
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
