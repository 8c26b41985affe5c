"""The placement types, re-exported from :mod:`alpa_serve.placement_types` (their home, a floor
below the simulator); this module keeps the old import path (and pickles that name it) working."""
from alpa_serve.placement_types import (
    ClusterEnv,
    ModelData,
    ModelPlacement,
    ModelPlacementWithReplacement,
    Placement,
    model_placement_from_dict,
    normalization_order,
    placement_from_dict,
)

__all__ = [
    "ClusterEnv",
    "ModelData",
    "ModelPlacement",
    "ModelPlacementWithReplacement",
    "Placement",
    "model_placement_from_dict",
    "normalization_order",
    "placement_from_dict",
]
