"""Placement policies (DESIGN 6) and placement types.

The types are imported eagerly; ``get_policy`` and the policy classes are imported lazily (PEP 562)
because the policies import the simulator, which itself imports ``alpa_serve.placement.types``.
"""
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

_LAZY = {"get_policy", "policy_names"}


def __getattr__(name: str):
    # Resolved on first use only, so importing the types never imports the simulator.
    if name in _LAZY:
        from alpa_serve.placement import registry
        return getattr(registry, name)
    raise AttributeError(f"module 'alpa_serve.placement' has no attribute {name!r}")
