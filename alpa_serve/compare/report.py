"""Side-by-side comparison of our result files with the original artifact's (DESIGN 7.7).

Our TSVs are read with the figures' own reader (:func:`alpa_serve.plotting.tsv.read_results`
and :func:`~alpa_serve.plotting.panels.sweep_points`, so the points compared are the points the
figures draw); the original ones with :mod:`alpa_serve.original_results`. Policies are matched
by role: the same name, except that every ``sr-replace-<T>`` is Clockwork++. Goodput is the
fraction 0..1 of requests within their SLO; differences are ours minus the original's.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

import pandas as pd

from alpa_serve.original_results import OriginalResults, read_original_results
from alpa_serve.plotting.panels import average_points, sweep_points
from alpa_serve.policy_families import match_policy
from alpa_serve.results import (
    DATA_DIRS,
    FAST_SEARCH_NOTE,
    FIG11_COLUMNS,
    FIG12_FILE,
    FIG13_PATTERN,
    FIG14_FILE,
    SEARCH_EXACT,
    SEARCH_FAST,
    STANDIN_SUFFIX,
    fig11_file,
    fig11_title,
    read_results,
    row_search,
)
from alpa_serve.sweeps import EXP_X

from .claims import FIGURE_TITLES, ClaimCheck, claims, label, verdict

logger = logging.getLogger(__name__)

#: Default tolerance (goodput fraction) under which two values count as equal: the TSVs round
#: goodput to 3 decimals, and half a percentage point is below what a figure shows.
DEFAULT_TOL = 0.005

#: Columns of comparison.tsv.
COMPARISON_COLUMNS = (
    "figure", "panel", "sweep", "policy", "original_policy", "label", "shared_points",
    "ours_points", "original_points", "mae", "max_abs", "mean_diff", "ours_workload",
    "original_workload", "original_mode", "settings",
)
#: Columns of ordering.tsv.
ORDERING_COLUMNS = ("figure", "panel", "sweep", "x", "ours_order", "original_order", "agree",
                    "conflicts")

#: The case settings compared besides the x value, per kind of workload.
_TRACE_SETTINGS = ("num_devices", "num_models", "slo_scale", "rate_scale", "cv_scale")
_SYNTHETIC_SETTINGS = ("num_devices", "num_models", "slo_scale", "total_rate", "cv")
#: Figures drawn from a trace.
_TRACE_FIGURES = ("fig11", "fig13")
MEAN_PANEL = "mean over pairs"


def policy_key(policy: str) -> str:
    """The role a policy plays, for matching ours with the original's: ``sr-replace-<T>`` ->
    ``sr-replace`` (Clockwork++ with any window: the family's key in
    :data:`alpa_serve.policy_families.POLICY_FAMILIES`), every other name itself."""
    found = match_policy(policy)
    return found[0].key if found and found[0].role == "clockwork" else policy


def _x(value: float) -> float:
    return round(float(value), 9)


@dataclass
class Side:
    """One side's points of one panel's sweep: role -> {x: goodput}, the policy name of each
    role, and what the points were computed from."""

    points: dict[str, dict[float, float]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    workloads: set[str] = field(default_factory=set)
    modes: set[str] = field(default_factory=set)
    settings: dict[str, set[float]] = field(default_factory=dict)

    def add(self, policy: str, x: float, goodput: float) -> None:
        """Record one point (a later one of the same role and x replaces it)."""
        key = policy_key(policy)
        if key in self.names and self.names[key] != policy:
            logger.warning("two policies of one role in one sweep: %s and %s; keeping the "
                           "later", self.names[key], policy)
        self.names[key] = policy
        self.points.setdefault(key, {})[_x(x)] = float(goodput)


@dataclass
class SweepComparison:
    """Ours and the original's points of one (figure, panel, sweep)."""

    figure: str
    panel: str
    sweep: str
    ours: Side
    original: Side
    drawn: bool = True  # the panel the figure draws (Fig. 13: the mean; pairs are detail)

    @property
    def x_column(self) -> str:
        """Our column swept on the x axis."""
        return EXP_X[self.sweep]

    def settings_note(self) -> str:
        """The case settings (other than x) whose values differ between the sides, e.g.
        ``cv_scale: ours 4 / original 8``; "" when they agree."""
        notes = []
        for name in sorted(set(self.ours.settings) & set(self.original.settings)):
            a, b = self.ours.settings[name], self.original.settings[name]
            if a and b and a != b:
                notes.append(f"{name}: ours {_fmt_set(a)} / original {_fmt_set(b)}")
        return "; ".join(notes)


def _fmt_set(values: Iterable[float]) -> str:
    return ",".join(f"{v:g}" for v in sorted(values))


# ------------------------------------------------------------------------------------------
# Collecting both sides
# ------------------------------------------------------------------------------------------
def _data_folder(root: Path, figure: str) -> Optional[Path]:
    """The folder holding our TSVs of ``figure``: ``root/sec6_X_data``, ``root`` itself when it
    is that folder or a flat folder of result files, None when ``root`` is an artifact folder
    (or another figure's data folder) without it."""
    if (root / DATA_DIRS[figure]).is_dir():
        return root / DATA_DIRS[figure]
    if root.name == DATA_DIRS[figure]:
        return root
    if root.name in DATA_DIRS.values() or any((root / d).is_dir() for d in DATA_DIRS.values()):
        return None
    return root if root.is_dir() else None


def _our_files(root: Path, figure: str) -> list[Path]:
    """Our TSVs of ``figure`` under ``root`` (the artifact folder, a data folder, a flat
    folder of result files)."""
    folder = _data_folder(root, figure)
    if folder is None:
        return []
    if figure == "fig11":
        names = [fig11_file(m, t) for m, t in FIG11_COLUMNS]
        return [folder / n for n in names if (folder / n).is_file()]
    if figure in ("fig12", "fig14"):
        name = FIG12_FILE if figure == "fig12" else FIG14_FILE
        return [folder / name] if (folder / name).is_file() else []
    # Fig. 13: every TSV of its own folder (as the figure reads it), the pair files elsewhere.
    return sorted(folder.glob("*.tsv" if folder.name == DATA_DIRS[figure] else FIG13_PATTERN))


def _settings_of(frame: pd.DataFrame, figure: str, x_column: str) -> dict[str, set[float]]:
    names = _TRACE_SETTINGS if figure in _TRACE_FIGURES else _SYNTHETIC_SETTINGS
    out = {}
    for name in names:
        if name == x_column or name not in frame.columns:
            continue
        values = {round(float(v), 9) for v in frame[name] if isinstance(v, float)
                  and math.isfinite(v)}
        if values:
            out[name] = values
    return out


def _our_sides(path: Path, figure: str, df: pd.DataFrame) -> dict[str, Side]:
    """exp_name -> our side of each sweep in one file's frame ``df``."""
    sides = {}
    for exp_name in sorted(set(df["exp_name"]) & set(EXP_X)):
        points = sweep_points(df, exp_name).points
        side = Side()
        for policy, x, g in points[["policy", "x", "goodput"]].itertuples(index=False):
            side.add(policy, x, g)
        rows = df[df["exp_name"] == exp_name]
        side.workloads = set(rows["workload"])
        side.settings = _settings_of(rows, figure, EXP_X[exp_name])
        sides[exp_name] = side
    return sides


def _original_side(original: OriginalResults, figure: str, file: Optional[str], exp_name: str,
                   window: Optional[str]) -> Side:
    side = Side()
    pts = original.select(figure, file=file, exp_name=exp_name, window=window)
    for p in pts:
        side.add(p.policy, p.x, p.goodput)
        side.workloads.add(p.row.workload)
        side.modes.add(p.row.mode)
        for name in (_TRACE_SETTINGS if figure in _TRACE_FIGURES else _SYNTHETIC_SETTINGS):
            if name == p.x_column:
                continue
            v = p.row.value(name)
            if v is not None and v >= 0:  # the original writes -1 where a value does not apply
                side.settings.setdefault(name, set()).add(round(v, 9))
    return side


def _mean_side(sides: list[Side]) -> Side:
    """The point-wise mean of several pairs' sides (as Fig. 13 draws it)."""
    frames = [pd.DataFrame([(s.names[k], x, g) for k, xs in s.points.items()
                            for x, g in xs.items()], columns=["policy", "x", "goodput"])
              for s in sides if s.points]
    mean = Side()
    if frames:
        for policy, x, g in average_points(frames)[["policy", "x", "goodput"]].itertuples(
                index=False):
            mean.add(policy, x, g)
    for s in sides:
        mean.workloads |= s.workloads
        mean.modes |= s.modes
        for name, values in s.settings.items():
            mean.settings.setdefault(name, set()).update(values)
    return mean


@dataclass
class Comparison:
    """Everything the report says: the sweeps compared, the folders' provenance, and what did
    not map."""

    ours_root: Path
    original_root: Path
    tol: float
    sweeps: list[SweepComparison] = field(default_factory=list)
    original: OriginalResults = field(default_factory=OriginalResults)
    ours_profiles: dict[str, set[str]] = field(default_factory=dict)
    ours_workloads: dict[str, set[str]] = field(default_factory=dict)
    ours_searches: dict[str, set[str]] = field(default_factory=dict)
    ours_files: list[Path] = field(default_factory=list)
    profile_check: Optional[str] = None


def collect(ours_root: str | Path, original_root: str | Path,
            figures: Iterable[str] = tuple(DATA_DIRS), tol: float = DEFAULT_TOL) -> Comparison:
    """Read both folders and pair up their sweeps (nothing is written).

    Raises FileNotFoundError (a folder missing), TsvFormatError (one of our files does not
    read) and OriginalResultError (an original file does not read), each one line with file
    and line.
    """
    ours_root, original_root = Path(ours_root), Path(original_root)
    if not ours_root.exists():
        raise FileNotFoundError(f"{ours_root} does not exist (expected our artifact folder with "
                                "sec6_*_data/ inside, or one of those folders)")
    figures = tuple(figures)
    original = read_original_results(original_root, figures)
    comp = Comparison(ours_root, original_root, tol, original=original)
    for figure in figures:
        frames = {}
        for path in _our_files(ours_root, figure):
            df = read_results(path)
            frames[path] = df
            comp.ours_files.append(path)
            if "profile" in df.columns:
                comp.ours_profiles.setdefault(figure, set()).update(
                    p for p in df["profile"] if isinstance(p, str) and p)
            comp.ours_workloads.setdefault(figure, set()).update(df["workload"])
            comp.ours_searches.setdefault(figure, set()).update(
                (row_search({"search": v}) for v in df["search"].fillna(""))
                if "search" in df.columns else (SEARCH_EXACT,))
        if figure == "fig13":
            _collect_fig13(comp, frames, original)
            continue
        panels: list[tuple[str, str, Optional[pd.DataFrame]]] = []
        if figure == "fig11":
            for model_set, trace in FIG11_COLUMNS:
                name = fig11_file(model_set, trace)
                df = next((d for p, d in frames.items() if p.name == name), None)
                panels.append((fig11_title(model_set, trace), name, df))
        else:
            name = FIG12_FILE if figure == "fig12" else FIG14_FILE
            df = next(iter(frames.values()), None)
            panels.append((Path(name).stem, name, df))
        for title, name, df in panels:
            ours = _our_sides(Path(name), figure, df) if df is not None else {}
            sweeps = sorted(set(ours) | {p.exp_name for p in original.select(figure, name)})
            for exp_name in sweeps:
                comp.sweeps.append(SweepComparison(
                    figure, title, exp_name, ours.get(exp_name, Side()),
                    _original_side(original, figure, name, exp_name, None)))
    return comp


def _collect_fig13(comp: Comparison, frames: dict[Path, pd.DataFrame],
                   original: OriginalResults) -> None:
    """Fig. 13: one panel per test window (a train/test pair) plus the mean over the pairs."""
    ours_by_window: dict[str, dict[str, Side]] = {}
    for path, df in frames.items():
        windows = sorted({w for w in df.get("test_window", pd.Series(dtype=str))
                          if isinstance(w, str) and w})
        if len(windows) != 1:
            logger.warning("%s: %d test windows in one pair file; compared as %s", path,
                           len(windows), path.name)
        key = windows[0] if len(windows) == 1 else path.name
        ours_by_window[key] = _our_sides(path, "fig13", df)
    orig_windows = sorted({p.window for p in original.select("fig13")})
    sweeps = sorted({e for s in ours_by_window.values() for e in s}
                    | {p.exp_name for p in original.select("fig13")})
    for exp_name in sweeps:
        ours_pairs, orig_pairs = [], []
        for window in sorted(set(ours_by_window) | set(orig_windows)):
            ours = ours_by_window.get(window, {}).get(exp_name, Side())
            orig = _original_side(original, "fig13", None, exp_name, window) \
                if window in orig_windows else Side()
            comp.sweeps.append(SweepComparison("fig13", f"test {window}", exp_name, ours, orig,
                                               drawn=False))
            ours_pairs.append(ours)
            orig_pairs.append(orig)
        comp.sweeps.append(SweepComparison("fig13", MEAN_PANEL, exp_name,
                                           _mean_side(ours_pairs), _mean_side(orig_pairs)))


# ------------------------------------------------------------------------------------------
# Metrics
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PolicyRow:
    """One row of comparison.tsv (goodput differences as fractions, ours minus original)."""

    figure: str
    panel: str
    sweep: str
    policy: str
    original_policy: str
    label: str
    shared_points: int
    ours_points: int
    original_points: int
    mae: Optional[float]
    max_abs: Optional[float]
    mean_diff: Optional[float]
    ours_workload: str
    original_workload: str
    original_mode: str
    settings: str


def policy_rows(comp: Comparison) -> list[PolicyRow]:
    """One row per (figure, panel, sweep, policy role) present on either side."""
    out = []
    for sw in comp.sweeps:
        for key in sorted(set(sw.ours.points) | set(sw.original.points),
                          key=lambda k: label(sw.ours.names.get(k) or sw.original.names[k],
                                              sw.figure)):
            ours, orig = sw.ours.points.get(key, {}), sw.original.points.get(key, {})
            shared = sorted(set(ours) & set(orig))
            diffs = [ours[x] - orig[x] for x in shared]
            name = sw.ours.names.get(key, "")
            orig_name = sw.original.names.get(key, "")
            out.append(PolicyRow(
                sw.figure, sw.panel, sw.sweep, name, orig_name,
                label(name or orig_name, sw.figure), len(shared), len(ours), len(orig),
                sum(abs(d) for d in diffs) / len(diffs) if diffs else None,
                max(abs(d) for d in diffs) if diffs else None,
                sum(diffs) / len(diffs) if diffs else None,
                ",".join(sorted(sw.ours.workloads)), ",".join(sorted(sw.original.workloads)),
                ",".join(sorted(sw.original.modes)), sw.settings_note()))
    return out


@dataclass(frozen=True)
class OrderingRow:
    """The order of the policies at one x on both sides; ``agree`` unless some pair is
    strictly ordered (by more than the tolerance) one way here and the other way there."""

    figure: str
    panel: str
    sweep: str
    x: float
    ours_order: str
    original_order: str
    agree: bool
    conflicts: str


def _order(points: dict[str, float], names: dict[str, str], figure: str, tol: float) -> str:
    ranked = sorted(points, key=lambda k: -points[k])
    text = ""
    for i, key in enumerate(ranked):
        if i:
            text += " = " if points[ranked[i - 1]] - points[key] <= tol else " > "
        text += f"{label(names[key], figure)} ({100 * points[key]:.1f})"
    return text


def ordering_rows(comp: Comparison) -> list[OrderingRow]:
    """One row per (figure, panel, sweep, x) where at least two policies have points on both
    sides."""
    out = []
    tol = comp.tol
    for sw in comp.sweeps:
        keys = sorted(set(sw.ours.points) & set(sw.original.points))
        xs = sorted({x for k in keys for x in sw.ours.points[k]}
                    & {x for k in keys for x in sw.original.points[k]})
        for x in xs:
            present = [k for k in keys if x in sw.ours.points[k] and x in sw.original.points[k]]
            if len(present) < 2:
                continue
            ours = {k: sw.ours.points[k][x] for k in present}
            orig = {k: sw.original.points[k][x] for k in present}
            conflicts = []
            for i, a in enumerate(present):
                for b in present[i + 1:]:
                    d_ours, d_orig = ours[a] - ours[b], orig[a] - orig[b]
                    if (d_ours > tol and d_orig < -tol) or (d_ours < -tol and d_orig > tol):
                        conflicts.append(f"{label(sw.ours.names[a], sw.figure)} vs "
                                         f"{label(sw.ours.names[b], sw.figure)}")
            out.append(OrderingRow(sw.figure, sw.panel, sw.sweep, x,
                                   _order(ours, sw.ours.names, sw.figure, tol),
                                   _order(orig, sw.original.names, sw.figure, tol),
                                   not conflicts, "; ".join(conflicts)))
    return out


@dataclass
class ClaimResult:
    """A claim checked on both sides."""

    figure: str
    text: str
    ours: ClaimCheck
    original: ClaimCheck

    @property
    def verdict(self) -> str:
        """One-line verdict (see :func:`alpa_serve.compare.claims.verdict`)."""
        return verdict(self.ours, self.original)


def claim_results(comp: Comparison) -> list[ClaimResult]:
    """Every claim of a compared figure, checked on each side's points of the panels the
    figure draws (each side at its own x values)."""
    figures = {sw.figure for sw in comp.sweeps}
    out = []
    for claim in claims():
        if claim.figure not in figures:
            continue
        res = ClaimResult(claim.figure, claim.text, ClaimCheck(), ClaimCheck())
        for sw in comp.sweeps:
            if sw.figure != claim.figure or not sw.drawn:
                continue
            for side, check in ((sw.ours, res.ours), (sw.original, res.original)):
                by_label = {label(side.names[k], sw.figure): pts
                            for k, pts in side.points.items()}
                check.add(sw.panel, sw.sweep, claim, by_label, comp.tol)
        out.append(res)
    return out


# ------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------
def _num(v: Optional[float]) -> str:
    return "" if v is None else f"{v:.4f}"


def _tsv(path: Path, columns: tuple[str, ...], rows: Iterable[tuple[Any, ...]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(columns)
        w.writerows(rows)
    tmp.replace(path)


def write_report(comp: Comparison, out_dir: str | Path) -> list[Path]:
    """Write ``report.md``, ``comparison.tsv`` and ``ordering.tsv`` into ``out_dir``; return
    their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    prows, orows, crows = policy_rows(comp), ordering_rows(comp), claim_results(comp)
    _tsv(out_dir / "comparison.tsv", COMPARISON_COLUMNS,
         ((r.figure, r.panel, r.sweep, r.policy, r.original_policy, r.label, r.shared_points,
           r.ours_points, r.original_points, _num(r.mae), _num(r.max_abs), _num(r.mean_diff),
           r.ours_workload, r.original_workload, r.original_mode, r.settings) for r in prows))
    _tsv(out_dir / "ordering.tsv", ORDERING_COLUMNS,
         ((r.figure, r.panel, r.sweep, f"{r.x:g}", r.ours_order, r.original_order,
           "yes" if r.agree else "no", r.conflicts) for r in orows))
    report = out_dir / "report.md"
    tmp = report.with_name(".report.md.tmp")
    tmp.write_text(render_markdown(comp, prows, orows, crows), encoding="utf-8")
    tmp.replace(report)
    return [report, out_dir / "comparison.tsv", out_dir / "ordering.tsv"]


def _standin_note(comp: Comparison) -> list[str]:
    lines = []
    for figure, workloads in sorted(comp.ours_workloads.items()):
        standin = sorted(w for w in workloads if isinstance(w, str)
                         and w.endswith(STANDIN_SUFFIX))
        if standin:
            lines.append(f"- **{FIGURE_TITLES[figure]}: ours were made from stand-in traces** "
                         f"({', '.join(standin)}), the original's from the real Azure traces: "
                         "the numbers are not expected to match; the orderings and the claims "
                         "are what carries over (docs/traces.md).")
    return lines


def _fast_note(comp: Comparison) -> list[str]:
    return [f"- **{FIGURE_TITLES[figure]}: ours come from the opt-in fast search** "
            f"(search=fast): {FAST_SEARCH_NOTE}; the exact search is the default and the "
            "reference (docs/performance.md, \"Fast search (opt-in)\")."
            for figure, searches in sorted(comp.ours_searches.items()) if SEARCH_FAST in searches]


def render_markdown(comp: Comparison, prows: list[PolicyRow], orows: list[OrderingRow],
                    crows: list[ClaimResult]) -> str:
    """The text of report.md."""
    md = ["# Comparison with the original artifact's results", ""]
    md.append(f"Ours: `{comp.ours_root}` ({len(comp.ours_files)} file(s)). Original: "
              f"`{comp.original_root}` ({len(comp.original.files)} file(s), "
              f"{len(comp.original.points)} point(s); mode(s): "
              f"{', '.join(comp.original.modes) or '-'}; `simulate` rows come from the "
              "original simulator, `run` rows from its real system).")
    md.append("")
    md.append(f"Goodput is the SLO attainment as a fraction 0..1; differences are ours minus "
              f"the original's; two values within {comp.tol:g} count as equal (ordering and "
              "claims). Policies are matched by role (`sr-replace-<T>` is Clockwork++ for any "
              "T).")
    md.append("")
    for figure, profiles in sorted(comp.ours_profiles.items()):
        md.append(f"- {FIGURE_TITLES[figure]}: our rows were computed with profile "
                  f"fingerprint(s) {', '.join(f'`{p}`' for p in sorted(profiles))}.")
    if comp.profile_check:
        md.append(f"- {comp.profile_check}")
    md += _standin_note(comp)
    md += _fast_note(comp)
    md += ["", "## Verdicts per claim", "",
           "| figure | claim | ours | original | verdict |", "|---|---|---|---|---|"]
    for c in crows:
        md.append(f"| {FIGURE_TITLES[c.figure]} | {c.text} | {c.ours.summary()} | "
                  f"{c.original.summary()} | {c.verdict} |")
    for c in crows:
        fails = [("ours", f) for f in c.ours.failures or []] + \
                [("original", f) for f in c.original.failures or []]
        if fails:
            md += ["", f"Where \"{c.text}\" fails ({FIGURE_TITLES[c.figure]}):", ""]
            for side, (panel, sweep, x, hi, lo, ghi, glo) in fails[:40]:
                md.append(f"- {side}: {panel}, {sweep}, x = {x:g}: {hi} {100 * ghi:.1f} < "
                          f"{lo} {100 * glo:.1f}")
            if len(fails) > 40:
                md.append(f"- ... and {len(fails) - 40} more")
    for figure in sorted({r.figure for r in prows}):
        md += ["", f"## {FIGURE_TITLES[figure]}", "",
               "| panel | sweep | policy | original policy | shared x | MAE | max abs | mean "
               "diff | settings that differ |", "|---|---|---|---|---:|---:|---:|---:|---|"]
        for r in (r for r in prows if r.figure == figure):
            md.append(f"| {r.panel} | {r.sweep} | {r.label} (`{r.policy or '-'}`) | "
                      f"`{r.original_policy or '-'}` | {r.shared_points} of {r.ours_points}/"
                      f"{r.original_points} | {_num(r.mae)} | {_num(r.max_abs)} | "
                      f"{_num(r.mean_diff)} | {r.settings} |")
        ordered = [o for o in orows if o.figure == figure]
        agree = sum(o.agree for o in ordered)
        md += ["", f"Ordering of the policies at each shared x: agrees at {agree} of "
               f"{len(ordered)}.", "", "| panel | sweep | x | ours | original | agree |",
               "|---|---|---:|---|---|---|"]
        for o in ordered:
            md.append(f"| {o.panel} | {o.sweep} | {o.x:g} | {o.ours_order} | "
                      f"{o.original_order} | {'yes' if o.agree else 'no: ' + o.conflicts} |")
    if comp.original.unmapped or comp.original.duplicates:
        md += ["", "## Original rows not compared", ""]
        if comp.original.duplicates:
            md.append(f"- {comp.original.duplicates} repeated case(s): the last row of each is "
                      "used, as the original plots do.")
        grouped: dict[str, list[str]] = defaultdict(list)
        for u in comp.original.unmapped:
            grouped[u.reason].append(u.path + (f":{u.line}" if u.line is not None else ""))
        for reason, where in grouped.items():
            shown = ", ".join(where[:5]) + (f" and {len(where) - 5} more" if len(where) > 5
                                            else "")
            md.append(f"- {reason}: {shown}")
    md.append("")
    return "\n".join(md)
