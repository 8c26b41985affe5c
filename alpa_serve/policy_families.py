"""The policy-name grammar: every family of placement policy names (DESIGN 6), the pattern users
see, and the part the family plays in the figures, in one table.

Several packages read policy names: placement builds the policy a name stands for
(:mod:`alpa_serve.placement.registry`), the experiment grids give Clockwork++ no training window,
and the figures and the comparison label the curves (every ``sr-replace-<T>`` is Clockwork++,
``mp-search`` and ``mp-search-sep`` are Beta, ``mp-equal-<pp>-<op>`` a fixed pipeline). They
used to parse names each their own way (a regular expression in the registry, prefixes and
another regular expression in the styles); now they all match names against
:data:`POLICY_FAMILIES`, so a new family is one entry here plus its class in the registry.

Standard library only, beside :mod:`alpa_serve.results`, so that plotting reads it without
importing the placement package (numba, the simulator).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

__all__ = ["Role", "PolicyFamily", "POLICY_FAMILIES", "match_policy", "policy_role"]

#: The part a family plays in the figures (DESIGN 7.5), whatever its parameters: ``"sr"``
#: (selective replication), ``"clockwork"`` (Clockwork++: replication re-placed on the test
#: workload every T seconds, so it trains on no other window), ``"beta"`` (the system),
#: ``"pipeline"`` (the fixed-parallelism baselines of Fig. 12). Families without a role
#: (the ablation steps, ``sr-uniform``) are labelled by their exact name where a figure shows
#: them (the ablation figure's styles).
Role = Literal["sr", "clockwork", "beta", "pipeline"]

_NUM = r"(\d+(?:\.\d+)?)"
_INT = r"(\d+)"


@dataclass(frozen=True)
class PolicyFamily:
    """One family of policy names.

    Attributes:
        key: the family's name, e.g. ``"sr-replace"``; the registry keys its class by it.
        pattern: the names as shown to users, e.g. ``"sr-replace-<T seconds>"``.
        regex: the regular expression a name of the family matches in full; its groups are
            the parameters (``sr-replace-60``: ``("60",)``), in the order of the pattern.
        role: the part it plays in the figures (:data:`Role`), or None.
    """

    key: str
    pattern: str
    regex: re.Pattern[str]
    role: Optional[Role] = None


#: Every policy family, in the order the registry lists them (``policy_names()``).
POLICY_FAMILIES: tuple[PolicyFamily, ...] = (
    PolicyFamily("sr-greedy", "sr-greedy", re.compile(r"sr-greedy"), "sr"),
    PolicyFamily("sr-replace", "sr-replace-<T seconds>", re.compile(rf"sr-replace-{_NUM}"),
                 "clockwork"),
    PolicyFamily("sr-uniform", "sr-uniform", re.compile(r"sr-uniform")),
    PolicyFamily("mp-search", "mp-search", re.compile(r"mp-search"), "beta"),
    PolicyFamily("mp-search-sep", "mp-search-sep", re.compile(r"mp-search-sep"), "beta"),
    PolicyFamily("mp-greedy", "mp-greedy-<k>", re.compile(rf"mp-greedy-{_INT}")),
    PolicyFamily("mp-round-robin", "mp-round-robin", re.compile(r"mp-round-robin")),
    PolicyFamily("mp-equal", "mp-equal-<pp>-<op>", re.compile(rf"mp-equal-{_INT}-{_INT}"),
                 "pipeline"),
)


def match_policy(name: str) -> Optional[tuple[PolicyFamily, tuple[str, ...]]]:
    """The family of the policy name ``name`` and its parameters (the regex groups, as text),
    or None if it is no policy's name."""
    for family in POLICY_FAMILIES:
        match = family.regex.fullmatch(str(name))
        if match:
            return family, match.groups()
    return None


def policy_role(name: str) -> Optional[Role]:
    """The role (:data:`Role`) of the policy ``name`` in the figures; None for a family without
    one or a name of no family."""
    found = match_policy(name)
    return found[0].role if found else None
