"""Policy -> legend label, colour and marker; figure-wide font settings.

The same policy name can need different labels in different figures: ``mp-search-sep`` is the
system itself ("Beta") on the S3 columns of Fig. 11 but one step of the ablation ("Greedy
placement + group partitioning") in Fig. 14. So styles are looked up per figure kind. Which
family a name belongs to, and so which role it plays (SR, Clockwork++ whatever its T, Beta, a
pipeline), is the policy-name grammar of :mod:`alpa_serve.policy_families`, shared with the
placement registry and the experiment grids.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from alpa_serve.policy_families import Role, match_policy

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolicyStyle:
    """How one policy is drawn: legend label, line colour, marker, and legend order."""

    label: str
    color: str
    marker: str
    order: int


# Beta is always red and first in the legend so that it is the curve the eye finds first.
_BETA = PolicyStyle("Beta", "tab:red", "o", 0)
_CLOCKWORK = PolicyStyle("Clockwork++", "tab:green", "^", 1)
_SR = PolicyStyle("SR", "tab:blue", "s", 2)

#: The style of each role of :data:`alpa_serve.policy_families.POLICY_FAMILIES` (which family
#: is SR, Clockwork++, Beta), the pipelines apart: their label names their parameters.
_ROLE_STYLES: dict[Role, PolicyStyle] = {"sr": _SR, "clockwork": _CLOCKWORK, "beta": _BETA}

#: The fixed-parallelism baselines of Fig. 12, keyed by "<a>-<b>" of ``mp-equal-<a>-<b>``.
_EQUAL = {
    "16-1": ("tab:blue", "s"),
    "8-2": ("tab:orange", "D"),
    "4-4": ("tab:green", "^"),
    "2-8": ("tab:purple", "v"),
}

_ABLATION = {
    "mp-round-robin": PolicyStyle("Round robin", "tab:blue", "s", 2),
    "mp-greedy-4": PolicyStyle("Greedy placement", "tab:green", "^", 1),
    "mp-search-sep": PolicyStyle("Greedy placement + group partitioning", "tab:red", "o", 0),
    # The full search is not in the published Fig. 14, but a run that includes it should not be
    # drawn with a confusing default.
    "mp-search": PolicyStyle("Beta (full search)", "tab:purple", "D", 3),
}

#: Figure kinds accepted by :func:`policy_style`.
FIGURE_KINDS = ("e2e", "large", "robust", "ablation")

_FALLBACK_COLORS = ("tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")
_FALLBACK_MARKERS = ("P", "X", "*", "h", "<", ">")


def _fallback(policy: str) -> PolicyStyle:
    # A deterministic choice (not a running counter) so that a policy keeps its colour across
    # panels and figures.
    h = sum(map(ord, policy))
    logger.warning("no legend label defined for policy %r; drawing it under its own name", policy)
    return PolicyStyle(policy, _FALLBACK_COLORS[h % len(_FALLBACK_COLORS)],
                       _FALLBACK_MARKERS[h % len(_FALLBACK_MARKERS)], 100)


@lru_cache(maxsize=None)  # also logs the unknown-policy warning once, not per point
def policy_style(policy: str, figure: str = "e2e") -> PolicyStyle:
    """Return the style of ``policy`` in a figure of kind ``figure``.

    Kinds: ``e2e`` (Fig. 11) and ``robust`` (Fig. 13): sr-greedy "SR", sr-replace-* "Clockwork++",
    mp-search and mp-search-sep "Beta"; ``large`` (Fig. 12): additionally mp-equal-<a>-<b>
    "Pipeline (<a>x<b>)"; ``ablation`` (Fig. 14): mp-round-robin "Round robin", mp-greedy-4
    "Greedy placement", mp-search-sep "Greedy placement + group partitioning". Unknown policies
    get their own name as label (and a logged warning) rather than an error, so a new policy in
    a TSV still shows up.
    """
    if figure not in FIGURE_KINDS:
        raise ValueError(f"unknown figure kind {figure!r}; expected one of {FIGURE_KINDS}")
    if figure == "ablation" and policy in _ABLATION:
        return _ABLATION[policy]
    found = match_policy(policy)
    role = found[0].role if found else None
    if role is not None and role in _ROLE_STYLES:
        return _ROLE_STYLES[role]
    if found and role == "pipeline":
        pp, op = found[1]
        color, marker = _EQUAL.get(f"{pp}-{op}", ("tab:gray", "x"))
        # Larger pipeline depth first in the legend, as in the paper.
        return PolicyStyle(f"Pipeline ({pp}x{op})", color, marker, 10 + 100 - int(pp))
    return _fallback(policy)


#: Font sizes chosen so that a six-panel row printed at paper width stays legible.
RC_PARAMS: dict[RcKeyType, Any] = {
    "font.size": 13,
    "axes.titlesize": 14,
    "axes.labelsize": 13,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "legend.fontsize": 13,
    "lines.linewidth": 2.0,
    "lines.markersize": 6.5,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "pdf.fonttype": 42,  # TrueType in PDFs: text stays selectable and editable
    "ps.fonttype": 42,
}
