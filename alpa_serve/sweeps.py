"""The sweep vocabulary: every swept experiment (``exp_name``, DESIGN 7.3) and what each part of
the code needs to know about it, in one table.

A sweep moves one knob away from a fixed point (DESIGN 7.2) and is drawn as one panel
(DESIGN 7.5). The experiments package needs its knob (the TSV column it writes the swept value
to); the plotting package needs the same column, the axis label, the panel title and the
direction of the 99% marker; the comparison with the original artifact (DESIGN 7.7) needs the
column to read the original rows' x value. Each of these used to keep its own copy keyed by
``exp_name`` or by x column, so a new sweep had to be added in five places that could drift
apart; now a new sweep is one :class:`Sweep` entry in :data:`SWEEPS` (plus, if a figure draws it,
its name in :data:`FIGURE_SWEEPS`) and the grid values of the suite that runs it.

Standard library only, like :mod:`alpa_serve.results` beside it, so that plotting never imports
the experiment machinery.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Direction", "Sweep", "SWEEPS", "TRACE_SWEEPS", "FIGURE_SWEEPS", "EXP_X",
           "get_sweep", "sweep_of_x"]

#: Which end of a sweep counts for the 99% marker (DESIGN 7.5): ``"min"``, the smallest x that
#: reaches 99% (the variable makes serving easier as it grows: devices, a looser SLO), or
#: ``"max"``, the largest x still reaching 99% (it makes serving harder: rate, burstiness).
Direction = Literal["min", "max"]


@dataclass(frozen=True)
class Sweep:
    """One swept experiment.

    Attributes:
        name: the ``exp_name`` of its rows (DESIGN 7.3), e.g. ``"goodput_vs_rate"``.
        x: the TSV column swept on the x axis; the suites also call the knob they move by this
            name. Unique across sweeps, so that a panel's x column names its sweep's rule.
        axis_label: the x axis label of its panels.
        title: the panel title where a figure names its panels by sweep (Figs. 12-14).
        direction: the 99% marker rule (:data:`Direction`).
        output_stem: the file stem of its Fig. 11 row in ``paper_figures/``; empty: the name.
            Only the SLO sweep differs, because the published file is
            ``goodput_vs_slo_scale.pdf`` while the exp_name is ``goodput_vs_slo``.
    """

    name: str
    x: str
    axis_label: str
    title: str
    direction: Direction
    output_stem: str = ""

    @property
    def figure_stem(self) -> str:
        """The file stem of its Fig. 11 row (see ``output_stem``)."""
        return self.output_stem or self.name


#: Every sweep of the Section 6 figures.
SWEEPS: tuple[Sweep, ...] = (
    Sweep("goodput_vs_num_devices", "num_devices", "#devices", "Devices", "min"),
    Sweep("goodput_vs_rate_scale", "rate_scale", "Rate scale", "Rate scale", "max"),
    Sweep("goodput_vs_cv_scale", "cv_scale", "CV scale", "CV scale", "max"),
    Sweep("goodput_vs_slo", "slo_scale", "SLO scale", "SLO scale", "min",
          output_stem="goodput_vs_slo_scale"),
    Sweep("goodput_vs_rate", "total_rate", "Rate (r/s)", "Rate", "max"),
    Sweep("goodput_vs_cv", "cv", "CV", "CV", "max"),
)

_BY_NAME: dict[str, Sweep] = {s.name: s for s in SWEEPS}
_BY_X: dict[str, Sweep] = {s.x: s for s in SWEEPS}
if len(_BY_NAME) != len(SWEEPS) or len(_BY_X) != len(SWEEPS):
    raise ValueError("SWEEPS: every sweep needs its own exp_name and its own x column")

#: The four sweeps of a trace column (Figs. 11 and 13), in panel order.
TRACE_SWEEPS: tuple[str, ...] = ("goodput_vs_num_devices", "goodput_vs_rate_scale",
                                 "goodput_vs_cv_scale", "goodput_vs_slo")

#: Figure -> the sweeps its suite runs and its panels draw, in panel order (Fig. 11: rows).
FIGURE_SWEEPS: dict[str, tuple[str, ...]] = {
    "fig11": TRACE_SWEEPS,
    "fig12": ("goodput_vs_rate", "goodput_vs_cv", "goodput_vs_slo"),
    "fig13": TRACE_SWEEPS,
    "fig14": ("goodput_vs_rate", "goodput_vs_cv"),
}

#: exp_name -> the TSV column swept on the x axis (a view of :data:`SWEEPS`).
EXP_X: dict[str, str] = {s.name: s.x for s in SWEEPS}


def get_sweep(name: str) -> Sweep:
    """The sweep whose exp_name is ``name``; ValueError listing the known ones otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown sweep {name!r}; known: {', '.join(_BY_NAME)}") from None


def sweep_of_x(x_column: str) -> Sweep | None:
    """The sweep over the TSV column ``x_column``, or None if no sweep moves it."""
    return _BY_X.get(x_column)
