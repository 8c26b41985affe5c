"""The Section 6 figures (Figs. 11-14): which TSVs feed which panel, and how each is laid out.

File naming (also in docs/figures.md, which the experiment runner follows):

* Fig. 11: ``sec6_2_data/{S1,S2,S3}_{maf1,maf2}.tsv``, one file per column of the figure, each
  holding all four sweeps, told apart by ``exp_name``;
* Fig. 12: ``sec6_3_data/large_model_exp.tsv`` (goodput_vs_rate, goodput_vs_cv, goodput_vs_slo);
* Fig. 13: ``sec6_4_data/*.tsv``, one file per train/test pair, each holding the four sweeps of
  Fig. 11; the figure averages over the files;
* Fig. 14: ``sec6_5_data/ablation.tsv`` (goodput_vs_rate, goodput_vs_cv).

With a comparison folder (``--compare DIR``, DESIGN 7.7) every panel also shows the original
artifact's points of the same sweep, read by :mod:`alpa_serve.original_results` (Fig. 13: the
mean over the original pair files, as the original plot draws it).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import pandas as pd
from matplotlib.figure import Figure

from alpa_serve.original_results import OriginalResults, read_original_results
from alpa_serve.results import (
    DATA_DIRS,
    FIG11_COLUMNS,
    FIG12_FILE,
    FIG14_FILE,
    fig11_file,
    fig11_title,
    read_results,
)
from alpa_serve.sweeps import FIGURE_SWEEPS, get_sweep

from .panels import Panel, average_points, make_figure, save_figure, sweep_points

logger = logging.getLogger(__name__)


class MissingDataError(FileNotFoundError):
    """The data a figure is drawn from has not been generated; says which script makes it."""


#: Fig. 11 columns, left to right: (TSV file in sec6_2_data/, panel title).
FIG11_PANELS = tuple((fig11_file(model_set, trace), fig11_title(model_set, trace))
                     for model_set, trace in FIG11_COLUMNS)

#: Fig. 11 rows: (exp_name, output file stem in paper_figures/), from the sweep table (the SLO
#: sweep's exp_name is goodput_vs_slo, DESIGN 7.3, while the published output file is
#: goodput_vs_slo_scale.pdf).
FIG11_ROWS: tuple[tuple[str, str], ...] = tuple(
    (name, get_sweep(name).figure_stem) for name in FIGURE_SWEEPS["fig11"])


def _panels(figure: str) -> tuple[tuple[str, str], ...]:
    """(exp_name, panel title) of each panel of ``figure``, from the sweep table."""
    return tuple((name, get_sweep(name).title) for name in FIGURE_SWEEPS[figure])


#: Panels of Figs. 12, 13 and 14: (exp_name, title).
FIG12_PANELS = _panels("fig12")
FIG13_PANELS = _panels("fig13")
FIG14_PANELS = _panels("fig14")


@dataclass(frozen=True)
class Section:
    """One reviewer plot script's inputs and outputs."""

    name: str          # e.g. "sec6_2"
    figure: str        # e.g. "Fig. 11"
    data_dir: str      # default data folder name, beside the scripts
    gen_script: str    # the script that generates the data folder
    outputs: tuple[str, ...]  # output file stems in paper_figures/
    build: Callable[["Section", Path, Optional[OriginalResults]], dict[str, Figure]]

    @property
    def key(self) -> str:
        """The figure's key in alpa_serve.results.DATA_DIRS (``fig11`` ...)."""
        return next(k for k, d in DATA_DIRS.items() if d == self.data_dir)

    def missing(self, what: Path) -> MissingDataError:
        """The error for missing input ``what``, naming the script that generates it."""
        return MissingDataError(
            f"{self.figure} data not found: {what} does not exist. Generate it first with "
            f"`bash {self.gen_script}` (in osdi23_artifact/), or point --data-dir at the "
            "folder holding the TSVs.")


def _require_dir(section: Section, data_dir: Path) -> list[Path]:
    """Return the TSVs in ``data_dir``; a missing or TSV-less folder is a MissingDataError."""
    if not data_dir.is_dir():
        raise section.missing(data_dir)
    tsvs = sorted(data_dir.glob("*.tsv"))
    if not tsvs:
        raise section.missing(data_dir / "*.tsv")
    return tsvs


def _require_file(section: Section, data_dir: Path, name: str) -> Path:
    _require_dir(section, data_dir)
    path = data_dir / name
    if not path.is_file():
        raise section.missing(path)
    return path


def _original_points(original: Optional[OriginalResults], figure: str, exp_name: str,
                     file: Optional[str] = None) -> Optional[pd.DataFrame]:
    """The original artifact's points of one sweep (columns policy, x, goodput), averaged
    over Fig. 13's pairs; None when not comparing."""
    if original is None:
        return None
    pts = original.select(figure, file=file, exp_name=exp_name)
    frame = pd.DataFrame({"policy": [p.policy for p in pts], "x": [p.x for p in pts],
                          "goodput": [p.goodput for p in pts],
                          "window": [p.window for p in pts]})
    if figure == "fig13" and not frame.empty:
        return average_points([g[["policy", "x", "goodput"]] for _, g in
                               frame.groupby("window", sort=True)])
    return frame[["policy", "x", "goodput"]]


def _build_fig11(section: Section, data_dir: Path,
                 original: Optional[OriginalResults] = None) -> dict[str, Figure]:
    tsvs = _require_dir(section, data_dir)
    expected = {name for name, _ in FIG11_PANELS}
    unknown = [p.name for p in tsvs if p.name not in expected]
    if unknown:
        # Probably a naming mismatch with the runner; say so rather than drop data silently.
        logger.warning("%s: ignoring %s (Fig. 11 reads %s)", data_dir, ", ".join(unknown),
                       ", ".join(sorted(expected)))
    frames = {}
    for name, title in FIG11_PANELS:
        path = data_dir / name
        if path.is_file():
            frames[name] = read_results(path)
        else:
            logger.warning("%s missing: the %s panels will say 'no data'", path, title)
            frames[name] = None
    figures = {}
    for exp_name, out in FIG11_ROWS:
        panels = []
        for name, title in FIG11_PANELS:
            points, standin, fast = sweep_points(frames[name], exp_name)
            panels.append(Panel(title, get_sweep(exp_name).x, points, standin,
                                _original_points(original, "fig11", exp_name, name), fast))
        figures[out] = make_figure(panels, "e2e")
    return figures


def _single_file_figure(section: Section, data_dir: Path, name: str,
                        panel_specs: Sequence[tuple[str, str]], kind: str,
                        original: Optional[OriginalResults],
                        panel_size: tuple[float, float] = (3.6, 3.1)) -> Figure:
    df = read_results(_require_file(section, data_dir, name))
    panels = []
    for exp_name, title in panel_specs:
        points, standin, fast = sweep_points(df, exp_name)
        panels.append(Panel(title, get_sweep(exp_name).x, points, standin,
                            _original_points(original, section.key, exp_name, name), fast))
    return make_figure(panels, kind, panel_size=panel_size)


def _build_fig12(section: Section, data_dir: Path,
                 original: Optional[OriginalResults] = None) -> dict[str, Figure]:
    return {"large_model_exp": _single_file_figure(
        section, data_dir, FIG12_FILE, FIG12_PANELS, "large", original)}


def _build_fig13(section: Section, data_dir: Path,
                 original: Optional[OriginalResults] = None) -> dict[str, Figure]:
    tsvs = _require_dir(section, data_dir)
    frames = [read_results(p) for p in tsvs]
    panels = []
    for exp_name, title in FIG13_PANELS:
        per_pair = [sweep_points(df, exp_name) for df in frames]
        points = average_points([sweep.points for sweep in per_pair])
        standin = any(sweep.standin for sweep in per_pair if not sweep.points.empty)
        fast = any(sweep.fast for sweep in per_pair if not sweep.points.empty)
        n = sum(1 for sweep in per_pair if not sweep.points.empty)
        label = f"{title} (mean of {n} pair{'s' if n != 1 else ''})" if n else title
        panels.append(Panel(label, get_sweep(exp_name).x, points, standin,
                            _original_points(original, "fig13", exp_name), fast))
    return {"robustness": make_figure(panels, "robust", panel_size=(4.2, 3.1))}


def _build_fig14(section: Section, data_dir: Path,
                 original: Optional[OriginalResults] = None) -> dict[str, Figure]:
    return {"ablation": _single_file_figure(
        section, data_dir, FIG14_FILE, FIG14_PANELS, "ablation", original,
        panel_size=(4.4, 3.1))}


SECTIONS = {
    s.name: s for s in (
        Section("sec6_2", "Fig. 11", DATA_DIRS["fig11"], "gen_data_sec6_2_e2e.sh",
                tuple(out for _, out in FIG11_ROWS), _build_fig11),
        Section("sec6_3", "Fig. 12", DATA_DIRS["fig12"], "gen_data_sec6_3_large.sh",
                ("large_model_exp",), _build_fig12),
        Section("sec6_4", "Fig. 13", DATA_DIRS["fig13"], "gen_data_sec6_4_robust.sh",
                ("robustness",), _build_fig13),
        Section("sec6_5", "Fig. 14", DATA_DIRS["fig14"], "gen_data_sec6_5_ab.sh",
                ("ablation",), _build_fig14),
    )
}


def get_section(name: str) -> Section:
    """Return the :class:`Section` called ``name`` (sec6_2 ... sec6_5)."""
    try:
        return SECTIONS[name]
    except KeyError:
        raise ValueError(f"unknown section {name!r}; expected one of {sorted(SECTIONS)}") from None


#: exp_names drawn by each figure (for the "not drawn" report of --compare).
_DRAWN = {figure: set(names) for figure, names in FIGURE_SWEEPS.items()}


def read_comparison(section: Section, compare_dir: str | Path) -> OriginalResults:
    """The original artifact's results of ``section``'s figure under ``compare_dir`` (its
    folder with ``sec6_*_data/`` inside, or the data folder itself). Logs the rows that map to
    no panel; raises MissingDataError when the folder holds none of the figure's files and
    OriginalResultError (file:line) for a file that does not read."""
    try:
        original = read_original_results(compare_dir, figures=(section.key,))
    except FileNotFoundError as exc:
        raise MissingDataError(f"--compare: {exc}") from None
    if not original.files:
        raise MissingDataError(
            f"--compare {compare_dir}: no result file of the original artifact's "
            f"{section.figure} there (looked in {Path(compare_dir) / section.data_dir} and in "
            f"{compare_dir} itself)")
    for item in original.unmapped:
        logger.warning("--compare: not drawn: %s", item)
    hidden = [p for p in original.points if p.exp_name not in _DRAWN[section.key]]
    if hidden:
        logger.warning("--compare: %d original point(s) of sweeps %s are not panels of %s",
                       len(hidden), sorted({p.exp_name for p in hidden}), section.figure)
    if original.duplicates:
        logger.warning("--compare: %d repeated original case(s); the last row of each is drawn",
                       original.duplicates)
    return original


def build_figures(section: str, data_dir: str | Path,
                  compare_dir: str | Path | None = None) -> dict[str, Figure]:
    """Build the figures of ``section`` from the TSVs in ``data_dir``: {output stem: Figure}.
    With ``compare_dir``, every panel also shows the original artifact's points there."""
    sec = get_section(section)
    original = read_comparison(sec, compare_dir) if compare_dir is not None else None
    return sec.build(sec, Path(data_dir), original)


def write_figures(section: str, data_dir: str | Path, out_dir: str | Path,
                  formats: Sequence[str] = ("pdf",),
                  compare_dir: str | Path | None = None) -> list[Path]:
    """Build the figures of ``section`` and save each in ``formats`` under ``out_dir``."""
    written = []
    for stem, fig in build_figures(section, data_dir, compare_dir).items():
        written += save_figure(fig, Path(out_dir) / stem, formats)
    return written
