"""Policy registry: one name (or name pattern) -> one policy class (DESIGN 6, 10)."""
from __future__ import annotations

import re
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
from alpa_serve.workload.workload import SortKind

_NUM = r"(\d+(?:\.\d+)?)"
_INT = r"(\d+)"

# (pattern shown to users, compiled regex, factory from the regex groups to constructor kwargs)
_PATTERNS: list[tuple[str, "re.Pattern[str]", type, Callable[..., dict]]] = [
    ("sr-greedy", re.compile(r"sr-greedy"), SelectiveReplicationGreedy, lambda: {}),
    ("sr-replace-<T seconds>", re.compile(rf"sr-replace-{_NUM}"),
     SelectiveReplicationReplacement, lambda t: {"interval": float(t)}),
    ("sr-uniform", re.compile(r"sr-uniform"), SelectiveReplicationUniform, lambda: {}),
    ("mp-search", re.compile(r"mp-search"), ModelParallelismSearch, lambda: {}),
    ("mp-search-sep", re.compile(r"mp-search-sep"), ModelParallelismSearchSep, lambda: {}),
    ("mp-greedy-<k>", re.compile(rf"mp-greedy-{_INT}"), ModelParallelismGreedy,
     lambda k: {"pp": int(k)}),
    ("mp-round-robin", re.compile(r"mp-round-robin"), ModelParallelismRoundRobin, lambda: {}),
    ("mp-equal-<pp>-<op>", re.compile(rf"mp-equal-{_INT}-{_INT}"), ModelParallelismEqual,
     lambda pp, op: {"pp": int(pp), "op": int(op)}),
]


def policy_names() -> list[str]:
    """Valid policy names and name patterns."""
    return [p for p, *_ in _PATTERNS]


def get_policy(name: str, argsort_kind: SortKind = "stable", **kwargs: Any) -> Policy:
    """The policy called ``name`` (DESIGN 6), e.g. "mp-search", "sr-replace-60", "mp-equal-8-4".

    argsort_kind: tie-breaking sort kind ("stable" default; "quicksort" = numpy's default, for
    comparisons with the published code). Extra keyword arguments go to the policy's
    constructor. Unknown names raise ValueError listing the valid names and patterns.
    """
    for _, regex, cls, params in _PATTERNS:
        match = regex.fullmatch(str(name))
        if match:
            try:
                return cls(argsort_kind=argsort_kind, **params(*match.groups()), **kwargs)
            except TypeError as e:
                raise ValueError(f"policy {name!r}: bad arguments {sorted(kwargs)}: {e}") from None
    raise ValueError(f"unknown placement policy {name!r}; valid names: "
                     f"{', '.join(policy_names())}")
