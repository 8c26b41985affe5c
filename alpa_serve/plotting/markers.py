"""The 99% SLO-attainment markers of DESIGN 7.5.

Each method gets a dotted vertical line at its "99% point", the x where it attains the SLO for
99% of requests. Which end of the sweep counts depends on the direction in which the variable
makes the problem easier:

* more devices or a looser SLO make serving easier, so the marker is the *smallest* x at which
  goodput >= 0.99 (how few resources / how tight an SLO the method can live with);
* a higher rate or a burstier trace (CV) make it harder, so the marker is the *largest* x at
  which goodput is still >= 0.99 (how much load the method can take).

A method that never reaches 99% gets no line. The rule is applied literally to the measured
points (the smallest / largest such x); curves are not interpolated, so the marker always sits
on a point that was actually run. A method missing points that other methods of the panel have
(a partly computed sweep) gets no marker where an unrun point could move it
(:func:`marker_is_certain`).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from alpa_serve.sweeps import SWEEPS

#: Goodput a method must reach at its 99% point.
THRESHOLD = 0.99

#: Goodput is a ratio of request counts computed in floating point; 0.99 itself must count.
_EPS = 1e-9

#: x column -> "min" (resource-like: smallest x reaching 99%) or "max" (load-like: largest x
#: still reaching 99%): a view of the sweep table (:data:`alpa_serve.sweeps.SWEEPS`), where a new
#: sweep states its direction.
DIRECTION_BY_X: dict[str, str] = {s.x: s.direction for s in SWEEPS}


def point_99(xs: Sequence[float], goodputs: Sequence[float], direction: str,
             threshold: float = THRESHOLD) -> float | None:
    """Return the x of the 99% point, or None if no point reaches ``threshold``.

    ``direction`` is "min" (smallest x with goodput >= threshold) or "max" (largest such x);
    see the module docstring for which sweep uses which. ``goodputs`` are fractions (0..1).
    Points need not be sorted; NaN goodputs never count as reaching the threshold.
    """
    if direction not in ("min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', not {direction!r}")
    x = np.asarray(xs, dtype=float)
    y = np.asarray(goodputs, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"xs and goodputs differ in length ({x.size} vs {y.size})")
    ok = y >= threshold - _EPS  # NaN compares False
    if not ok.any():
        return None
    return float(x[ok].min() if direction == "min" else x[ok].max())


def marker_is_certain(x99: float, grid: Sequence[float], xs: Sequence[float],
                      direction: str) -> bool:
    """Whether a method's 99% point ``x99`` would stay where it is if the method had every
    point of the panel's ``grid`` (the x values any method of the panel was run at), given the
    x values ``xs`` it has.

    The point is certain when the grid point just before it on the harder-to-easier side
    ("min": the next smaller grid x; "max": the next larger) was run for this method, or when
    there is none; otherwise an unrun point there might also reach 99% and move the marker.
    """
    g = np.asarray(sorted(set(float(v) for v in grid)), dtype=float)
    have = set(float(v) for v in xs)
    side = g[g < x99] if direction == "min" else g[g > x99]
    if side.size == 0:
        return True
    neighbour = side.max() if direction == "min" else side.min()
    return float(neighbour) in have


def direction_for(x_column: str) -> str:
    """Return the marker direction ("min" or "max") for a sweep over ``x_column``."""
    try:
        return DIRECTION_BY_X[x_column]
    except KeyError:
        raise ValueError(
            f"no 99% marker rule for x column {x_column!r}; known: {sorted(DIRECTION_BY_X)}"
        ) from None
