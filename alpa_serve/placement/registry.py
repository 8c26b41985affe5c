"""Policy registry: one name (or name pattern) -> one policy class (DESIGN 6, 10).

The name grammar (the families, their patterns and parameters) is
:data:`alpa_serve.policy_families.POLICY_FAMILIES`, which the figures read too; this module adds
the class of each family.
"""
from __future__ import annotations

from typing import Any, Callable

from alpa_serve.placement.base import Policy
from alpa_serve.placement.model_parallel import (
    ModelParallelismEqual,
    ModelParallelismGreedy,
    ModelParallelismRoundRobin,
    ModelParallelismSearch,
    ModelParallelismSearchSep,
)
from alpa_serve.placement.replication import (
    SelectiveReplicationGreedy,
    SelectiveReplicationReplacement,
    SelectiveReplicationUniform,
)
from alpa_serve.policy_families import POLICY_FAMILIES, match_policy
from alpa_serve.workload.workload import SortKind

#: Family key (:data:`alpa_serve.policy_families.POLICY_FAMILIES`, where the name grammar lives)
#: -> (policy class, factory from the name's parameters to constructor kwargs).
_CLASSES: dict[str, tuple[type, Callable[..., dict]]] = {
    "sr-greedy": (SelectiveReplicationGreedy, lambda: {}),
    "sr-replace": (SelectiveReplicationReplacement, lambda t: {"interval": float(t)}),
    "sr-uniform": (SelectiveReplicationUniform, lambda: {}),
    "mp-search": (ModelParallelismSearch, lambda: {}),
    "mp-search-sep": (ModelParallelismSearchSep, lambda: {}),
    "mp-greedy": (ModelParallelismGreedy, lambda k: {"pp": int(k)}),
    "mp-round-robin": (ModelParallelismRoundRobin, lambda: {}),
    "mp-equal": (ModelParallelismEqual, lambda pp, op: {"pp": int(pp), "op": int(op)}),
}
if set(_CLASSES) != {f.key for f in POLICY_FAMILIES}:
    raise ValueError("policy registry: every policy family needs exactly one class")


def policy_names() -> list[str]:
    """Valid policy names and name patterns."""
    return [f.pattern for f in POLICY_FAMILIES]


def get_policy(name: str, argsort_kind: SortKind = "stable", **kwargs: Any) -> Policy:
    """The policy called ``name`` (DESIGN 6), e.g. "mp-search", "sr-replace-60", "mp-equal-8-4".

    argsort_kind: tie-breaking sort kind ("stable" default; "quicksort" = numpy's default, for
    comparisons with the published code). Extra keyword arguments go to the policy's
    constructor. Unknown names raise ValueError listing the valid names and patterns.
    """
    found = match_policy(name)
    if found:
        family, groups = found
        cls, params = _CLASSES[family.key]
        try:
            return cls(argsort_kind=argsort_kind, **params(*groups), **kwargs)
        except TypeError as e:
            raise ValueError(f"policy {name!r}: bad arguments {sorted(kwargs)}: {e}") from None
    raise ValueError(f"unknown placement policy {name!r}; valid names: "
                     f"{', '.join(policy_names())}")
