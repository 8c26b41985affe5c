"""Experiment suites: the parameter grids of DESIGN 7.2, one per figure, plus calibration.

A suite is a list of :class:`SuiteEntry` (TSV file name relative to the output
folder, :class:`~alpa_serve.experiments.cases.Case`). ``quick=True`` gives a
reduced grid for smoke tests (the first point of every sweep and the one nearest the
fixed point, shorter windows/durations) that still exercises every file, policy and sweep.

Output files (relative to ``--out``):

* ``fig11``: ``S1_maf1.tsv``, ``S2_maf1.tsv``, ``S3_maf1.tsv``, ``S1_maf2.tsv``,
  ``S2_maf2.tsv``, ``S3_maf2.tsv`` (one per column of Fig. 11, four sweeps each; the names
  the plotting code reads, see alpa_serve/plotting/figures.py);
* ``fig12``: ``large_model_exp.tsv``;
* ``fig13``: ``robust_pair1.tsv``, ``robust_pair2.tsv``, ``robust_pair3.tsv``;
* ``fig14``: ``ablation.tsv``;
* ``calibration``: ``calibration.tsv``.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from alpa_serve import results
from alpa_serve.experiments.cases import (
    Case,
    SyntheticWorkload,
    TraceWorkload,
    WorkloadSpec,
)
from alpa_serve.policy_families import policy_role
from alpa_serve.results import (
    FIG12_FILE,
    FIG14_FILE,
    SEARCH_EXACT,
    fig11_file,
    fig11_title,
    fig13_file,
)
from alpa_serve.sweeps import FIGURE_SWEEPS, get_sweep
from alpa_serve.workload.trace import TRACE_PATH_VARIABLES
from alpa_serve.workload.trace_defs import STANDIN_SUFFIX, parse_time

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SuiteEntry:
    """One case of a suite and the TSV file (relative to the output folder) it goes to."""

    file: str
    case: Case


@dataclass(frozen=True)
class SuiteOptions:
    """Options that change how a suite's grid is built.

    Attributes:
        quick: reduced grid for smoke tests.
        legacy_fig13: reproduce the published Fig. 13 driver's cv_scale quirk.
        traces: ``"standin"`` (generated stand-in traces), ``"real"`` (the Azure files) or
            ``"auto"``: the real trace where its path variable is set
            (``$ALPA_SERVE_MAF1_PATH``, ``$ALPA_SERVE_MAF2_PATH``), else the stand-in.
        calibration_targets: path of ``calibration_targets.tsv`` (default: the copy packaged
            in ``alpa_serve/data/reference/``).
        only_files: if not empty, keep only the cases of these TSV files (e.g.
            ``("S1_maf1.tsv",)``: one column of Fig. 11).
        exclude_files: drop the cases of these TSV files (e.g. ``("S3_maf2.tsv",)``, the
            column that takes hours on a small machine).
        search: search mode of every case (``Case.search``): ``"exact"`` (default) or
            ``"fast"``, the opt-in fast search of DESIGN 7.8 (other case ids).
    """

    quick: bool = False
    legacy_fig13: bool = False
    traces: str = "auto"
    calibration_targets: Optional[str] = None
    only_files: tuple[str, ...] = ()
    exclude_files: tuple[str, ...] = ()
    search: str = SEARCH_EXACT


class UnknownSuiteError(ValueError):
    """An unknown suite name; the message lists the valid names."""


# ---------------------------------------------------------------------------
# Shared constants of the grids (DESIGN 7.2)
# ---------------------------------------------------------------------------

MAF1_WINDOW = ("0.0.0", "0.1.0")
MAF1_INTERVAL = 60.0
MAF2_WINDOW = ("13.0.0", "13.23.60")
MAF2_INTERVAL = 5400.0
#: Quick mode replays only the first minutes of every window: 20 minutes of a MAF1 hour
#: (20 windows of 60 s), 90 minutes of the MAF2 day (one 5400 s window).
QUICK_WINDOW_MINUTES = {"maf1": 20, "maf2": 90}


def quick_window(window: tuple[str, str], trace: str) -> tuple[str, str]:
    """The first :data:`QUICK_WINDOW_MINUTES` of ``window`` (itself if shorter)."""
    start = float(parse_time(window[0]))
    end = min(float(parse_time(window[1])), start + 60 * QUICK_WINDOW_MINUTES[trace])
    day, rest = divmod(int(end), 86400)
    hour, rest = divmod(rest, 3600)
    if hour == 0 and end > start and day > int(start) // 86400:  # the end of a day
        day, hour = day - 1, 24
    return (window[0], f"{day}.{hour}.{rest // 60}")

MAF1_RATE_SCALES = (5e-4, 1e-3, 2e-3, 4e-3, 5e-3, 6e-3, 7e-3, 8e-3)
MAF1_CV_SCALES = (1, 2, 3, 4, 5, 6, 8)
MAF2_RATE_SCALES = (8, 32, 48, 72, 96)
MAF2_CV_SCALES = (1, 2, 3, 4, 5, 7.5, 10)
MAF2_SLO_SCALES = (0.5, 0.75, 1, 1.5, 2, 2.5, 3, 3.5, 4)


@dataclass(frozen=True)
class Fig11Column:
    """One column of Fig. 11: a model set on a trace with its fixed point and sweeps."""

    model_set: str
    trace: str                # "maf1" or "maf2"
    num_devices: int
    num_models: int
    rate_scale: float
    cv_scale: float
    slo_scale: float
    devices: tuple[float, ...]
    rate_scales: tuple[float, ...]
    cv_scales: tuple[float, ...]
    slo_scales: tuple[float, ...]
    beta_policy: str

    @property
    def name(self) -> str:
        """Panel title, e.g. ``S1@MAF1``."""
        return fig11_title(self.model_set, self.trace)

    @property
    def file(self) -> str:
        """TSV file of the column, e.g. ``S1_maf1.tsv``."""
        return fig11_file(self.model_set, self.trace)

    @property
    def policies(self) -> tuple[str, ...]:
        replace = "sr-replace-60" if self.trace == "maf1" else "sr-replace-21600"
        return ("sr-greedy", replace, self.beta_policy)

    def values(self, x: str) -> tuple[float, ...]:
        """The grid of the column's sweep over the TSV column ``x`` (a trace sweep's
        :attr:`~alpa_serve.sweeps.Sweep.x`)."""
        return {"num_devices": self.devices, "rate_scale": self.rate_scales,
                "cv_scale": self.cv_scales, "slo_scale": self.slo_scales}[x]


def _in_fig11_order(grids: Sequence[Fig11Column]) -> tuple[Fig11Column, ...]:
    """``grids`` in the order of :data:`alpa_serve.results.FIG11_COLUMNS`, the one list of the
    figure's columns (which the plotting code reads too); ValueError unless there is exactly
    one grid per column."""
    by_key = {(c.model_set, c.trace): c for c in grids}
    if len(by_key) != len(grids) or set(by_key) != set(results.FIG11_COLUMNS):
        raise ValueError(f"Fig. 11 grids {sorted(by_key)} are not one per column of "
                         f"alpa_serve.results.FIG11_COLUMNS {list(results.FIG11_COLUMNS)}")
    return tuple(by_key[key] for key in results.FIG11_COLUMNS)


#: The grid of every Fig. 11 column (DESIGN 7.2), in the columns' order.
FIG11_COLUMNS: tuple[Fig11Column, ...] = _in_fig11_order((
    Fig11Column("S1", "maf1", 16, 48, 2e-3, 4, 5,
                (8, 16, 24, 32, 40, 48), MAF1_RATE_SCALES, MAF1_CV_SCALES,
                (0.75, 1, 2, 3, 4, 5, 7.5, 10), "mp-search"),
    Fig11Column("S2", "maf1", 64, 48, 2e-3, 4, 5,
                (48, 56, 64, 72, 80, 96, 128), MAF1_RATE_SCALES, MAF1_CV_SCALES,
                (0.75, 1, 1.5, 2, 2.5, 3, 4, 5, 7.5, 10), "mp-search"),
    Fig11Column("S3", "maf1", 48, 72, 2e-3, 4, 5,
                (32, 40, 48, 54, 64, 72, 96), MAF1_RATE_SCALES, MAF1_CV_SCALES,
                (0.75, 1, 2, 3, 4, 5, 7.5, 10), "mp-search-sep"),
    Fig11Column("S1", "maf2", 16, 48, 16, 1, 5,
                (2, 4, 6, 8, 10, 12, 14, 16), MAF2_RATE_SCALES, MAF2_CV_SCALES,
                MAF2_SLO_SCALES, "mp-search"),
    Fig11Column("S2", "maf2", 64, 48, 16, 1, 5,
                (16, 32, 40, 48, 56, 64), MAF2_RATE_SCALES, MAF2_CV_SCALES,
                MAF2_SLO_SCALES, "mp-search"),
    Fig11Column("S3", "maf2", 48, 72, 32, 1, 5,
                (16, 24, 32, 40, 48, 54, 64), (1, 4, 8, 16, 32, 64), (1, 2, 3, 4, 6, 8),
                (0.75, 1, 1.25, 1.5, 2, 2.5, 5), "mp-search-sep"),
))


def _quick_points(values: Sequence[float], quick: bool, fixed: float) -> tuple[float, ...]:
    """All values, or (quick) the first one and the one nearest the fixed point ``fixed``.

    The fixed point is in most sweeps' lists; its simulation is then shared by all the
    sweeps of a column (see the runner), and the heaviest ends of the sweeps are avoided.
    """
    values = tuple(values)
    if not quick or len(values) <= 2:
        return values
    rest = values[1:]
    nearest = min(rest, key=lambda v: (abs(v - fixed), rest.index(v)))
    return (values[0], nearest)


def one_knob_sweeps(sweeps: Sequence[tuple[str, str, Sequence[float]]],
                    fixed: Callable[[str], Mapping[str, float]], quick: bool
                    ) -> list[tuple[str, dict[str, float]]]:
    """The points of sweeps that each move one knob away from a fixed point (DESIGN 7.2).

    ``sweeps`` lists ``(exp_name, knob, values)`` (see :func:`_sweeps`: the knob of a sweep is
    its x column); ``fixed(exp_name)`` gives the value of every knob at that sweep's fixed
    point. Returns ``(exp_name, knob values)`` per point, sweep by
    sweep, the swept knob taking each of its values (with ``quick``: see
    :func:`_quick_points`) and the others their fixed values.
    """
    points = []
    for exp_name, knob, values in sweeps:
        base = dict(fixed(exp_name))
        for x in _quick_points(values, quick, base[knob]):
            points.append((exp_name, {**base, knob: x}))
    return points


def _sweeps(figure: str, values: Callable[[str], Sequence[float]]
            ) -> list[tuple[str, str, Sequence[float]]]:
    """The ``(exp_name, knob, values)`` of every sweep of ``figure`` for
    :func:`one_knob_sweeps`: the sweeps and their knobs (x columns) come from the sweep table
    (:data:`alpa_serve.sweeps.FIGURE_SWEEPS`), the grid from ``values(x column)``."""
    return [(name, get_sweep(name).x, values(get_sweep(name).x))
            for name in FIGURE_SWEEPS[figure]]


def _source(trace: str, options: SuiteOptions) -> str:
    """Workload source of ``trace`` ("maf1"/"maf2") under ``options.traces``."""
    if options.traces == "real":
        return trace
    if options.traces == "standin":
        return f"{trace}{STANDIN_SUFFIX}"
    if options.traces == "auto":
        return (trace if os.environ.get(TRACE_PATH_VARIABLES[trace])
                else f"{trace}{STANDIN_SUFFIX}")
    raise ValueError(f"traces must be 'auto', 'standin' or 'real', got {options.traces!r}")


def _trace_case(exp_name: str, model_set: str, num_devices: int, num_models: int,
                policy: str, slo_scale: float, source: str, rate_scale: float,
                cv_scale: float, test_window: tuple[str, str],
                train_window: Optional[tuple[str, str]], interval: float) -> Case:
    return Case(exp_name=exp_name, model_set=model_set, num_devices=num_devices,
                num_models=num_models, policy=policy, slo_scale=slo_scale,
                workload=TraceWorkload(source=source, rate_scale=rate_scale,
                                       cv_scale=cv_scale, test_window=test_window,
                                       train_window=train_window,
                                       interval_seconds=interval))


def _trace_sweeps(figure: str, column: Fig11Column, options: SuiteOptions,
                  policies: Sequence[str], test_window: tuple[str, str], interval: float,
                  train_window_of: Callable[[str], Optional[tuple[str, str]]],
                  cv_scale_of: Callable[[str], float]) -> list[Case]:
    """The four sweeps of a trace column (devices, rate scale, CV scale, SLO scale)."""
    source = _source(column.trace, options)

    def fixed(exp_name: str) -> dict[str, float]:
        return {"num_devices": column.num_devices, "rate_scale": column.rate_scale,
                "cv_scale": cv_scale_of(exp_name), "slo_scale": column.slo_scale}

    cases = []
    for exp_name, knobs in one_knob_sweeps(_sweeps(figure, column.values), fixed,
                                           options.quick):
        for policy in policies:
            cases.append(_trace_case(exp_name, column.model_set, int(knobs["num_devices"]),
                                     column.num_models, policy, knobs["slo_scale"], source,
                                     knobs["rate_scale"], knobs["cv_scale"], test_window,
                                     train_window_of(policy), interval))
    return cases


def fig11_suite(options: SuiteOptions) -> list[SuiteEntry]:
    """Fig. 11 (Section 6.2): six columns x four sweeps x (SR, Clockwork++, Beta)."""
    entries: list[SuiteEntry] = []
    for column in FIG11_COLUMNS:
        if column.trace == "maf1":
            window, interval = MAF1_WINDOW, MAF1_INTERVAL
        else:
            window, interval = MAF2_WINDOW, MAF2_INTERVAL
        if options.quick:
            window = quick_window(window, column.trace)
        def cv_scale_of(exp_name: str, c: Fig11Column = column) -> float:
            return c.cv_scale

        cases = _trace_sweeps("fig11", column, options, column.policies, window, interval,
                              train_window_of=lambda policy: None, cv_scale_of=cv_scale_of)
        entries.extend(SuiteEntry(column.file, case) for case in cases)
    return entries


def fig12_suite(options: SuiteOptions) -> list[SuiteEntry]:
    """Fig. 12 (Section 6.3): 4 x bert-103.5b on 64 devices, synthetic power-law Gamma."""
    policies = ("mp-equal-16-1", "mp-equal-8-2", "mp-equal-4-4", "mp-equal-2-8", "mp-search")
    duration = 300.0 if options.quick else 1200.0
    fixed = {"total_rate": 8.0, "cv": 4.0, "slo_scale": 2.0}
    grid: dict[str, tuple[float, ...]] = {
        "total_rate": (0.5, 2, 4, 6, 8), "cv": (1, 2, 3, 4), "slo_scale": (0.5, 1, 2, 4, 6, 8)}
    sweeps = _sweeps("fig12", grid.__getitem__)
    entries: list[SuiteEntry] = []
    for exp_name, knobs in one_knob_sweeps(sweeps, lambda _: fixed, options.quick):
        for policy in policies:
            case = Case(exp_name=exp_name, model_set="S4", num_devices=64, num_models=4,
                        policy=policy, slo_scale=knobs["slo_scale"],
                        workload=SyntheticWorkload(total_rate=knobs["total_rate"],
                                                   cv=knobs["cv"], duration=duration,
                                                   train_workload="test"))
            entries.append(SuiteEntry(FIG12_FILE, case))
    return entries


def _hour_window(day: int, hour: int) -> tuple[str, str]:
    """One-hour window string pair; an hour starting at 23 ends at ``"d.23.60"``."""
    end = f"{day}.{hour + 1}.0" if hour < 23 else f"{day}.23.60"
    return (f"{day}.{hour}.0", end)


def fig13_window_pairs() -> list[tuple[tuple[str, str], tuple[str, str]]]:
    """The three (train, test) one-hour MAF1 windows of Fig. 13, drawn as the published driver.

    ``np.random.seed(1)``; train days, train hours, test days, test hours =
    ``randint(0, 14, 3)``, ``randint(0, 24, 3)``, ... in this order (uses a private
    RandomState seeded identically, leaving numpy's global state untouched).
    """
    rs = np.random.RandomState(1)
    train_days = rs.randint(0, 14, 3)
    train_hours = rs.randint(0, 24, 3)
    test_days = rs.randint(0, 14, 3)
    test_hours = rs.randint(0, 24, 3)
    return [(_hour_window(int(train_days[i]), int(train_hours[i])),
             _hour_window(int(test_days[i]), int(test_hours[i]))) for i in range(3)]


#: The grid of Fig. 13's sweeps: that of S1@MAF1 (its rows go to one file per window pair).
FIG13_COLUMN = FIG11_COLUMNS[0]


def fig13_suite(options: SuiteOptions) -> list[SuiteEntry]:
    """Fig. 13 (Section 6.4): S1 on MAF1, policies trained on another hour than evaluated.

    SR and Beta place on the train window; Clockwork++ (sr-replace-120) uses the
    test window. One TSV per (train, test) pair. With ``legacy_fig13`` the device
    and SLO sweeps of pairs 2 and 3 run at cv_scale 8 (the published driver's quirk).
    """
    policies = ("sr-greedy", "sr-replace-120", "mp-search")
    entries: list[SuiteEntry] = []
    for p, (train, test) in enumerate(fig13_window_pairs()):
        if options.quick:
            train, test = quick_window(train, "maf1"), quick_window(test, "maf1")
        def cv_scale_of(exp_name: str, p: int = p) -> float:
            if (options.legacy_fig13 and p >= 1
                    and exp_name in ("goodput_vs_num_devices", "goodput_vs_slo")):
                return 8.0
            return FIG13_COLUMN.cv_scale

        def train_window_of(policy: str, train: tuple[str, str] = train):
            return None if policy_role(policy) == "clockwork" else train

        cases = _trace_sweeps("fig13", FIG13_COLUMN, options, policies, test, MAF1_INTERVAL,
                              train_window_of=train_window_of, cv_scale_of=cv_scale_of)
        entries.extend(SuiteEntry(fig13_file(p + 1), case) for case in cases)
    return entries


def fig14_suite(options: SuiteOptions) -> list[SuiteEntry]:
    """Fig. 14 (Section 6.5): ablation on the synthetic mixed set (60 models, 32 devices)."""
    policies = ("mp-round-robin", "mp-greedy-4", "mp-search-sep")
    duration = 100.0 if options.quick else 200.0
    fixed = {"total_rate": 64.0, "cv": 4.0}
    grid: dict[str, tuple[float, ...]] = {
        "total_rate": (8, 16, 24, 32, 64, 96, 128), "cv": (0.5, 1, 1.5, 2, 3, 4, 5, 6, 7)}
    sweeps = _sweeps("fig14", grid.__getitem__)
    entries: list[SuiteEntry] = []
    for exp_name, knobs in one_knob_sweeps(sweeps, lambda _: fixed, options.quick):
        for policy in policies:
            case = Case(exp_name=exp_name, model_set="mixed", num_devices=32,
                        num_models=60, policy=policy, slo_scale=5.0,
                        workload=SyntheticWorkload(total_rate=knobs["total_rate"],
                                                   cv=knobs["cv"], duration=duration,
                                                   train_workload="generated",
                                                   train_seed=0))
            entries.append(SuiteEntry(FIG14_FILE, case))
    return entries


# ---------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class CalibrationTarget:
    """A published result of ``calibration_targets.tsv`` and the case that reproduces it.

    Attributes:
        set: the target set, e.g. ``"fidelity-bert2.6b-sim"``.
        x: the swept value as written in the file.
        published: the published goodput (0..1).
        chosen_group_configs: the published placement's groups, e.g. ``"op4pp1x3"``.
        case: the case to run.
        line: line number in the targets file.
    """

    set: str
    x: str
    published: float
    chosen_group_configs: str
    case: Case
    line: int


def default_calibration_targets() -> Path:
    """The published calibration targets packaged with the project
    (``alpa_serve/data/reference/calibration_targets.tsv``, described in the README there)."""
    return Path(__file__).resolve().parents[1] / "data" / "reference" / "calibration_targets.tsv"


def _kwargs(text: str) -> dict[str, float]:
    out = {}
    for part in text.split(";"):
        if part:
            key, _, value = part.partition("=")
            out[key.strip()] = float(value)
    return out


class CalibrationTargetsError(ValueError):
    """A calibration targets file cannot be read (not UTF-8 text, missing columns, no rows, a
    malformed row); the message names the file (and line) and what to do."""


#: Columns a calibration targets file must have (``calibration_targets.tsv``'s header).
CALIBRATION_COLUMNS = ("set", "experiment", "policy", "x", "goodput", "num_devices",
                       "num_models", "model_type", "total_rate", "slo_scale", "workload_kwargs",
                       "chosen_group_configs")


def _read_targets_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """The (line number, row) pairs of a targets TSV; CalibrationTargetsError unless it is
    UTF-8 text with every column of :data:`CALIBRATION_COLUMNS` and rows of the header's
    width, at least one."""
    fix = (f"pass --targets the path of a calibration_targets.tsv (the packaged copy is "
           f"{default_calibration_targets()})")
    if not path.is_file():
        raise CalibrationTargetsError(f"calibration targets {path} is not a file; {fix}")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CalibrationTargetsError(f"calibration targets {path} is not UTF-8 text; {fix}") \
            from None
    except OSError as exc:
        raise CalibrationTargetsError(f"cannot read calibration targets {path}: "
                                      f"{exc.strerror or exc}") from None
    if "\0" in text:
        raise CalibrationTargetsError(f"calibration targets {path} is binary (NUL bytes); "
                                      f"{fix}")
    lines = list(csv.reader(text.splitlines(), delimiter="\t"))
    header = lines[0] if lines else []
    missing = [c for c in CALIBRATION_COLUMNS if c not in header]
    if missing:
        raise CalibrationTargetsError(
            f"calibration targets {path} lacks the column(s) {', '.join(missing)} of a "
            f"tab-separated calibration_targets.tsv; {fix}")
    rows = []
    for lineno, values in enumerate(lines[1:], start=2):
        if not values:
            continue
        if len(values) != len(header):
            raise CalibrationTargetsError(
                f"{path}:{lineno}: the row has {len(values)} tab-separated values, the header "
                f"{len(header)}; fix or delete the line")
        rows.append((lineno, dict(zip(header, values))))
    if not rows:
        raise CalibrationTargetsError(f"calibration targets {path} holds no targets; {fix}")
    return rows


def calibration_targets(path: Optional[str | Path] = None,
                        options: SuiteOptions = SuiteOptions()) -> list[CalibrationTarget]:
    """Parse ``calibration_targets.tsv`` into cases (DESIGN 3.3 and 4.1).

    Synthetic sets run with the calibration setting (policy-generated training
    workload, ``train_seed=1234``), power-law rates, 200 s. The ``S3@MAF*`` sets
    replay the Fig. 11 trace windows (stand-in or real per ``options.traces``).
    """
    path = Path(path) if path is not None else default_calibration_targets()
    if not path.exists():
        raise FileNotFoundError(
            f"calibration targets not found at {path}; pass --targets PATH "
            f"(the packaged copy is {default_calibration_targets()})")
    targets = []
    for lineno, row in _read_targets_rows(path):
        try:
            kwargs = _kwargs(row["workload_kwargs"])
            workload: WorkloadSpec
            if row["set"].startswith("S3@MAF"):
                trace = "maf1" if row["set"] == "S3@MAF1" else "maf2"
                window, interval = ((MAF1_WINDOW, MAF1_INTERVAL) if trace == "maf1"
                                    else (MAF2_WINDOW, MAF2_INTERVAL))
                workload = TraceWorkload(source=_source(trace, options),
                                         rate_scale=kwargs["rate_scale"],
                                         cv_scale=kwargs["cv_scale"], test_window=window,
                                         interval_seconds=interval)
            else:
                workload = SyntheticWorkload(total_rate=float(row["total_rate"]),
                                             cv=kwargs["cv"], duration=200.0,
                                             rate_dist="power_law",
                                             train_workload="generated", train_seed=1234)
            case = Case(exp_name=row["experiment"], model_set=row["model_type"],
                        num_devices=int(row["num_devices"]),
                        num_models=int(row["num_models"]), policy=row["policy"],
                        slo_scale=float(row["slo_scale"]), workload=workload)
            targets.append(CalibrationTarget(
                set=row["set"], x=row["x"], published=float(row["goodput"]),
                chosen_group_configs=row["chosen_group_configs"], case=case, line=lineno))
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            what = f"no value {exc}" if isinstance(exc, KeyError) else str(exc)
            raise CalibrationTargetsError(
                f"{path}:{lineno}: cannot read calibration target: {what}") from None
    return targets


def calibration_suite(options: SuiteOptions) -> list[SuiteEntry]:
    """Every case of the calibration targets file (``--quick``: the synthetic sets only,
    two points per set and policy)."""
    targets = calibration_targets(options.calibration_targets, options)
    if options.quick:
        kept: list[CalibrationTarget] = []
        seen: dict[tuple[str, str], int] = {}
        for t in targets:
            if t.set.startswith("S3@MAF"):
                continue
            key = (t.set, t.case.policy)
            seen[key] = seen.get(key, 0) + 1
            if seen[key] <= 2:
                kept.append(t)
        targets = kept
    return [SuiteEntry("calibration.tsv", t.case) for t in targets]


# ---------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------

SUITES: dict[str, Callable[[SuiteOptions], list[SuiteEntry]]] = {
    "fig11": fig11_suite,
    "fig12": fig12_suite,
    "fig13": fig13_suite,
    "fig14": fig14_suite,
    "calibration": calibration_suite,
}

#: Alternative names (paper sections and gen_data script stems).
SUITE_ALIASES: dict[str, str] = {
    "sec6_2": "fig11", "sec6_2_e2e": "fig11", "e2e": "fig11",
    "sec6_3": "fig12", "sec6_3_large": "fig12", "large": "fig12",
    "sec6_4": "fig13", "sec6_4_robust": "fig13", "robust": "fig13",
    "sec6_5": "fig14", "sec6_5_ab": "fig14", "ablation": "fig14",
}


def suite_names() -> list[str]:
    """Valid suite names (canonical names first, then aliases)."""
    return list(SUITES) + list(SUITE_ALIASES)


def resolve_suite_name(name: str) -> str:
    """Canonical suite name of ``name`` (an alias or a canonical name)."""
    canonical = SUITE_ALIASES.get(name, name)
    if canonical not in SUITES:
        raise UnknownSuiteError(
            f"unknown suite {name!r}; valid suites: {', '.join(SUITES)} "
            f"(aliases: {', '.join(f'{a}={c}' for a, c in SUITE_ALIASES.items())})")
    return canonical


class UnknownFileError(ValueError):
    """A TSV file name in ``only_files``/``exclude_files`` that the suite does not write."""


def select_files(entries: Sequence[SuiteEntry], only: Sequence[str] = (),
                 exclude: Sequence[str] = (), suite: str = "the suite"
                 ) -> list[SuiteEntry]:
    """``entries`` restricted to the TSV files in ``only`` (all if empty), minus those in
    ``exclude``. Raises UnknownFileError naming any file the entries do not write."""
    known = list(dict.fromkeys(e.file for e in entries))
    unknown = [f for f in (*only, *exclude) if f not in known]
    if unknown:
        raise UnknownFileError(f"{suite} writes no file named {', '.join(map(repr, unknown))}; "
                               f"its files are: {', '.join(known)}")
    keep = set(only) if only else set(known)
    keep -= set(exclude)
    return [e for e in entries if e.file in keep]


def build_suite(name: str, options: SuiteOptions = SuiteOptions()) -> list[SuiteEntry]:
    """The entries of suite ``name``; duplicates (same file and case) are dropped; restricted
    to ``options.only_files`` / ``options.exclude_files`` when given; every case carries
    ``options.search``."""
    entries = SUITES[resolve_suite_name(name)](options)
    if options.search != SEARCH_EXACT:
        entries = [SuiteEntry(e.file, e.case.replace(search=options.search)) for e in entries]
    if options.only_files or options.exclude_files:
        entries = select_files(entries, options.only_files, options.exclude_files,
                               resolve_suite_name(name))
    seen: set[tuple[str, str]] = set()
    unique = []
    for e in entries:
        key = (e.file, e.case.case_id)
        if key not in seen:
            seen.add(key)
            unique.append(e)
    return unique
