"""Panels and figure assembly shared by the Section 6 figures.

A panel is one sweep (one ``exp_name``) of one experiment: SLO attainment (%) against the swept
variable, one line per policy, each with its 99% marker. A figure is a row of panels with one
legend above them (so it never covers a curve) and, when any panel was run on a stand-in
workload, a note below them saying so; likewise a note when any panel's rows come from the
opt-in fast search (DESIGN 7.8).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from alpa_serve.results import FAST_SEARCH_NOTE, SEARCH_EXACT, SEARCH_FAST, STANDIN_SUFFIX
from alpa_serve.sweeps import EXP_X, sweep_of_x

from .markers import direction_for, marker_is_certain, point_99
from .styles import RC_PARAMS, policy_style
from .tsv import check_x_column

logger = logging.getLogger(__name__)


#: gid of the stand-in note's text object, so that tests (and readers of the SVG) can find it.
STANDIN_GID = "standin-note"
NO_DATA_GID = "no-data"

STANDIN_NOTE = ("* run on a synthetic stand-in for the Azure trace (workload '*-standin'), "
                "not the real trace; see osdi23_artifact/README.md")

#: Mark of a panel drawn from fast-search rows (column ``search`` = ``fast``, DESIGN 7.8), the
#: gid of the figure's note about them, and the note.
FAST_MARK = "\u2020"
FAST_GID = "fast-search-note"
FAST_NOTE = f"{FAST_MARK} {FAST_SEARCH_NOTE}"


#: gid prefix of the original artifact's curves (``--compare``) and their legend label.
ORIGINAL_GID = "original-"
ORIGINAL_LABEL = "original artifact (hollow markers, dashed)"


@dataclass
class Panel:
    """One panel's aggregated points.

    ``points`` has columns policy, x, goodput (fraction 0..1); None or empty means "no data".
    ``standin`` says the points came from a stand-in workload, ``fast`` that they came from
    the opt-in fast search (DESIGN 7.8). ``original``: the original artifact's points of the
    same sweep (same columns; policies by their original names), drawn beside ours with
    ``--compare`` (DESIGN 7.7); None when not comparing.
    """

    title: str
    x: str
    points: pd.DataFrame | None
    standin: bool = False
    original: pd.DataFrame | None = None
    fast: bool = False


class SweepPoints(NamedTuple):
    """One sweep's points (columns policy, x, goodput) and where they came from: a stand-in
    workload (``standin``), the opt-in fast search (``fast``)."""

    points: pd.DataFrame
    standin: bool
    fast: bool


def sweep_points(df: pd.DataFrame | None, exp_name: str) -> SweepPoints:
    """Select the rows of one sweep from a results frame and reduce them to one point per
    (policy, x).

    If the file holds both real-trace and stand-in rows for this sweep (a rerun after the real
    trace became available), only the real-trace rows are kept, because averaging the two would
    describe neither. Likewise, of exact and fast-search rows (which the runner never writes
    into one file) only the exact ones are kept; a file without the ``search`` column (the
    previous version) holds exact rows. If a (policy, x) case appears more than once, the last
    row wins: it is the most recent run of that case.
    """
    empty = pd.DataFrame({"policy": pd.Series(dtype=str), "x": pd.Series(dtype=float),
                          "goodput": pd.Series(dtype=float)})
    if df is None or df.empty:
        return SweepPoints(empty, False, False)
    x = EXP_X[exp_name]
    rows = df[df["exp_name"] == exp_name]
    if rows.empty:
        return SweepPoints(empty, False, False)
    check_x_column(rows, x)
    search = (rows["search"].fillna("").replace("", SEARCH_EXACT) if "search" in rows.columns
              else pd.Series(SEARCH_EXACT, index=rows.index))
    is_fast = search == SEARCH_FAST
    if is_fast.any() and not is_fast.all():
        logger.warning("%s: %s has rows of the exact and the fast search; plotting only the "
                       "exact rows", rows["_file"].iloc[0], exp_name)
        rows = rows[~is_fast]
        fast = False
    else:
        fast = bool(is_fast.all())
    is_standin = rows["workload"].str.endswith(STANDIN_SUFFIX)
    if is_standin.any() and not is_standin.all():
        logger.warning("%s: %s has rows on both the real trace and a stand-in; plotting only "
                       "the real-trace rows", rows["_file"].iloc[0], exp_name)
        rows = rows[~is_standin]
        standin = False
    else:
        standin = bool(is_standin.all())
    dup = rows.duplicated(subset=["policy", x], keep="last")
    if dup.any():
        logger.warning("%s: %d repeated (policy, %s) case(s) in %s; using the last row of each",
                       rows["_file"].iloc[0], int(dup.sum()), x, exp_name)
        rows = rows[~dup]
    points = rows[["policy", x, "goodput"]].rename(columns={x: "x"}).reset_index(drop=True)
    return SweepPoints(points, standin, fast)


def average_points(per_source: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Average several sets of sweep points point-wise (Fig. 13: over train/test pairs).

    A point missing from some sources is averaged over the sources that have it, with a logged
    warning, since dropping it would hide a partly finished run entirely.
    """
    frames = [p for p in per_source if p is not None and not p.empty]
    if not frames:
        return pd.DataFrame(columns=["policy", "x", "goodput"])
    allp = pd.concat(frames, ignore_index=True)
    agg = allp.groupby(["policy", "x"], as_index=False).agg(goodput=("goodput", "mean"),
                                                            n=("goodput", "size"))
    partial = agg[agg["n"] < len(per_source)]
    if not partial.empty:
        logger.warning("%d point(s) are averaged over fewer than all %d sources (missing cases)",
                       len(partial), len(per_source))
    return agg[["policy", "x", "goodput"]]


def _ylim(panels: Iterable[Panel]) -> tuple[float, float]:
    """One y range for a whole row, so that panels can be compared at a glance."""
    lows = [frame["goodput"].min() for p in panels for frame in (p.points, p.original)
            if frame is not None and not frame.empty]
    if not lows:
        return 0.0, 102.0
    bottom = max(0.0, math.floor(100 * min(lows) / 10) * 10)
    return bottom - 2, 102.0


def draw_panel(ax, panel: Panel, figure_kind: str, markers: bool = True) -> list[str]:
    """Draw one panel on ``ax``; return the policies drawn (for the shared legend)."""
    title = panel.title + (" *" if panel.standin else "") + (f" {FAST_MARK}" if panel.fast
                                                               else "")
    ax.set_title(title)
    sweep = sweep_of_x(panel.x)
    ax.set_xlabel(sweep.axis_label if sweep is not None else panel.x)
    drawn = draw_original(ax, panel, figure_kind)
    if panel.points is None or panel.points.empty:
        ax.text(0.5, 0.5, "ours: no data" if drawn else "no data", transform=ax.transAxes,
                ha="center", va="center", color="0.4", gid=NO_DATA_GID)
        if not drawn:
            ax.set_xticks([])
        return drawn
    direction = direction_for(panel.x)
    policies = sorted(panel.points["policy"].unique(),
                      key=lambda p: (policy_style(p, figure_kind).order, p))
    grid = np.sort(panel.points["x"].unique())
    for policy in policies:
        style = policy_style(policy, figure_kind)
        pts = panel.points[panel.points["policy"] == policy].sort_values("x")
        # A grid point this policy was not run at is a gap (NaN): the line is not drawn across
        # it, so a partly computed sweep never shows an interpolated segment.
        inside = grid[(grid >= pts["x"].min()) & (grid <= pts["x"].max())]
        line = pd.DataFrame({"x": inside}).merge(pts[["x", "goodput"]], on="x", how="left")
        ax.plot(line["x"], 100 * line["goodput"], color=style.color, marker=style.marker,
                label=style.label, gid=f"curve-{policy}")
        if policy not in drawn:
            drawn.append(policy)
        if markers:
            x99 = point_99(pts["x"], pts["goodput"], direction)
            if x99 is not None and not marker_is_certain(x99, grid.tolist(), pts["x"].tolist(),
                                                         direction):
                logger.info("%s: no 99%% marker for %s (points missing next to %g)",
                            panel.title, policy, x99)
                x99 = None
            if x99 is not None:
                ax.axvline(x99, color=style.color, linestyle=":", linewidth=1.8, alpha=0.9,
                           gid=f"p99-{policy}")
    return drawn


def draw_original(ax, panel: Panel, figure_kind: str) -> list[str]:
    """Draw the original artifact's points of ``panel`` (if any): per policy, in the policy's
    colour and marker, hollow markers joined by a dashed line (gid ``original-<policy>``).
    Returns the policies drawn."""
    if panel.original is None or panel.original.empty:
        return []
    drawn = []
    policies = sorted(panel.original["policy"].unique(),
                      key=lambda p: (policy_style(p, figure_kind).order, p))
    for policy in policies:
        style = policy_style(policy, figure_kind)
        pts = panel.original[panel.original["policy"] == policy].sort_values("x")
        ax.plot(pts["x"], 100 * pts["goodput"], color=style.color, marker=style.marker,
                markerfacecolor="none", linestyle="--", linewidth=1.4, alpha=0.9,
                label=f"{style.label} (original artifact)", gid=f"{ORIGINAL_GID}{policy}")
        drawn.append(policy)
    return drawn


def _fit_legend(fig: Figure, handles: list[Line2D]) -> None:
    """Add the method legend above the panels in as few rows as fit the figure's width.

    Measured on a renderer rather than estimated from label lengths, because labels range from
    "SR" to "Greedy placement + group partitioning" and a legend wider than the figure is cut
    off at both ends.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    for ncol in range(len(handles), 0, -1):
        leg = fig.legend(handles=handles, loc="outside upper center", ncol=ncol, frameon=False)
        if ncol == 1 or leg.get_window_extent(renderer).width <= 0.98 * fig.bbox.width:
            return
        leg.remove()


def make_figure(panels: Sequence[Panel], figure_kind: str, markers: bool = True,
                panel_size: tuple[float, float] = (3.6, 3.1)) -> Figure:
    """Assemble a one-row figure of ``panels`` with a legend above and the stand-in and
    fast-search notes below.

    Uses :class:`matplotlib.figure.Figure` directly rather than pyplot, so that building figures
    needs no display, keeps no global state, and works in any backend setting.
    """
    with matplotlib.rc_context(RC_PARAMS):
        fig = Figure(figsize=(panel_size[0] * len(panels), panel_size[1] + 0.9),
                     layout="constrained")
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        policies: set[str] = set()
        ylim = _ylim(panels)
        for i, (ax, panel) in enumerate(zip(axes, panels)):
            policies.update(draw_panel(ax, panel, figure_kind, markers))
            ax.set_ylim(*ylim)
            if i == 0:
                ax.set_ylabel("SLO attainment (%)")
        styles = sorted({policy_style(p, figure_kind) for p in policies},
                        key=lambda s: (s.order, s.label))
        handles = [Line2D([], [], color=s.color, marker=s.marker, label=s.label) for s in styles]
        if any(p.original is not None and not p.original.empty for p in panels):
            handles.append(Line2D([], [], color="0.3", linestyle="--", marker="o",
                                  markerfacecolor="none", label=ORIGINAL_LABEL))
        if handles and markers:
            handles.append(Line2D([], [], color="0.3", linestyle=":", linewidth=1.8,
                                  label="99% attainment point"))
        if handles:
            # "outside" legends take part in the constrained layout, so the legend gets its own
            # strip above the panels instead of being drawn over a curve.
            _fit_legend(fig, handles)
        notes = [(text, gid) for text, gid, wanted in (
            (STANDIN_NOTE, STANDIN_GID, any(p.standin for p in panels)),
            (FAST_NOTE, FAST_GID, any(p.fast for p in panels))) if wanted]
        for text, gid in notes:
            note = fig.legend(handles=[], title=text, loc="outside lower center",
                              frameon=False, title_fontsize=11)
            note.get_title().set_gid(gid)
    return fig


def save_figure(fig: Figure, out_base: str | Path, formats: Sequence[str]) -> list[Path]:
    """Write ``fig`` to ``out_base`` + ".<fmt>" for each format; return the paths written."""
    out_base = Path(out_base)
    out_base.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for fmt in formats:
        path = out_base.with_name(out_base.name + "." + fmt)
        # No creation date in PDFs: two runs on the same data give byte-identical figures.
        metadata = {"CreationDate": None} if fmt == "pdf" else None
        # pdf.fonttype is read at save time, so the rc settings must be active here too.
        with matplotlib.rc_context(RC_PARAMS):
            fig.savefig(path, format=fmt, dpi=150, metadata=metadata)
        logger.info("wrote %s", path)
        written.append(path)
    return written
