"""Shared pieces of the motivation scripts (Section 3, DESIGN 7.6).

* paths (all resolved relative to this file) and constants;
* :func:`motivation_database`: the committed database plus the Fig. 7(b) pipeline-overhead
  variants of bert-2.6b, built as new profile objects (the database is never mutated);
* :func:`run_cases`: how the many-case figures (4-7) are computed: their
  :class:`~alpa_serve.experiments.Case` objects go through the project's suite runner
  (:func:`alpa_serve.experiments.suite_runner.run_entries`: Ray fan-out, or in-process with
  ``serial``), which calls ``run_prepared`` (policy + simulator) for every case. Fig. 2, which
  needs per-request finish times, runs its Cases in-process through the same steps
  (:func:`alpa_serve.experiments.simulate_case`);
* figure saving (PDF + PNG) and the common command-line options.

Units: seconds, bytes, requests per second; memory budgets on figure axes are GiB
(``alpa_serve.units.GiB``, the unit of the project's 13 GiB default budget).
"""
from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Folder of this package; every output path is resolved relative to it.
HERE = Path(__file__).resolve().parent
#: Figures (PDF + PNG) land here; the folder is gitignored.
FIGURES_DIR = HERE / "figures"
#: Result TSVs of the runner (inside the gitignored figures folder).
DATA_DIR = FIGURES_DIR / "data"

#: "SLO infinite" of Figs. 2 and 4-6: SLO = 1e9 x single-device latency, i.e. at least 1.5e8 s
#: for the models used here. A request can never wait that long in workloads of at most 1e5 s,
#: so every request is served, as with an infinite SLO; a finite number keeps the simulator's
#: float32 SLO column and the TSV free of inf.
INFINITE_SLO_SCALE = 1e9

#: The model whose (1,1,8) pipeline is modified in Fig. 7(b), and the modified degree.
ALPHA_BASE_MODEL = "bert-2.6b"
ALPHA_PP = 8
#: Pipeline overheads of Fig. 7(b): each stage takes alpha x single / 8.
ALPHAS: tuple[float, ...] = (1.0, 1.1, 1.2, 1.3, 1.4, 1.5)


# ------------------------------------------------------------------------------------------
# Settings and command line
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """How to build the motivation figures.

    quick: reduced grids and durations (smoke test, not the paper's setting).
    serial: run the runner's cases in-process instead of as Ray tasks.
    force: recompute cases already in the result TSVs.
    num_cpus: CPUs of the embedded Ray instance (None: all cores).
    progress: show the runner's progress bar.
    figures_dir: output folder of the PDFs/PNGs; data_root: folder of the result TSVs.
    """

    quick: bool = False
    serial: bool = False
    force: bool = False
    num_cpus: Optional[int] = None
    progress: bool = True
    figures_dir: Path = FIGURES_DIR
    data_root: Path = DATA_DIR

    def data_dir(self, db: Any) -> Path:
        """TSV folder for ``db``: one per database fingerprint (and per --quick), so that a
        regenerated database or a quick run never mixes with older full rows."""
        return self.data_root / (db.fingerprint() + ("-quick" if self.quick else ""))


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every motivation script accepts."""
    parser.add_argument("--quick", action="store_true",
                        help="reduced grids and shorter workloads (smoke test)")
    parser.add_argument("--serial", action="store_true",
                        help="run the cases in-process instead of as Ray tasks")
    parser.add_argument("--force", action="store_true",
                        help="recompute cases already in the result TSVs")
    parser.add_argument("--num-cpus", type=int, default=None,
                        help="CPUs of the embedded Ray instance (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    default = FIGURES_DIR.relative_to(HERE.parent.parent)
    parser.add_argument("--out", type=Path, default=None,
                        help=f"figure folder (default: {default})")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from parsed :func:`add_common_arguments` options; also configures logging."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # PDF font subsetting logs every glyph at INFO: keep the run's log readable.
    for noisy in ("fontTools", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    figures = args.out if args.out is not None else FIGURES_DIR
    return Settings(quick=args.quick, serial=args.serial, force=args.force,
                    num_cpus=args.num_cpus, progress=not args.no_progress,
                    figures_dir=Path(figures), data_root=Path(figures) / "data")


# ------------------------------------------------------------------------------------------
# Profiles
# ------------------------------------------------------------------------------------------
def case_script_main(description: str, build_entries: Any, plot: Any,
                     argv: Optional[Sequence[str]] = None) -> int:
    """Command line shared by the many-case figure scripts (Figs. 4-7b): parse the common
    options, run the script's cases through the runner on the motivation database, plot."""
    def make(settings: Settings, db: Any) -> None:
        plot(run_cases(build_entries(settings), db, settings), settings)

    return make_script_main(description, make, motivation_database, argv)


def make_script_main(description: str, make: Any, database: Any,
                     argv: Optional[Sequence[str]] = None) -> int:
    """Command line shared by the figure scripts that build their figures in-process (Figs. 2,
    8-9): parse the common options, then ``make(settings, database())``."""
    parser = argparse.ArgumentParser(description=description)
    add_common_arguments(parser)
    make(settings_from_args(parser.parse_args(argv)), database())
    return 0


def alpha_model_name(alpha: float, base: str = ALPHA_BASE_MODEL) -> str:
    """Database name of the Fig. 7(b) variant of ``base`` with pipeline overhead ``alpha``."""
    return f"{base}-alpha{alpha:.2f}"


def with_pipeline_overhead(profile: Any, alpha: float, pp: int = ALPHA_PP,
                           name: Optional[str] = None) -> Any:
    """A new ModelProfile equal to ``profile`` except its (1,1,pp) batch-1 stage latencies,
    which become ``alpha * single_latency / pp`` each (seconds).

    Every other configuration, batch size, activation and weight entry is shared unchanged;
    ``profile`` itself is not modified. The single-device latency (the SLO base) is that of
    the unmodified (1,1,1) configuration.
    """
    from alpa_serve.profiling import ConfigProfile, ModelProfile, ParallelConfig

    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha!r}")
    cfg = ParallelConfig(1, 1, int(pp))
    orig = profile.profile(cfg)  # ConfigNotProfiledError names the missing config
    stage = float(alpha) * profile.single_latency / int(pp)
    latency = dict(orig.latency)
    latency[1] = tuple([stage] * int(pp))
    modified = ConfigProfile(latency=latency, act_mem=dict(orig.act_mem),
                             weight_mem=tuple(orig.weight_mem))
    configs = {c: profile.profile(c) for c in profile.configs()}
    configs[cfg] = modified
    return ModelProfile(name or alpha_model_name(alpha, profile.name), configs)


def motivation_database(base: Any = None, alphas: Sequence[float] = ALPHAS) -> Any:
    """``base`` (default: the committed database) plus one Fig. 7(b) variant of bert-2.6b per
    alpha, in a new ProfilingDatabase (its fingerprint therefore differs from ``base``'s)."""
    from alpa_serve.profiling import ProfilingDatabase

    if base is None:
        base = ProfilingDatabase.default()
    extra = [with_pipeline_overhead(base.get(ALPHA_BASE_MODEL), a) for a in alphas]
    hardware = dict(base.hardware)
    hardware["motivation"] = (f"plus {ALPHA_BASE_MODEL} variants with (1,1,{ALPHA_PP}) b=1 "
                              f"stages = alpha x single / {ALPHA_PP}, alpha in {list(alphas)}")
    return ProfilingDatabase(list(base) + extra, hardware)


# ------------------------------------------------------------------------------------------
# Many cases: the project's runner
# ------------------------------------------------------------------------------------------
def run_cases(entries: Iterable[Any], db: Any, settings: Settings) -> dict[str, dict[str, str]]:
    """Run ``entries`` (SuiteEntry: TSV file name + Case) through the project's runner and
    return every entry's row (strings, as read back from the TSV) keyed by ``case_id``.

    Cases already in their TSV are skipped (resume) unless ``settings.force``; entries with the
    same case (e.g. the sr-uniform line shared by Figs. 7a and 7b) run once, the first entry
    deciding the file. Raises RuntimeError if any case failed.
    """
    from alpa_serve.experiments.suite_runner import RunOptions, run_entries
    from alpa_serve.results import read_rows

    unique: dict[str, Any] = {}
    for e in entries:
        unique.setdefault(e.case.case_id, e)
    out_dir = settings.data_dir(db)
    options = RunOptions(out_dir=out_dir, serial=settings.serial, num_cpus=settings.num_cpus,
                         force=settings.force, progress=settings.progress)
    t0 = time.perf_counter()
    summary = run_entries(list(unique.values()), options, db=db, desc="motivation")
    logger.info("runner: %d case(s), %d run, %d already done, %.1f s, results in %s",
                summary.total, summary.ran, summary.skipped, time.perf_counter() - t0, out_dir)
    if summary.failures:
        raise RuntimeError(f"{len(summary.failures)} motivation case(s) failed, e.g. "
                           f"{summary.failures[0].description}: {summary.failures[0].error}")
    rows: dict[str, dict[str, str]] = {}
    for name in sorted({e.file for e in unique.values()}):
        for row in read_rows(out_dir / name):
            if row["case_id"] in unique:
                rows[row["case_id"]] = row
    missing = [e.case.describe() for cid, e in unique.items() if cid not in rows]
    if missing:
        raise RuntimeError(f"{len(missing)} case(s) have no row after the run: {missing[:3]}")
    return rows


def row_value(rows: Mapping[str, Mapping[str, str]], case: Any, column: str) -> float:
    """``column`` of ``case``'s row as a float (KeyError if the case was not run)."""
    return float(rows[case.case_id][column])


# ------------------------------------------------------------------------------------------
# Figures
# ------------------------------------------------------------------------------------------
def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend with the project's font sizes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from alpa_serve.plotting.styles import RC_PARAMS

    plt.rcParams.update(RC_PARAMS)
    return plt


def save_figure(fig: Any, name: str, settings: Settings) -> list[Path]:
    """Write ``fig`` as ``<name>.pdf`` and ``<name>.png`` into the figure folder; close it."""
    out = Path(settings.figures_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.pdf", out / f"{name}.png"]
    fig.savefig(paths[0], bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    logger.info("wrote %s (+ .png)", paths[0])
    return paths


def linspace_points(lo: float, hi: float, n: int) -> list[float]:
    """``n`` evenly spaced values from lo to hi inclusive, rounded to 6 decimals so that the
    case ids (hashes of the values) are stable across platforms."""
    return [round(float(x), 6) for x in np.linspace(lo, hi, n)]
