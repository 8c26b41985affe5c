"""The claims the paper draws from each Section 6 figure, and how one is checked on a set of
points (DESIGN 7.7).

A claim is a set of (higher, lower) pairs of legend labels (the labels of
:func:`alpa_serve.plotting.styles.policy_style`, so that ``sr-replace-30`` and
``sr-replace-60`` are both Clockwork++); it holds at an x when every pair present there has
``goodput[higher] >= goodput[lower] - tol``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from alpa_serve.plotting.styles import policy_style

#: The comparison's figure kinds for policy_style (DESIGN 7.5 labels).
FIGURE_KINDS: dict[str, str] = {"fig11": "e2e", "fig12": "large", "fig13": "robust",
                                "fig14": "ablation"}
#: Figure titles.
FIGURE_TITLES: dict[str, str] = {"fig11": "Fig. 11", "fig12": "Fig. 12", "fig13": "Fig. 13",
                                 "fig14": "Fig. 14"}


def label(policy: str, figure: str) -> str:
    """Legend label of ``policy`` in ``figure`` (``fig11`` ...)."""
    return policy_style(policy, FIGURE_KINDS[figure]).label


@dataclass(frozen=True)
class Claim:
    """One claim: its text and the (higher, lower) label pairs it asserts, given the labels
    present in a panel."""

    figure: str
    text: str
    pairs: Callable[[set[str]], list[tuple[str, str]]]


def _above_others(higher: str, lower: Callable[[str], bool]) -> Callable[[set[str]],
                                                                         list[tuple[str, str]]]:
    return lambda labels: [(higher, lo) for lo in sorted(labels)
                           if lo != higher and lower(lo)]


def _chain(labels_in_order: tuple[str, ...]) -> Callable[[set[str]], list[tuple[str, str]]]:
    return lambda labels: [(a, b) for a, b in zip(labels_in_order, labels_in_order[1:])
                           if a in labels and b in labels]


def claims() -> list[Claim]:
    """The checked claims, one or more per figure."""
    beta = label("mp-search", "fig11")
    sr, clockwork = label("sr-greedy", "fig13"), label("sr-replace-120", "fig13")
    ablation = tuple(label(p, "fig14") for p in ("mp-search-sep", "mp-greedy-4",
                                                  "mp-round-robin"))
    pipeline = label("mp-equal-8-2", "fig12").split(" (")[0]
    return [
        Claim("fig11", f"{beta} at or above every baseline (SR, Clockwork++) at each x",
              _above_others(beta, lambda lo: True)),
        Claim("fig12", f"{beta} (mp-search) at or above every fixed split ({pipeline} AxB) "
              "at each x", _above_others(label("mp-search", "fig12"),
                                         lambda lo: lo.startswith(pipeline))),
        Claim("fig13", f"{beta} at or above {sr} and {clockwork} at each x (mean over pairs)",
              _above_others(label("mp-search", "fig13"), lambda lo: lo in (sr, clockwork))),
        Claim("fig14", "each added technique helps: " + " >= ".join(ablation) + " at each x",
              _chain(ablation)),
    ]


@dataclass
class ClaimCheck:
    """A claim checked on one side's points: x values checked, those where it holds, and the
    failures as (panel, sweep, x, higher, lower, goodput higher, goodput lower)."""

    checked: int = 0
    held: int = 0
    failures: list[tuple[str, str, float, str, str, float, float]] | None = None

    def add(self, panel: str, sweep: str, claim: Claim,
            points: Mapping[str, Mapping[float, float]], tol: float) -> None:
        """Check ``claim`` on one panel's sweep: ``points`` maps label -> {x: goodput}."""
        if self.failures is None:
            self.failures = []
        pairs = claim.pairs(set(points))
        xs = sorted({x for lab in points for x in points[lab]})
        for x in xs:
            present = [(a, b) for a, b in pairs if x in points[a] and x in points[b]]
            if not present:
                continue
            self.checked += 1
            bad = [(a, b) for a, b in present if points[a][x] < points[b][x] - tol]
            if not bad:
                self.held += 1
            for a, b in bad:
                self.failures.append((panel, sweep, x, a, b, points[a][x], points[b][x]))

    def summary(self) -> str:
        """``held/checked x`` or ``no data``."""
        return f"{self.held}/{self.checked} x" if self.checked else "no data"


def verdict(ours: ClaimCheck, original: ClaimCheck) -> str:
    """One-line verdict from the two sides' checks."""
    if not ours.checked or not original.checked:
        side = "ours" if not ours.checked else "the original's"
        return f"not comparable: no points of {side} to check"
    ours_all, orig_all = ours.held == ours.checked, original.held == original.checked
    if ours_all and orig_all:
        return "reproduced: holds at every x in both"
    if orig_all:
        return (f"NOT reproduced: holds at every x in the original, fails at "
                f"{ours.checked - ours.held} x of ours")
    if ours_all:
        return (f"holds at every x of ours; the original itself fails at "
                f"{original.checked - original.held} x")
    return (f"fails at some x in both (ours {ours.checked - ours.held}, original "
            f"{original.checked - original.held})")
